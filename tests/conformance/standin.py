"""A stand-in coordinator for the golden wire tests and the client benchmark: it answers a
worker's registration in namespace "golden" (with the reply given, "@LISTEN@" replaced by the
address the worker registered) and the namespace's GET, records the registration bodies, and
does nothing else: the test or benchmark sends the worker its messages itself. Runs its own
HTTP server thread."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn:
    def __init__(self, register_reply):
        self.bodies = []
        template = json.dumps(register_reply)
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if self.path == "/v1/namespaces/golden/nodes":
                    reg = json.loads(body)
                    outer.bodies.append(reg)
                    self._answer(200, json.loads(template.replace("@LISTEN@",
                                                                  str(reg.get("address")))))
                else:
                    self._answer(404, {"code": "ENOENT", "message": "not in the golden test"})

            def do_GET(self):
                if self.path == "/v1/namespaces/golden":
                    self._answer(200, {"name": "golden", "consistency": "available"})
                else:
                    self._answer(404, {"code": "ENOENT", "message": "not in the golden test"})

            def _answer(self, status, obj):
                out = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
