# An HTTP endpoint that accepts and stays silent, then answers: `silent_http.py KIND key=value...`.
# - KIND tcp binds 127.0.0.1:0 (or port=) and prints `port N`; KIND unix binds the socket path=.
# - It listens at once and prints `listening`. Until the file go= exists (forever without go=)
#   it accepts every connection and holds it without sending a byte, printing `held`.
# - Once go= exists it closes the held connections, writes flag= (if given), and answers every
#   request with `HTTP/1.1 200 OK` (body `OK`), printing `GET PATH 200`.
import os
import socket
import sys

kind = sys.argv[1]
opts = dict(a.split("=", 1) for a in sys.argv[2:])


def say(s):
    print(s, flush=True)


if kind == "tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(opts.get("port", "0"))))
    say("port %d" % s.getsockname()[1])
elif kind == "unix":
    s = socket.socket(socket.AF_UNIX)
    s.bind(opts["path"])
else:
    sys.exit("silent_http.py: unknown kind %r" % kind)
s.listen(64)
say("listening")

go = opts.get("go")
held = []
s.settimeout(0.02)
while not (go and os.path.exists(go)):
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    held.append(c)
    say("held")
for c in held:
    c.close()
flag = opts.get("flag")
if flag:
    open(flag, "w").write("answered")
s.settimeout(None)
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    path = line[1] if len(line) > 1 else "?"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
    c.close()
    say("GET %s 200" % path)
