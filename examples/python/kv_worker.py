#!/usr/bin/env python3
"""shardz-kv in Python: a sharded in-memory key-value worker on the shardz package, the
equivalent of examples/kv (C). One HTTP server carries both the application (GET/PUT/DELETE
/kv/<key>) and the shardz endpoint (/shardz/v1/, handed to Worker.handle): the coordinator
pings and assigns on the same port. A key is served only when its partition (the router's
key lookup in a hash namespace) is assigned here; otherwise 409 with the owner it knows of.
In strict namespaces every request checks lease_ok() first. SIGTERM or Ctrl-C leaves
gracefully (the partitions move away first), then exits 0.

  python3 examples/python/kv_worker.py --coordinator 127.0.0.1:7557 --ns kv --node w1 \
      --listen 127.0.0.1:9101
  curl -X PUT --data hello http://127.0.0.1:9101/kv/user:1

Threads: the HTTP server's (one per connection), the shardz worker's and router's own."""
import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "python", "src"))  # run from the repository without installing
import shardz  # noqa: E402


class Store:
    """partition -> {key: value}; a partition's data exists only while it is served here."""

    def __init__(self):
        self.lock = threading.Lock()
        self.parts = {}
        self.generation = {}

    def serve(self, r):
        with self.lock:
            self.parts.setdefault(r.partition, {})
            self.generation[r.partition] = r.generation  # fence downstream writes with it
        print(f"serve {r.partition} gen {r.generation} ({r.role})", flush=True)

    def delete(self, r):
        with self.lock:
            self.parts.pop(r.partition, None)
            self.generation.pop(r.partition, None)
        print(f"delete {r.partition} ({r.cause})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coordinator", default="127.0.0.1:7557")
    ap.add_argument("--ns", default="kv")
    ap.add_argument("--node", required=True)
    ap.add_argument("--listen", default="127.0.0.1:9101")
    ap.add_argument("--zone", default="")
    ap.add_argument("--secret", default=os.environ.get("SHARDZ_SECRET"))
    args = ap.parse_args()

    store = Store()
    worker = shardz.Worker(args.coordinator, args.ns, args.node, store.serve, store.delete,
                           listen=None, advertise=args.listen, zone=args.zone,
                           secret=args.secret)
    router = shardz.Router(args.coordinator, args.ns, secret=args.secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body):
            out = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if self.path.startswith("/shardz/v1/"):
                status, out = worker.handle(self.command, self.path,
                                            self.headers.get("Authorization"), body)
                return self.answer(status, out)
            if not self.path.startswith("/kv/") or len(self.path) == 4:
                return self.answer(404, {"code": "ENOENT", "message": "use /kv/<key>"})
            key = unquote(self.path[4:].split("?", 1)[0])
            _, route = router.lookup_key(key)
            if route is None:
                return self.answer(409, {"code": "ENOENT", "message": "no routing yet"})
            with store.lock:
                data = store.parts.get(route.partition)
                if data is None or not worker.lease_ok():
                    owner = route.target.node if route.target else None
                    return self.answer(409, {"code": "ESTALE", "message": "not served here",
                                             "partition": route.partition, "owner": owner})
                if self.command == "GET":
                    if key not in data:
                        return self.answer(404, {"code": "ENOENT", "message": f"no key {key}"})
                    return self.answer(200, {"key": key, "value": data[key],
                                             "partition": route.partition})
                if self.command == "PUT":
                    data[key] = body.decode(errors="replace")
                    return self.answer(200, {"key": key, "partition": route.partition,
                                             "generation": store.generation[route.partition]})
                if self.command == "DELETE":
                    data.pop(key, None)
                    return self.answer(200, {"key": key})
            return self.answer(400, {"code": "EINVAL", "message": "GET, PUT or DELETE"})

        do_GET = do_PUT = do_POST = do_DELETE = handle_any

        def log_message(self, *a):
            pass

    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    worker.start()
    router.start(timeout=5)
    print(f"{args.node}: serving {args.ns} on {args.listen}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    released = worker.leave(timeout=30)
    print(f"{args.node}: {'released' if released else 'leave timed out'}", flush=True)
    worker.stop()
    router.stop()
    server.shutdown()
    return 0 if released else 1


if __name__ == "__main__":
    sys.exit(main())
