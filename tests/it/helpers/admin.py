"""Stand-in admin endpoints of the proxies the presets name (istio, envoy, linkerd, the Cloud SQL
proxy): listens on 127.0.0.1 on every port given, answers 200 to any request, and prints one line
`METHOD PORT PATH` per request. Prints `listening` once every port is bound.
"""
import http.server
import os
import socketserver
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        port = self.server.server_address[1]
        os.write(1, ("%s %d %s\n" % (self.command, port, self.path)).encode())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


servers = [Server(("127.0.0.1", int(p)), Handler) for p in sys.argv[1:]]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
os.write(1, b"listening\n")
threading.Event().wait()
