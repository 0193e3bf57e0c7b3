"""A shardz worker written from docs/PROTOCOL.md alone, in Python: registers, answers pings
and assignments, diffs them into serve/delete events (appended as JSON lines with times to
--events, so tests can check ownership from the workers' own view), honours the strict-mode
lease (anchored at its own clock through lease_stamp, PROTOCOL.md 6), and on SIGTERM leaves
gracefully. Used by the integration tests as a second,
independent implementation of the worker side. It offers delta assignments (PROTOCOL.md 4.1,
4.3) when it registers and applies them; --no-delta makes it a worker that predates them (it
offers nothing and treats every assignment as a full one). Threads: the HTTP server's (one per
request), the lease watcher and the main thread (register, leave)."""
import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--coordinator", required=True)
ap.add_argument("--namespace", required=True)
ap.add_argument("--node", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--zone", default="")
ap.add_argument("--incarnation", default=uuid.uuid4().hex, help="this process's incarnation, "
                "sent at registration (PROTOCOL.md 4.1): a fresh random id by default")
ap.add_argument("--no-incarnation", action="store_true", help="a worker that predates "
                "incarnations: registers without one")
ap.add_argument("--advertise", default="", help="the address registered (host:port), when the "
                "coordinator reaches this worker through a proxy; default 127.0.0.1:--port")
ap.add_argument("--events", required=True)
ap.add_argument("--log-leases", action="store_true",
                help="also log every lease grant as {op: lease, until: wall time it runs to}")
ap.add_argument("--secret", default="")
ap.add_argument("--serve-delay-ms", type=int, default=0)
ap.add_argument("--pings", default="", help="append a line per ping received: its time "
                "(time.time()) and whether it granted the lease (1/0)")
ap.add_argument("--fail-pings", default="", help="while this file exists, answer every ping "
                "with a 503 (a worker whose pings fail while its assignments still arrive)")
ap.add_argument("--capacity", default="", help="dim=value[,dim=value]")
ap.add_argument("--load", default="", help="dim=value[,...]: reported for every partition "
                "served, in each ping reply (a raw JSON object with --load-json)")
ap.add_argument("--load-json", default="", help="the ping reply's load field, verbatim")
ap.add_argument("--split-json", default="", help="the ping reply's split_at field, verbatim "
                "({partition: key}: where to split a range, from the application's own keys)")
ap.add_argument("--split-file", default="", help="like --split-json, read from this file at "
                "each ping when it exists")
ap.add_argument("--no-delta", action="store_true", help="a worker that predates delta "
                "assignments: does not offer them at registration, takes every assignment as full")
ap.add_argument("--no-term", action="store_true", help="a worker that predates terms "
                "(PROTOCOL.md 4.2): does not offer them, and takes a message of any term")
ap.add_argument("--msg-log", default="", help="append a JSON line per ping or assignment "
                "received: its time, path, term, the term seen before it, whether it was "
                "refused as a deposed coordinator's, and its body")
ap.add_argument("--transfer-ms", type=int, default=None, help="state transfer (PROTOCOL.md "
                "4.3): offer the 'transfer' feature; a new replica that comes from another node "
                "is served but answered not ready (\"ready\": false) for this long, then "
                "reported ready in ping replies; -1: never ready")
ap.add_argument("--assign-log", default="", help="append a JSON line per assignment received: "
                "its revision, base_revision (null for a whole set), and how many replicas and "
                "removed partitions it named")
args = ap.parse_args()

lock = threading.Lock()         # the worker's state
assign_lock = threading.Lock()  # one assignment at a time
served = {}          # partition -> generation
roles = {}           # partition -> the role it is served with
unready = {}         # state transfer: partition -> generation served but not ready yet
report_ready = {}    # partition -> generation ready since, reported until assigned serving
transfer_agreed = False
term_seen = 0        # the highest coordinator term seen (PROTOCOL.md 4.2)
applied = 0
lease_ms = None
lease_end = 0.0  # strict: what is served may be served until then (time.monotonic())
released = threading.Event()
strict_lease = False
delta_agreed = False  # the register reply agreed to send deltas (never with --no-delta)
intact = True         # what is served is the set of revision `applied` (False after a lease drop)


def event(op, partition, generation=0, key_range=None, cause="assign", slot=None, role=None,
          source=None):
    ev = {"t": time.time(), "node": args.node, "op": op, "partition": partition,
          "generation": generation, "cause": cause}
    if source is not None:  # state transfer: the "from" the assignment named
        ev["from"] = source
    if role is not None:  # the role a serve is for ("none", "primary", "secondary")
        ev["role"] = role
    if key_range is not None:  # range namespaces: the bounds the assignment carried
        ev["range"] = key_range
    if slot is not None:  # the replica slot a serve is for
        ev["slot"] = slot
    with open(args.events, "a") as f:
        f.write(json.dumps(ev) + "\n")


def stamp():
    """This process's clock in ms (PROTOCOL.md 6: lease_stamp), sent in every reply."""
    return int(time.monotonic() * 1000)


def lease_event(until):
    """A lease granted: what is served may be served until `until` (wall time) without more
    contact. Ownership ends there at the latest, even if this process is paused past it."""
    with open(args.events, "a") as f:
        f.write(json.dumps({"t": time.time(), "node": args.node, "op": "lease",
                            "until": until}) + "\n")


COORDS = args.coordinator.split(",")  # several coordinators: any of them forwards to the leader
current = [0]


def reported():
    """applied_revision as replies report it: 0 once a lease drop emptied the set without an
    assignment, while deltas are on (only a full set then applies; PROTOCOL.md 4.3, 6)."""
    return applied if intact or not delta_agreed else 0


def lease_drop():
    """The lease lapsed: delete everything (under lock)."""
    global intact
    for p in sorted(served):
        forget(p)
        event("delete", p, served.pop(p), cause="lease")
    intact = False


def serving_list(parts):
    """A reply's serving entries; a replica still copying says "ready": false (4.3)."""
    out = []
    for p in parts:
        e = {"partition": p, "generation": served[p]}
        if transfer_agreed and unready.get(p) == served[p]:
            e["ready"] = False
        out.append(e)
    return out


def begin_transfer(p, g, rep):
    """(under lock) A new replica that comes from another node: not ready until the copy (a
    timer here) is done; -1 never. Entries that become serving are no longer reported."""
    if rep.get("state") != "adding":
        report_ready.pop(p, None)
    if args.transfer_ms is None or not rep.get("from") or rep.get("state") != "adding":
        return
    unready[p] = g
    if args.transfer_ms < 0:
        return

    def done():
        with lock:
            if unready.get(p) == g and served.get(p) == g:
                del unready[p]
                report_ready[p] = g
                event("ready", p, g)
    threading.Timer(args.transfer_ms / 1000, done).start()


def forget(p):
    """(under lock) p is no longer served."""
    roles.pop(p, None)
    unready.pop(p, None)
    report_ready.pop(p, None)


def check_delta(body):
    """None when a delta's fields are well formed (PROTOCOL.md 4.3), else the 400 error."""
    rev, base = body.get("revision"), body.get("base_revision")
    removed = body.get("removed", [])
    reps = body.get("replicas")
    if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
        return ("EINVAL", '"revision" must be an integer >= 0')
    if not isinstance(base, int) or isinstance(base, bool) or not 0 <= base < rev:
        return ("EINVAL", '"base_revision" must be an integer in [0, revision)')
    if not isinstance(removed, list) or not all(isinstance(p, str) and p for p in removed):
        return ("EINVAL", '"removed" must be an array of partition ids')
    if not isinstance(reps, list) or not all(
            isinstance(r, dict) and isinstance(r.get("partition"), str) and
            isinstance(r.get("generation"), int) for r in reps):
        return ("EINVAL", '"replicas" must be an array of replicas')
    listed = [r["partition"] for r in reps]
    if len(set(listed)) != len(listed) or len(set(removed)) != len(removed) or \
            set(listed) & set(removed):
        return ("EPROTO", "a partition named twice")
    if body.get("released"):
        return ("EPROTO", "a release is never a delta")
    return None


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

    def do_GET(self):
        # GET /read/<partition>: a client's read, answered only while this worker serves the
        # partition (200 with its generation; 404 otherwise). The maintenance tests read every
        # partition through it while workers restart.
        if not self.path.startswith("/read/"):
            return self.reply(404, {"code": "ENOENT", "message": "routes: /read/<partition>"})
        pid = self.path[len("/read/"):]
        with lock:
            gen = served.get(pid)
        if gen is None:
            return self.reply(404, {"code": "ENOENT", "message": f"not serving '{pid}'"})
        return self.reply(200, {"partition": pid, "node": args.node, "generation": gen})

    def do_POST(self):
        global applied, lease_ms, lease_end, intact, term_seen
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            return self.reply(413, {"code": "ETOOBIG", "message": "body too large"})
        try:
            body = json.loads(self.rfile.read(n))
            assert isinstance(body, dict) and body.get("node") == args.node
        except Exception:
            return self.reply(400, {"code": "EINVAL", "message": "malformed message"})
        grant_end = 0.0  # until when this message's own grant lasts (0: it grants nothing)
        with lock:
            # a message of an older term than one seen is a deposed coordinator's: refused,
            # before it can renew a lease or change anything (PROTOCOL.md 4.2)
            term = body.get("term")
            refused = (not args.no_term and isinstance(term, int) and not isinstance(term, bool)
                       and term < term_seen)
            if args.msg_log:
                with open(args.msg_log, "a") as f:
                    f.write(json.dumps({"t": time.time(), "path": self.path, "term": term,
                                        "seen": term_seen, "refused": refused,
                                        "body": body}) + "\n")
            if refused:
                return self.reply(409, {"code": "ESTALE", "term": term_seen, "message":
                                        f"from term {term}, but term {term_seen} was seen"})
            if not args.no_term and isinstance(term, int) and term > term_seen:
                term_seen = term
            # only a message that grants the lease renews it; an assignment older than the one
            # applied renews nothing
            stale = self.path == "/shardz/v1/assign" and body.get("revision", 0) < applied
            if body.get("lease_ms") and not stale:
                now = time.monotonic()
                if lease_ms and served and now > lease_end:
                    lease_drop()  # it lapsed while this message waited
                # anchored at this worker's own clock when the coordinator echoes it: a grant
                # runs from the stamp of a reply it had received before sending, so a message
                # delivered late grants less, or nothing (else from its receipt); a stamp from
                # the future is not this process's clock: it grants nothing
                ls = body.get("lease_stamp")
                ls_ok = isinstance(ls, int) and not isinstance(ls, bool)
                end = (ls / 1000 if ls_ok else now) + body["lease_ms"] / 1000
                if end > now and not (ls_ok and ls / 1000 > now):
                    lease_ms = body["lease_ms"]
                    grant_end = end
                if grant_end and end > lease_end:
                    lease_end = end
                    if args.log_leases:
                        lease_event(time.time() + (end - now))
            if self.path == "/shardz/v1/ping":
                if args.fail_pings and os.path.exists(args.fail_pings):
                    return self.reply(503, {"code": "EUNAVAIL", "message": "pings failed on purpose"})
                if args.pings:
                    with open(args.pings, "a") as f:
                        f.write(f"{time.time()} {1 if body.get('lease_ms') else 0}\n")
                out = {"node": args.node, "applied_revision": reported(), "stamp": stamp()}
                if transfer_agreed and report_ready:
                    out["ready"] = [{"partition": p, "generation": g}
                                    for p, g in sorted(report_ready.items())]
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
        if args.assign_log:
            with open(args.assign_log, "a") as f:
                f.write(json.dumps({"t": time.time(), "revision": body.get("revision"),
                                    "base_revision": body.get("base_revision"),
                                    "replicas": len(body.get("replicas") or []),
                                    "removed": len(body.get("removed") or [])}) + "\n")
        if not args.no_delta and ("base_revision" in body or "removed" in body):
            return self.delta(body, grant_end)
        # Assignments one at a time; a slow serve hook (--serve-delay-ms) runs outside the
        # state lock, so pings are answered meanwhile (the worker library's lanes, likewise).
        with assign_lock:
            rev = body.get("revision", 0)
            to_serve = []
            with lock:
                # strict: never serve without a lease, and only while this message's own grant
                # lasts (one delivered late, or that waited, renewed nothing: PROTOCOL.md 6);
                # or the coordinator resynchronises us from a revision it never issued
                resync = body.get("resync_from")
                fresh = (rev >= applied or (isinstance(resync, int) and resync == applied)) \
                    and not (body.get("lease_ms") and time.monotonic() > min(lease_end, grant_end))
                if fresh:
                    intact = True
                    want = {r["partition"]: r["generation"] for r in body.get("replicas", [])}
                    ranges = {r["partition"]: r.get("range") for r in body.get("replicas", [])}
                    slots = {r["partition"]: r.get("slot") for r in body.get("replicas", [])}
                    rwant = {r["partition"]: r.get("role") for r in body.get("replicas", [])}
                    reps = {r["partition"]: r for r in body.get("replicas", [])}
                    for p in sorted(set(served) - set(want)):
                        forget(p)
                        event("delete", p, served.pop(p))
                    for p in want:  # assigned serving: its readiness was taken
                        if reps[p].get("state") != "adding":
                            report_ready.pop(p, None)
                    # serve again when the generation or the role changed (PROTOCOL.md 4.3)
                    to_serve = [(p, g) for p, g in sorted(want.items())
                                if served.get(p) != g or roles.get(p) != rwant.get(p)]
            for p, g in to_serve:
                if args.serve_delay_ms:
                    time.sleep(args.serve_delay_ms / 1000)
                with lock:
                    event("serve", p, g, ranges.get(p), slot=slots.get(p), role=rwant.get(p),
                          source=reps[p].get("from"))
                    new = p not in served
                    served[p] = g
                    roles[p] = rwant.get(p)
                    if new:
                        begin_transfer(p, g, reps[p])
            with lock:
                if fresh:
                    applied = rev
                if body.get("released"):
                    released.set()
                return self.reply(200, {"node": args.node, "applied_revision": reported(),
                                        "serving": serving_list(served),
                                        "failed": [], "stamp": stamp()})

    def delta(self, body, grant_end):
        """A delta assignment (PROTOCOL.md 4.3): stale, refused (409) or applied."""
        global applied
        bad = "base_revision" not in body and ("EPROTO", '"removed" without "base_revision"')
        bad = bad or check_delta(body)
        if bad:
            return self.reply(400, {"code": bad[0], "message": bad[1]})
        with assign_lock:
            rev, base = body["revision"], body["base_revision"]
            want = {r["partition"]: r["generation"] for r in body["replicas"]}
            ranges = {r["partition"]: r.get("range") for r in body["replicas"]}
            slots = {r["partition"]: r.get("slot") for r in body["replicas"]}
            rwant = {r["partition"]: r.get("role") for r in body["replicas"]}
            reps = {r["partition"]: r for r in body["replicas"]}
            with lock:
                if rev < applied or (body.get("lease_ms") and
                                     time.monotonic() > min(lease_end, grant_end)):
                    # stale, or no lease to serve under: answered like a stale full one
                    return self.reply(200, {"node": args.node, "applied_revision": reported(),
                                            "serving": serving_list(served),
                                            "failed": [], "stamp": stamp()})
                held_as_of = applied if intact else 0  # the set a delta would build on
                if held_as_of != base:
                    return self.reply(409, {"code": "ESTALE", "applied_revision": held_as_of,
                                            "message": f"delta on {base}, applied {held_as_of}"})
                for p in sorted(body.get("removed", [])):
                    if p in served:
                        forget(p)
                        event("delete", p, served.pop(p))
                for p in want:  # assigned serving: its readiness was taken
                    if reps[p].get("state") != "adding":
                        report_ready.pop(p, None)
                to_serve = [(p, g) for p, g in sorted(want.items())
                            if served.get(p) != g or roles.get(p) != rwant.get(p)]
            for p, g in to_serve:
                if args.serve_delay_ms:
                    time.sleep(args.serve_delay_ms / 1000)
                with lock:
                    event("serve", p, g, ranges.get(p), slot=slots.get(p), role=rwant.get(p),
                          source=reps[p].get("from"))
                    new = p not in served
                    served[p] = g
                    roles[p] = rwant.get(p)
                    if new:
                        begin_transfer(p, g, reps[p])
            with lock:
                applied = rev
                named = sorted(set(want) | set(body.get("removed", [])))
                return self.reply(200, {"node": args.node, "applied_revision": applied,
                                        "delta": True, "stamp": stamp(),
                                        "serving": serving_list(p for p in named
                                                                if p in served),
                                        "failed": []})


def lease_watch():
    """Strict mode: no contact for lease_ms -> delete everything."""
    while True:
        time.sleep(0.02)
        with lock:
            if lease_ms and served and time.monotonic() > lease_end:
                lease_drop()


def main():
    global delta_agreed, term_seen, transfer_agreed
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=lease_watch, daemon=True).start()
    ns = args.namespace
    body = {"id": args.node, "address": args.advertise or f"127.0.0.1:{args.port}"}
    if args.zone:
        body["zone"] = args.zone
    if args.capacity:
        body["capacity"] = {k: float(v) for k, v in
                            (kv.split("=") for kv in args.capacity.split(","))}
    body["features"] = ([] if args.no_delta else ["delta"]) + ([] if args.no_term else ["term"]) \
        + ([] if args.transfer_ms is None else ["transfer"])
    if not args.no_incarnation:
        body["incarnation"] = args.incarnation
    while True:
        try:
            body["stamp"] = stamp()  # its clock now: a lease granted on it runs from here
            reply = coordinator("POST", f"/v1/namespaces/{ns}/nodes", body)
            features = reply.get("features") if isinstance(reply, dict) else None
            with lock:  # each registration starts over (PROTOCOL.md 4.1)
                delta_agreed = isinstance(features, list) and "delta" in features
                transfer_agreed = isinstance(features, list) and "transfer" in features
                t = reply.get("term") if isinstance(reply, dict) else None
                if not args.no_term and isinstance(t, int) and t > term_seen:
                    term_seen = t
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
