"""The shardz worker (docs/PROTOCOL.md section 4): registers the node, answers the coordinator's
pings and assignments (full sets, or deltas when the coordinator agrees), applies each to what
the process serves through the application's serve / delete hooks, keeps the strict-mode lease
on the monotonic clock, and leaves gracefully.

Threads: the listener's (one per connection; pings are answered there under a short lock and
never wait for a hook), the requests that carry assignments (applied one at a time under the
apply lock; the hooks run on that request's thread), the lease thread (checks the lease every
lease_check_ms and drops everything when it lapses) and the registration thread (registers,
re-registers when the coordinator has gone quiet). `_mu` guards the state below it; no hook is
ever called with `_mu` held."""
import json
import logging
import math
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import protocol
from ._http import Coordinators
from .errors import ProtocolError, ShardzError, STATUS

log = logging.getLogger("shardz.worker")

CAUSE_ASSIGN = "assign"    # an assignment from the coordinator
CAUSE_LEASE = "lease"      # delete only: the strict-mode lease lapsed without contact
CAUSE_RELEASE = "release"  # delete only: a leave found the node unknown to the coordinator

MAX_DIMS = 8
MAX_SPLIT_KEY = 1024
DIM_RE = re.compile(r"[A-Za-z0-9._:-]{1,63}\Z")


@dataclass(frozen=True)
class Replica:
    """What a serve or delete hook is told. lo / hi: the key range [lo, hi) in range
    namespaces (lo "" is -infinity, hi None is +infinity); both None elsewhere. update: serve
    only, the partition was served already and only its generation or role changed
    (old_generation: the one served until now)."""
    namespace: str
    node: str
    partition: str
    slot: int
    role: str
    state: str
    generation: int
    revision: int
    lo: str = None
    hi: str = None
    update: bool = False
    old_generation: int = 0
    cause: str = CAUSE_ASSIGN
    from_node: str = None     # serve of an adding replica: the node it comes from (state
    from_address: str = None  # transfer, PROTOCOL.md 4.3) and its address; None: none named


class HookError(Exception):
    """A hook may raise this (or any exception): its message is reported to the coordinator."""


if hasattr(time, "CLOCK_BOOTTIME"):
    def lease_clock():
        """The lease's clock, in seconds: CLOCK_BOOTTIME (monotonic, and it keeps counting
        while the machine is suspended, so a suspended worker's lease runs out as the
        coordinator sees it); time.monotonic where the system has no CLOCK_BOOTTIME."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)
else:
    lease_clock = time.monotonic


def _error_body(code, message, **extra):
    body = {"code": code, "message": message}
    body.update(extra)
    return json.dumps(body).encode()


def _loopback(host):
    host = host.strip("[]")
    return host.startswith("127.") or host in ("::1", "localhost")


def warn_unprotected(node_id, listen, advertise, secret):
    """Protected mode's library half (issue 16): a worker reachable beyond loopback without a
    secret takes assignments from anyone who reaches it (one forged message deletes everything
    it serves). Not refused, but said loudly. Returns the warning, or None."""
    if secret:
        return None
    for addr in (listen, advertise):
        if addr is not None and not _loopback(addr.rpartition(":")[0]):
            msg = (f"INSECURE: worker {node_id} is reachable at {addr} without a secret: anyone "
                   f"who reaches it can assign or delete its partitions. Give it the "
                   f"coordinator's secret (secret=, from SHARDZ_SECRET or a file)")
            log.warning("%s", msg)
            return msg
    return None


class Worker:
    """A shardz worker. serve(replica) and delete(replica) are the application's hooks: called
    one at a time, never concurrently; raising reports a failure (a failed serve leaves the
    partition unserved and the coordinator retries it; a failed delete still counts the
    partition as gone).

    coordinators: "host:port" or several ("h1:p1,h2:p2" or a list, at most 8), tried in turn.
    listen: "host:port" of the library's own listener (port 0: any free port), or None when the
    application mounts `handle` / `wsgi` in its own server (then give `advertise`).
    capacity: {dimension: value}. lease_mode: "auto" (follow the namespace's consistency),
    "on", "off". clock: monotonic seconds for the lease and the watchdog (default: CLOCK_BOOTTIME
    where available, else time.monotonic; tests inject one)."""

    def __init__(self, coordinators, namespace, node_id, serve, delete, listen="127.0.0.1:0",
                 advertise=None, zone="", capacity=None, secret=None, lease_mode="auto",
                 lease_margin_ms=None, lease_check_ms=25, request_timeout=5.0, backoff_max=2.0,
                 reregister_after_ms=None, clock=lease_clock):
        if not protocol.valid_id(node_id):
            raise ValueError(f"node id {node_id!r} is not an id")
        if listen is None and advertise is None:
            raise ValueError("without a listener, give advertise (the address to register)")
        if lease_mode not in ("auto", "on", "off"):
            raise ValueError("lease_mode is auto, on or off")
        for dim, v in (capacity or {}).items():
            if not DIM_RE.match(dim) or not math.isfinite(v) or v < 0:
                raise ValueError(f"capacity {dim}={v} is not a name and a finite number >= 0")
        if len(capacity or {}) > MAX_DIMS:
            raise ValueError(f"at most {MAX_DIMS} capacity dimensions")
        self.namespace, self.node = namespace, node_id
        self._serve_hook, self._delete_hook = serve, delete
        self._listen, self._advertise = listen, advertise
        self.zone, self.capacity = zone or "", dict(capacity or {})
        self._secret = secret
        self._coords = Coordinators(coordinators, secret, request_timeout)
        self._lease_mode = lease_mode
        self._lease_margin_ms = lease_margin_ms
        self._check_s = lease_check_ms / 1000.0
        self._backoff_max = backoff_max
        self._reregister_after_ms = reregister_after_ms
        self._clock = clock

        self._apply = threading.Lock()  # one assignment or lease drop at a time (the hooks)
        self._mu = threading.Lock()     # the state below; held briefly, never across a hook
        self._served = {}               # partition -> Replica as last served
        self._in_serve = None           # partition whose serve hook runs now (may report load)
        self._unready = set()           # served, its transfer not done (not_ready / ready)
        self._report_ready = {}         # partition -> generation ready since, until assigned serving
        self._last_applied = 0          # revision of the last assignment applied (stale check)
        self._applied_reported = 0      # what replies report: 0 once the set no longer matches
        self._consistency = None        # "strict" / "available"; None: unknown (counts strict)
        self._lease_ms = 0              # as the coordinator sent it last
        # this process (PROTOCOL.md 4.1): a new one is a new holder for the coordinator
        self._incarnation = secrets.token_hex(16)
        self._term_seen = 0  # the highest coordinator term seen (PROTOCOL.md 4.2)
        self._contact = False           # a lease-granting message arrived
        self._last_contact = 0.0        # when it arrived (clock seconds)
        self._last_alive = clock()      # any message from the coordinator (the watchdog)
        self._revoked = False           # a lapse was noticed; no lease-granting message since
        self._drop_pending = False      # the lapse's drop is still to run
        self._lapses = 0                # lapses noticed (an assignment from before one is skipped)
        self._ping_interval_ms = 0
        self._load = {}                 # partition -> {dim: value}, until the next ping reply
        self._split = {}                # partition -> key, until the next ping reply
        self._leaving = False
        self._stopping = False
        self.delta_agreed = False
        self.transfer_agreed = False
        self.counters = {"registrations": 0, "assignments": 0, "deltas": 0, "deltas_refused": 0,
                         "lease_expiries": 0, "lease_checks": 0}
        self._registered = threading.Event()
        self._released = threading.Event()
        self._stop = threading.Event()
        self._reregister = threading.Event()
        self._server = None
        self._threads = []
        self.address = advertise
        warn_unprotected(node_id, listen, advertise, secret)

    # ---- life cycle -------------------------------------------------------------------------

    def start(self):
        """Binds the listener (if any) and starts the threads; registration then proceeds in
        the background, retried with backoff (see wait_registered). OSError when the bind
        fails; RuntimeError when started already."""
        if self._threads:
            raise RuntimeError("started already")
        if self._listen is not None:
            host, _, port = self._listen.rpartition(":")
            self._server = ThreadingHTTPServer((host, int(port)), _handler_for(self))
            self._server.daemon_threads = True
            if self._advertise is None:
                if host in ("", "0.0.0.0", "::"):
                    raise ValueError("listening on a wildcard address: give advertise")
                self.address = f"{host}:{self._server.server_address[1]}"
            self._spawn(self._server.serve_forever, "shardz-listener", 0.05)
        self._spawn(self._lease_loop, "shardz-lease")
        self._spawn(self._register_loop, "shardz-register")

    def _spawn(self, fn, name, *args):
        t = threading.Thread(target=fn, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def wait_registered(self, timeout=None):
        """True once the coordinator answered a registration; False after timeout seconds."""
        return self._registered.wait(timeout)

    def stop(self):
        """Stops the threads and closes the listener. Does not call delete for what is still
        served (a restarted worker that re-registers before it is dead keeps its replicas).
        Idempotent; never call it from a hook."""
        with self._mu:
            self._stopping = True
        self._stop.set()
        self._reregister.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=10)

    def leave(self, timeout=30.0):
        """Graceful shutdown: sends the leave (retried until a coordinator answers), keeps
        answering pings and assignments while the replicas move away, and returns True once an
        assignment with "released": true was applied; False after timeout seconds (None: no
        limit). The worker keeps running: call stop() next. Never call it from a hook."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._mu:
            self._leaving = True
        backoff = 0.05
        path = f"/v1/namespaces/{self.namespace}/nodes/{self.node}/leave"
        while not self._released.is_set():
            try:
                self._coords.request("POST", path, {})
                break
            except ShardzError as e:
                if e.status == 404:
                    self._release_unknown()
                    break
                log.warning("leave: %s", e)
            if end is not None and time.monotonic() + backoff > end:
                return False
            if self._stop.wait(backoff):
                return False
            backoff = min(backoff * 2, self._backoff_max)
        left = None if end is None else max(0.0, end - time.monotonic())
        return self._released.wait(left)

    def _release_unknown(self):
        """The coordinator does not know this node: nothing is routed here; drop everything."""
        with self._apply:
            self._drop_all(CAUSE_RELEASE)
            with self._mu:
                self._applied_reported = 0
        self._released.set()

    # ---- the application's calls ----------------------------------------------------------

    def not_ready(self, partition):
        """State transfer (PROTOCOL.md 4.3): from a serve hook, for the partition it serves: the
        replica is served but not ready (its data is still being copied, e.g. from
        replica.from_address); the coordinator keeps routing on the old owner until ready(), or
        the namespace's transfer_timeout_ms. A hook that never calls it is ready at once.
        KeyError when partition is not the one being served."""
        with self._mu:
            if partition != self._in_serve:
                raise KeyError(f"{partition} is not being served now")
            self._unready.add(partition)
            self._report_ready.pop(partition, None)

    def ready(self, partition, generation):
        """The transfer of a partition not_ready() marked is done: the next ping replies report
        it ready until an assignment shows it serving. Any thread. KeyError when the partition
        is not served at that generation."""
        with self._mu:
            r = self._served.get(partition)
            if (r is None or r.generation != generation) and partition != self._in_serve:
                raise KeyError(f"{partition} is not served at generation {generation}")
            if partition in self._unready:
                self._unready.discard(partition)
                self._report_ready[partition] = generation

    def report_load(self, partition, dimension, value):
        """Records a load sample of a served partition in one dimension; the latest per
        (partition, dimension) goes into the next ping reply, then is cleared. Any thread,
        hooks included. ValueError (bad name or value, too many dimensions), KeyError
        (partition not served)."""
        if not DIM_RE.match(dimension or ""):
            raise ValueError(f"dimension {dimension!r} is not a name")
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"load {value} is not a finite number >= 0")
        with self._mu:
            if partition not in self._served and partition != self._in_serve:
                raise KeyError(f"partition {partition} is not served here")
            dims = self._load.setdefault(partition, {})
            if dimension not in dims and len(dims) >= MAX_DIMS:
                raise ValueError(f"more than {MAX_DIMS} load dimensions")
            dims[dimension] = value

    def split_at(self, partition, key):
        """Range namespaces: suggests where to split a served range (e.g. the median of the
        application's own keys in it); the latest per partition goes into the next ping reply
        ("split_at"), then is cleared. ValueError (key empty or over 1024 bytes), KeyError
        (partition not served)."""
        if not isinstance(key, str) or not 1 <= len(key.encode()) <= MAX_SPLIT_KEY:
            raise ValueError(f"a split key is 1-{MAX_SPLIT_KEY} bytes")
        with self._mu:
            if partition not in self._served and partition != self._in_serve:
                raise KeyError(f"partition {partition} is not served here")
            self._split[partition] = key

    def lease_ok(self):
        """True while this worker may serve what it holds: the lease is not enforced, or it
        has not lapsed (measured now, so a process paused past its lease learns it before the
        lease thread runs). False from a lapse until the drop is done and a lease-granting
        message has arrived since the lapse. Call it on the request path before acting."""
        with self._mu:
            self._check_lapse(self._clock())
            return not self._revoked and not self._drop_pending

    def serving(self):
        """A copy of what is served: {partition: Replica}."""
        with self._mu:
            return dict(self._served)

    def status(self):
        """A snapshot of the worker's state and counters (a dict)."""
        with self._mu:
            st = dict(self.counters)
            st.update(registered=self._registered.is_set(), released=self._released.is_set(),
                      leaving=self._leaving, lease_enforced=self._lease_eff() > 0,
                      applied_revision=self._applied_reported, serving=len(self._served),
                      ping_interval_ms=self._ping_interval_ms, lease_ms=self._lease_ms,
                      delta_agreed=self.delta_agreed, address=self.address)
            return st

    # ---- the lease ---------------------------------------------------------------------------

    def _lease_eff(self, lease_ms=None):
        """Under _mu: the effective lease in seconds (0: not enforced) of lease_ms (None: the
        one granted last). It expires a margin early (default 2 lease checks + a tenth of the
        lease) so timer lag and the hooks' own time cannot make two owners overlap."""
        lease_ms = self._lease_ms if lease_ms is None else lease_ms
        on = {"on": True, "off": False}.get(self._lease_mode, self._consistency != "available")
        if not on or lease_ms <= 0:
            return 0.0
        lease = lease_ms
        margin = self._lease_margin_ms
        if margin is None:
            margin = 2 * self._check_s * 1000 + lease / 10
        eff = lease - margin if margin < lease / 2 else lease / 2 + 1
        return eff / 1000.0

    def _check_lapse(self, now):
        """Under _mu: notices a lapse (something served, no lease-granting contact for the
        effective lease): from now on lease_ok is False and replies report revision 0."""
        eff = self._lease_eff()
        if (self._drop_pending or eff == 0 or not self._contact or not self._served
                or now - self._last_contact < eff):
            return
        self._revoked = True
        self._drop_pending = True
        self._lapses += 1
        self._applied_reported = 0
        self.counters["lease_expiries"] += 1
        log.warning("%s: the lease lapsed: deleting everything", self.node)

    def _stamp(self):
        """This worker's clock in ms (PROTOCOL.md 4.1: stamp), sent in the registration and in
        every reply; the coordinator echoes it as lease_stamp."""
        return int(self._clock() * 1000)

    def _deposed(self, term):
        """Under _mu: the 409 reply to a message of an older term than one seen (a deposed
        coordinator's), or None (its term, if newer, is remembered)."""
        if 0 <= term < self._term_seen:
            log.warning("%s: refused a message of term %d: term %d seen", self.node, term,
                        self._term_seen)
            return 409, _error_body("ESTALE", f"from term {term}, but term {self._term_seen} was "
                                    "seen: a deposed coordinator", term=self._term_seen)
        self._term_seen = max(self._term_seen, term)
        return None

    def _on_contact(self, lease_ms, consistency, lease_stamp=-1):
        """Under _mu: a message arrived from the coordinator, granting a lease of lease_ms
        (0: none) from lease_stamp (this worker's clock echoed, in ms; -1: from its receipt).
        Returns (the lapse count it saw, until when its own grant lasts: None when it grants
        nothing). A grant that ran out before it arrived (a late message) renews nothing, and
        no grant shortens the lease (docs/PROTOCOL.md section 6)."""
        now = self._clock()
        self._check_lapse(now)  # before renewing: a late message does not undo a lapse
        self._last_alive = now
        if consistency is not None:
            self._consistency = consistency
        if lease_ms <= 0:
            # only a message that grants the lease renews it (the coordinator pings a node it
            # declared dead without lease_ms, docs/PROTOCOL.md section 6)
            return self._lapses, None
        start = now
        if lease_stamp > now * 1000:  # from the future: not this clock's (another process's)
            return self._lapses, None
        if lease_stamp >= 0:
            start = lease_stamp / 1000.0
        eff = self._lease_eff(lease_ms)
        if eff > 0 and now - start >= eff:
            return self._lapses, None  # delivered after its grant ran out
        if not self._contact or start > self._last_contact:
            self._last_contact = start
        self._contact = True
        self._lease_ms = lease_ms
        self._revoked = False  # heard from again (the drop, if pending, still comes first)
        return self._lapses, (start + eff if eff > 0 else math.inf)

    def _lease_loop(self):
        while not self._stop.wait(self._check_s):
            with self._mu:
                self._check_lapse(self._clock())
                self.counters["lease_checks"] += 1
                pending = self._drop_pending
            if pending:
                with self._apply:
                    self._run_pending_drop()

    def _run_pending_drop(self):
        """Under _apply: the lapse's drop, before anything else is applied."""
        with self._mu:
            if not self._drop_pending:
                return
        self._drop_all(CAUSE_LEASE)
        with self._mu:
            self._drop_pending = False
            self._applied_reported = 0

    def _drop_all(self, cause):
        """Under _apply: delete for everything served, in partition id order."""
        with self._mu:
            victims = sorted(self._served.items())
            revision = self._last_applied
        for pid, rep in victims:
            r = replace(rep, revision=revision, update=False, old_generation=0, cause=cause)
            self._call_hook(self._delete_hook, r)
            with self._mu:
                self._served.pop(pid, None)
                self._load.pop(pid, None)
                self._split.pop(pid, None)

    # ---- registration ---------------------------------------------------------------------

    def _register_once(self):
        body = {"id": self.node, "address": self.address, "zone": self.zone,
                "features": ["delta", "term", "transfer"], "incarnation": self._incarnation}
        if self.capacity:
            body["capacity"] = self.capacity
        with self._mu:
            body["stamp"] = self._stamp()  # a lease granted on this registration runs from here
        _, reply, _ = self._coords.request("POST", f"/v1/namespaces/{self.namespace}/nodes", body)
        reply = reply if isinstance(reply, dict) else {}
        consistency = reply.get("consistency")
        if consistency is None:
            _, ns, _ = self._coords.request("GET", f"/v1/namespaces/{self.namespace}")
            consistency = (ns or {}).get("consistency") or (ns or {}).get("config", {}).get("consistency")
        with self._mu:
            if consistency is not None:
                self._consistency = "available" if consistency == "available" else "strict"
            if isinstance(reply.get("ping_interval_ms"), int):
                self._ping_interval_ms = reply["ping_interval_ms"]
            if isinstance(reply.get("lease_ms"), int) and self._lease_ms == 0:
                self._lease_ms = reply["lease_ms"]
            self.delta_agreed = "delta" in (reply.get("features") or [])
            self.transfer_agreed = "transfer" in (reply.get("features") or [])
            if isinstance(reply.get("term"), int) and reply["term"] > self._term_seen:
                self._term_seen = reply["term"]  # the registering coordinator's leadership
            self.counters["registrations"] += 1
            self._last_alive = self._clock()

    def _reregister_after(self):
        if self._reregister_after_ms is not None:
            return self._reregister_after_ms / 1000.0
        return max(10 * self._ping_interval_ms, 3000) / 1000.0

    def _register_loop(self):
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._register_once()
                self._registered.set()
                backoff = 0.05
            except ShardzError as e:
                log.warning("%s: register: %s", self.node, e)
                self._stop.wait(backoff * random.uniform(0.75, 1.25))
                backoff = min(backoff * 2, self._backoff_max)
                continue
            # the watchdog: register again when the coordinator has gone quiet
            while not self._stop.is_set():
                self._reregister.wait(self._check_s * 4)
                self._reregister.clear()
                with self._mu:
                    quiet = self._clock() - self._last_alive
                    leaving = self._leaving
                if not leaving and quiet >= self._reregister_after():
                    log.warning("%s: no ping for %.1f s: registering again", self.node, quiet)
                    break

    # ---- requests from the coordinator ---------------------------------------------------

    def handle(self, method, path, authorization, body):
        """One request for a path under /shardz/v1/ (for an application that mounts the worker
        in its own HTTP server). authorization: the Authorization header or None; body: bytes.
        Returns (status, reply body bytes, JSON). Pings are answered at once; an assignment
        returns once its hooks ran. Thread-safe; never call it from a hook."""
        if self._secret and authorization != "Bearer " + self._secret:
            return 401, _error_body("EPROTO", "bad or missing secret")
        p = path.split("?", 1)[0]
        if p not in ("/shardz/v1/ping", "/shardz/v1/assign"):
            return 404, _error_body("ENOENT", "no such endpoint (POST /shardz/v1/ping or assign)")
        if method != "POST":
            return 400, _error_body("EPROTO", "only POST is accepted here")
        if len(body) > protocol.MAX_BODY:
            return 413, _error_body("ETOOBIG", "body over 1 MiB")
        try:
            if p == "/shardz/v1/ping":
                return self._on_ping(protocol.parse_ping(body, self.namespace, self.node))
            return self._on_assign(protocol.parse_assign(body, self.namespace, self.node))
        except ProtocolError as e:
            log.warning("%s: rejected %s: %s", self.node, p, e.message)
            return STATUS[e.code], _error_body(e.code, e.message)

    def wsgi(self, environ, start_response):
        """A WSGI application serving /shardz/v1/ (mount it under that prefix's parent)."""
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        if n > protocol.MAX_BODY:
            status, out = 413, _error_body("ETOOBIG", "body over 1 MiB")
        else:
            body = environ["wsgi.input"].read(n) if n else b""
            status, out = self.handle(environ["REQUEST_METHOD"],
                                      environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                                      environ.get("HTTP_AUTHORIZATION"), body)
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    def _on_ping(self, ping):
        with self._mu:
            if self._stopping:
                return 409, _error_body("EBUSY", "worker not running")
            refused = self._deposed(ping.term)
            if refused:
                return refused
            self._on_contact(ping.lease_ms, ping.consistency, ping.lease_stamp)
            reply = {"node": self.node, "applied_revision": self._applied_reported,
                     "stamp": self._stamp()}
            if self._load:
                reply["load"] = {p: d for p, d in self._load.items() if p in self._served}
                self._load = {}
            if self._split:
                reply["split_at"] = {p: k for p, k in self._split.items() if p in self._served}
                self._split = {}
            if self.transfer_agreed and self._report_ready:
                reply["ready"] = [{"partition": p, "generation": g}
                                  for p, g in sorted(self._report_ready.items())]
            for k in ("load", "split_at"):
                if k in reply and not reply[k]:
                    del reply[k]
        return 200, json.dumps(reply).encode()

    def _reply(self, named=None, failed=()):
        """Under _mu: the assignment reply; named: the partitions a delta named (None: full)."""
        serving = [{"partition": p, "generation": r.generation}
                   for p, r in sorted(self._served.items()) if named is None or p in named]
        if self.transfer_agreed:
            for e in serving:  # its transfer goes on (PROTOCOL.md 4.3)
                if e["partition"] in self._unready:
                    e["ready"] = False
        reply = {"node": self.node, "applied_revision": self._applied_reported,
                 "stamp": self._stamp()}
        if named is not None:
            reply["delta"] = True
        reply["serving"] = serving
        reply["failed"] = list(failed)
        return reply

    def _on_assign(self, a):
        with self._mu:
            if self._stopping:
                return 409, _error_body("EBUSY", "worker stopping")
            refused = self._deposed(a.term)
            if refused:
                return refused
            # an assignment older than one applied renews nothing, unless it resynchronises us
            # from a revision the coordinator never issued (a strict worker would stay wedged:
            # the assignment that resynchronises it would bring no lease to apply it under)
            stale = a.revision < self._last_applied and not (
                a.resync_from and a.resync_from == self._last_applied)
            seen_lapses, grant_end = self._on_contact(0 if stale else a.lease_ms, a.consistency,
                                                      a.lease_stamp)
        with self._apply:
            self._run_pending_drop()  # a lapse is handled before anything that came after it
            with self._mu:
                # older than the last applied is stale, unless the coordinator resynchronises us
                # from a revision it never issued (a forged assignment would wedge us otherwise)
                older = a.revision < self._last_applied and not (
                    a.resync_from and a.resync_from == self._last_applied)
                # a strict assignment is applied only while its own grant lasts: one delivered
                # late, or that waited past its grant, may be one the coordinator gave up on
                ungranted = (a.lease_ms > 0 and self._lease_eff(a.lease_ms) > 0 and
                             (grant_end is None or self._clock() >= grant_end))
                if (self._lapses != seen_lapses or older or ungranted
                        or 0 <= a.term < self._term_seen):  # a newer term came meanwhile
                    # arrived before a lapse was noticed, without a lease (not applied), or stale
                    return 200, json.dumps(self._reply()).encode()
                if a.delta and self._applied_reported != a.base_revision:
                    self.counters["deltas_refused"] += 1
                    return 409, _error_body(
                        "ESTALE", f"base_revision {a.base_revision} is not the applied revision "
                        f"{self._applied_reported}", applied_revision=self._applied_reported)
                if a.delta:
                    drops = [p for p in a.removed if p in self._served]
                else:
                    drops = sorted(p for p in self._served if p not in a.replicas)
            failed = self._apply_changes(a, drops)
            with self._mu:
                self._last_applied = a.revision
                self._applied_reported = a.revision
                self.counters["assignments"] += 1
                if a.delta:
                    self.counters["deltas"] += 1
                named = set(a.replicas) | set(a.removed) if a.delta else None
                reply = self._reply(named, failed)
            if a.released:
                self._released.set()
        return 200, json.dumps(reply).encode()

    def _apply_changes(self, a, drops):
        """Under _apply: deletes first, then serves, each in partition id order. Returns the
        failed list of the reply."""
        failed = []
        for pid in drops:
            with self._mu:
                rep = self._served.get(pid)
            r = replace(rep, revision=a.revision, update=False, old_generation=0,
                        cause=CAUSE_ASSIGN)
            err = self._call_hook(self._delete_hook, r)
            if err is not None:
                failed.append({"partition": pid, "error": err})
            with self._mu:  # a failed delete still counts as gone: routing left it
                self._served.pop(pid, None)
                self._load.pop(pid, None)
                self._split.pop(pid, None)
                self._unready.discard(pid)
                self._report_ready.pop(pid, None)
        for pid in sorted(a.replicas):
            ar = a.replicas[pid]
            with self._mu:
                old = self._served.get(pid)
            new = Replica(self.namespace, self.node, pid, ar.slot, ar.role, ar.state,
                          ar.generation, a.revision, ar.lo if ar.has_range else None,
                          ar.hi if ar.has_range else None, cause=CAUSE_ASSIGN,
                          from_node=ar.from_node, from_address=ar.from_address)
            if old is not None and old.generation == ar.generation and old.role == ar.role:
                with self._mu:  # only state or slot changed: no hook
                    self._served[pid] = replace(new, revision=old.revision)
                    if ar.state != "adding":
                        self._report_ready.pop(pid, None)  # the coordinator took it
                continue
            if old is not None:
                new = replace(new, update=True, old_generation=old.generation)
            with self._mu:
                self._in_serve = pid
                self._unready.discard(pid)  # a new serve: its own readiness
                self._report_ready.pop(pid, None)
            err = self._call_hook(self._serve_hook, new)
            with self._mu:
                self._in_serve = None
                if err is None:
                    self._served[pid] = new
            if err is not None:
                failed.append({"partition": pid, "error": err})
        return failed

    def _call_hook(self, hook, replica):
        """Runs a hook; None on success, else the error's text (at most 255 characters)."""
        try:
            hook(replica)
            return None
        except Exception as e:  # the application's failure is reported, never fatal
            log.warning("%s: hook failed for %s: %s", self.node, replica.partition, e)
            return (str(e) or type(e).__name__)[:255]


def _handler_for(worker):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the coordinator keeps its connections

        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > protocol.MAX_BODY:
                status, out = 413, _error_body("ETOOBIG", "body over 1 MiB")
                self.close_connection = True
            else:
                body = self.rfile.read(n) if n else b""
                status, out = worker.handle(self.command, self.path,
                                            self.headers.get("Authorization"), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = do_GET = do_PUT = do_DELETE = _any

        def log_message(self, fmt, *args):
            log.debug("%s: " + fmt, worker.node, *args)

    return Handler
