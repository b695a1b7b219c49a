# A listener for readiness tests: `listen.py KIND key=value...`.
# - tcp: binds 127.0.0.1:0 (or port=), prints `port N`, then listens (after delay= seconds or once
#   the file go= exists), writes flag= (if given) and prints `listening`;
# - closed: binds a port and never listens (connections are refused), prints `port N`;
# - unix: like tcp, on the unix socket path=;
# - http: an HTTP server like tcp that answers GET with 503 for the first fail= requests, then 200
#   (writing flag= first), printing `GET PATH CODE`; answers POST with 200 after printing
#   `POST PATH marker=yes|no` (whether the file marker= exists at that moment), and exits if PATH
#   is exit_on=. ignore_term=1 ignores SIGTERM. With code_from_path=1, GET /NNN answers status NNN
#   (with a Location header pointing at a closed port).
import os
import signal
import socket
import sys
import time

kind = sys.argv[1]
opts = dict(a.split("=", 1) for a in sys.argv[2:])
if opts.get("ignore_term") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def say(s):
    print(s, flush=True)


def gate():
    d = float(opts.get("delay", "0"))
    if d:
        time.sleep(d)
    go = opts.get("go")
    if go:
        while not os.path.exists(go):
            time.sleep(0.02)


def flag():
    f = opts.get("flag")
    if f:
        open(f, "w").write(str(time.time()))


def serve(s):
    s.listen(64)
    flag()
    say("listening")
    while True:
        c, _ = s.accept()
        c.close()


port = int(opts.get("port", "0"))
if kind in ("tcp", "closed"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    say("port %d" % s.getsockname()[1])
    if kind == "closed":
        while True:
            time.sleep(3600)
    gate()
    serve(s)
elif kind == "unix":
    s = socket.socket(socket.AF_UNIX)
    gate()
    s.bind(opts["path"])
    serve(s)
elif kind == "http":
    from http.server import HTTPServer, BaseHTTPRequestHandler
    fail = int(opts.get("fail", "0"))
    gets = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code):
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()

        def do_GET(self):
            gets[0] += 1
            if opts.get("code_from_path") == "1":
                # GET /302 answers 302, with a Location that leads nowhere.
                code = int(self.path.strip("/"))
                say("GET %s %d" % (self.path, code))
                self.send_response(code)
                self.send_header("Location", "http://127.0.0.1:1/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if gets[0] <= fail:
                say("GET %s 503" % self.path)
                self.reply(503)
                return
            flag()
            say("GET %s 200" % self.path)
            self.reply(200)

        def do_POST(self):
            m = opts.get("marker")
            say("POST %s marker=%s" % (self.path, "yes" if m and os.path.exists(m) else "no"))
            self.reply(200)
            if self.path == opts.get("exit_on"):
                say("quitting")
                os._exit(0)

    srv = HTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
    srv.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.server_bind()
    say("port %d" % srv.server_address[1])
    gate()
    srv.server_activate()
    say("listening")
    srv.serve_forever()
else:
    sys.exit("listen.py: unknown kind %r" % kind)
