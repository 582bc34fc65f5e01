"""A /metrics relay for the e2e tests, on 127.0.0.1 only: every GET is answered with the upstream page, unless a flag
file says otherwise at the moment the request arrives.
  metrics_relay.py PORT UPSTREAM_URL DIR
  DIR/hang exists:  the request is accepted and never answered (a hung endpoint).
  DIR/stall exists: it is removed, DIR/stalled is created, and the answer comes 1.5 s late (once per stall file:
                    the caller knows a read is out and can act before it returns)."""
import http.server
import os
import sys
import time
import urllib.request

port, upstream, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Relay(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if os.path.exists(os.path.join(folder, "hang")):
            time.sleep(600)
            return
        try:
            os.unlink(os.path.join(folder, "stall"))
            open(os.path.join(folder, "stalled"), "w").close()
            time.sleep(1.5)
        except FileNotFoundError:
            pass
        body = urllib.request.urlopen(upstream, timeout=5).read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), Relay).serve_forever()
