"""A shardz worker written from docs/PROTOCOL.md alone, in Python: registers, answers pings
and assignments, diffs them into serve/delete events (appended as JSON lines with times to
--events, so tests can check ownership from the workers' own view), honours the strict-mode
lease, and on SIGTERM leaves gracefully. Used by the integration tests as a second,
independent implementation of the worker side."""
import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--coordinator", required=True)
ap.add_argument("--namespace", required=True)
ap.add_argument("--node", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--zone", default="")
ap.add_argument("--events", required=True)
ap.add_argument("--log-leases", action="store_true",
                help="also log every lease grant as {op: lease, until: wall time it runs to}")
ap.add_argument("--secret", default="")
ap.add_argument("--serve-delay-ms", type=int, default=0)
ap.add_argument("--pings", default="", help="append a line per ping received: its time "
                "(time.time()) and whether it granted the lease (1/0)")
ap.add_argument("--capacity", default="", help="dim=value[,dim=value]")
ap.add_argument("--load", default="", help="dim=value[,...]: reported for every partition "
                "served, in each ping reply (a raw JSON object with --load-json)")
ap.add_argument("--load-json", default="", help="the ping reply's load field, verbatim")
ap.add_argument("--split-json", default="", help="the ping reply's split_at field, verbatim "
                "({partition: key}: where to split a range, from the application's own keys)")
ap.add_argument("--split-file", default="", help="like --split-json, read from this file at "
                "each ping when it exists")
args = ap.parse_args()

lock = threading.Lock()         # the worker's state
assign_lock = threading.Lock()  # one assignment at a time
served = {}          # partition -> generation
applied = 0
lease_ms = None
last_contact = time.monotonic()
released = threading.Event()
strict_lease = False


def event(op, partition, generation=0, key_range=None, cause="assign"):
    ev = {"t": time.time(), "node": args.node, "op": op, "partition": partition,
          "generation": generation, "cause": cause}
    if key_range is not None:  # range namespaces: the bounds the assignment carried
        ev["range"] = key_range
    with open(args.events, "a") as f:
        f.write(json.dumps(ev) + "\n")


def lease_event(until):
    """A lease granted: what is served may be served until `until` (wall time) without more
    contact. Ownership ends there at the latest, even if this process is paused past it."""
    with open(args.events, "a") as f:
        f.write(json.dumps({"t": time.time(), "node": args.node, "op": "lease",
                            "until": until}) + "\n")


COORDS = args.coordinator.split(",")  # several coordinators: any of them forwards to the leader
current = [0]


def coordinator(method, path, body=None):
    """One request, to the coordinator that answered last; on a connection failure or a 503
    (no leader yet), the next one (PROTOCOL.md section 10)."""
    last = None
    for i in range(len(COORDS)):
        addr = COORDS[(current[0] + i) % len(COORDS)]
        req = urllib.request.Request(f"http://{addr}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if args.secret:
            req.add_header("Authorization", f"Bearer {args.secret}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                current[0] = (current[0] + i) % len(COORDS)
                return json.loads(r.read().decode() or "null")
        except urllib.error.HTTPError as e:
            if e.code != 503:
                raise
            last = e
        except OSError as e:
            last = e
    raise last


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global applied, lease_ms, last_contact
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            return self.reply(413, {"code": "ETOOBIG", "message": "body too large"})
        try:
            body = json.loads(self.rfile.read(n))
            assert isinstance(body, dict) and body.get("node") == args.node
        except Exception:
            return self.reply(400, {"code": "EINVAL", "message": "malformed message"})
        with lock:
            if body.get("lease_ms"):  # only a message that grants the lease renews it
                if lease_ms and served and (time.monotonic() - last_contact) * 1000 > lease_ms:
                    for p in sorted(served):  # it lapsed while this message waited
                        event("delete", p, served.pop(p), cause="lease")
                last_contact = time.monotonic()
                lease_ms = body["lease_ms"]
                if args.log_leases:
                    lease_event(time.time() + lease_ms / 1000)
            if self.path == "/shardz/v1/ping":
                if args.pings:
                    with open(args.pings, "a") as f:
                        f.write(f"{time.time()} {1 if body.get('lease_ms') else 0}\n")
                out = {"node": args.node, "applied_revision": applied}
                if args.load:
                    dims = {k: float(v) for k, v in (kv.split("=") for kv in args.load.split(","))}
                    out["load"] = {p: dims for p in served}
                if args.load_json:
                    out["load"] = json.loads(args.load_json)
                if args.split_json:
                    out["split_at"] = json.loads(args.split_json)
                if args.split_file:
                    try:
                        with open(args.split_file) as f:
                            out["split_at"] = json.load(f)
                    except (OSError, ValueError):
                        pass
                return self.reply(200, out)
        if self.path != "/shardz/v1/assign":
            return self.reply(404, {"code": "ENOENT", "message": "no such route"})
        # Assignments one at a time; a slow serve hook (--serve-delay-ms) runs outside the
        # state lock, so pings are answered meanwhile (the worker library's lanes, likewise).
        with assign_lock:
            rev = body.get("revision", 0)
            to_serve = []
            with lock:
                fresh = rev >= applied
                if fresh:
                    want = {r["partition"]: r["generation"] for r in body.get("replicas", [])}
                    ranges = {r["partition"]: r.get("range") for r in body.get("replicas", [])}
                    for p in sorted(set(served) - set(want)):
                        event("delete", p, served.pop(p))
                    to_serve = [(p, g) for p, g in sorted(want.items()) if served.get(p) != g]
            for p, g in to_serve:
                if args.serve_delay_ms:
                    time.sleep(args.serve_delay_ms / 1000)
                with lock:
                    event("serve", p, g, ranges.get(p))
                    served[p] = g
            with lock:
                if fresh:
                    applied = rev
                if body.get("released"):
                    released.set()
                return self.reply(200, {"node": args.node, "applied_revision": applied,
                                        "serving": [{"partition": p, "generation": g}
                                                    for p, g in served.items()],
                                        "failed": []})


def lease_watch():
    """Strict mode: no contact for lease_ms -> delete everything."""
    while True:
        time.sleep(0.02)
        with lock:
            if lease_ms and served and (time.monotonic() - last_contact) * 1000 > lease_ms:
                for p in sorted(served):
                    event("delete", p, served.pop(p), cause="lease")


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=lease_watch, daemon=True).start()
    ns = args.namespace
    body = {"id": args.node, "address": f"127.0.0.1:{args.port}"}
    if args.zone:
        body["zone"] = args.zone
    if args.capacity:
        body["capacity"] = {k: float(v) for k, v in
                            (kv.split("=") for kv in args.capacity.split(","))}
    while True:
        try:
            coordinator("POST", f"/v1/namespaces/{ns}/nodes", body)
            break
        except Exception as e:  # coordinator not up yet
            print("register:", e, flush=True)
            time.sleep(0.2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    while not stop.is_set():
        time.sleep(0.05)
    try:
        coordinator("POST", f"/v1/namespaces/{ns}/nodes/{args.node}/leave", {})
        released.wait(timeout=20)
    except Exception as e:
        print("leave:", e, flush=True)
    srv.shutdown()
    sys.exit(0)


main()
