# A DNS server that never answers: `silent_dns.py ADDRESS`. Binds UDP ADDRESS:53, prints
# `listening`, then reads queries forever (printing `query` for each) and answers none, so a
# resolver pointed at it hangs until its own timeout.
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("listening", flush=True)
while True:
    s.recv(4096)
    print("query", flush=True)
