"""The shardz router (docs/PROTOCOL.md section 7): answers "who serves partition P / key K" from
a local snapshot of the coordinator's /state, kept fresh by long-polling /watch.

A Snapshot is immutable once built; the router thread builds the next one aside and installs it
with one attribute store (atomic under the interpreter), so a lookup never waits for an update
and always reads one consistent snapshot. Threads: the router thread (fetches, builds, installs);
any number of application threads (lookups, wait)."""
import bisect
import logging
import random
import threading
from array import array
from dataclasses import dataclass

from .keyhash import _xxh3
from ._http import Coordinators
from .errors import ShardzError

log = logging.getLogger("shardz.router")


@dataclass(frozen=True)
class RouteReplica:
    node: str
    address: str
    role: str
    state: str        # replica state: "adding", "serving", "dropping"
    node_state: str   # "alive", "suspect", ...
    slot: int
    generation: int


@dataclass(frozen=True)
class Route:
    """A partition and its replicas in slot order. target: the replica to send requests to
    (the serving primary, else the first serving replica), None when none serves. lo / hi: the
    range in range namespaces (hi None: +infinity)."""
    partition: str
    generation: int
    replicas: tuple
    target: RouteReplica = None
    lo: str = None
    hi: str = None

    def serving(self):
        return [r for r in self.replicas if r.state == "serving"]


class Snapshot:
    """One /state, indexed for lookups. Immutable; safe to share between threads."""

    def __init__(self, state, slots=0):
        """state: a parsed /state body; slots: the namespace's slot count when the state does
        not carry one. ValueError for a state that does not add up (overlapping slots, a
        partition twice)."""
        self.revision = int(state["revision"])
        self.sharder = state.get("sharder", "replica")
        self.slots = int(state.get("slots") or slots or 0) if self.sharder == "hash" else 0
        routes = {}
        ranges = []
        slot_owner = array("i", [-1]) * self.slots if self.slots else None
        order = []
        for p in state.get("partitions", []):
            pid = p["id"]
            if pid in routes:
                raise ValueError(f"partition {pid} listed twice")
            reps = []
            for i, r in enumerate(p.get("replicas", [])):
                reps.append(RouteReplica(r.get("node", ""), r.get("address", ""),
                                         r.get("role", "none"), r.get("state", "serving"),
                                         r.get("node_state", ""), int(r.get("slot", i)),
                                         int(r.get("generation", p.get("generation", 0)))))
            reps.sort(key=lambda r: r.slot)
            serving = [r for r in reps if r.state == "serving"]
            target = next((r for r in serving if r.role == "primary"), serving[0] if serving else None)
            rng = p.get("range")
            lo = hi = None
            if rng is not None:
                lo, hi = rng.get("lo", ""), rng.get("hi")
            route = Route(pid, int(p.get("generation", 0)), tuple(reps), target, lo, hi)
            routes[pid] = route
            order.append(pid)
            if slot_owner is not None:
                idx = len(order) - 1
                for lo_s, hi_s in p.get("slots", []):
                    if not 0 <= lo_s < hi_s <= self.slots:
                        raise ValueError(f"partition {pid}: slots [{lo_s}, {hi_s}) out of range")
                    if max(slot_owner[lo_s:hi_s]) != -1:
                        raise ValueError(f"partition {pid}: slots [{lo_s}, {hi_s}) held twice")
                    slot_owner[lo_s:hi_s] = array("i", [idx]) * (hi_s - lo_s)
            if rng is not None and p.get("routed", True):
                ranges.append((lo.encode(), route))
        ranges.sort(key=lambda x: x[0])
        self._routes = routes
        self._order = [routes[pid] for pid in order]
        self._slot_owner = slot_owner
        if self.slots & (self.slots - 1):
            raise ValueError(f"slots {self.slots} is not a power of two")
        self._mask = self.slots - 1 if self.slots else 0
        self._range_lo = [lo for lo, _ in ranges]
        self._range_route = [r for _, r in ranges]

    def partitions(self):
        """Every Route, in the state's order."""
        return list(self._order)

    def lookup_partition(self, partition):
        """The Route of a partition, or None."""
        return self._routes.get(partition)

    def lookup_key(self, key):
        """(slot, Route) for a key (str or bytes): in hash namespaces its slot and the partition
        holding it; in range namespaces slot is None and the routed range holding it. Route is
        None when nothing holds it. ValueError in namespaces of another kind."""
        if self._slot_owner is not None:
            # keyhash.key_slot inlined (the hot path): hash tag, XXH3-64, mask
            b = key if type(key) is bytes else (key.encode() if type(key) is str else bytes(key))
            o = b.find(b"{")
            if o >= 0:
                c = b.find(b"}", o + 1)
                if c > o + 1:
                    b = b[o + 1:c]
            s = _xxh3(b) & self._mask
            i = self._slot_owner[s]
            return s, (self._order[i] if i >= 0 else None)
        if self.sharder == "range":
            b = key.encode() if isinstance(key, str) else bytes(key)
            i = bisect.bisect_right(self._range_lo, b) - 1
            if i < 0:
                return None, None
            r = self._range_route[i]
            if r.hi is not None and b >= r.hi.encode():
                return None, None
            return None, r
        raise ValueError(f"key lookups need a hash or range namespace, not {self.sharder}")


class Router:
    """A router for one namespace. start() fetches the first snapshot; a background thread keeps
    it fresh. Lookups read the current snapshot without taking a lock."""

    def __init__(self, coordinators, namespace, secret=None, watch_timeout_ms=30000,
                 request_timeout=5.0, backoff_max=2.0, on_change=None):
        self.namespace = namespace
        self._coords = Coordinators(coordinators, secret, request_timeout)
        self._watch_timeout_ms = watch_timeout_ms
        self._backoff_max = backoff_max
        self._on_change = on_change
        self._snap = None               # the installed Snapshot (replaced whole, never changed)
        self._cond = threading.Condition()  # wait() sleeps here; the thread notifies
        self._stop = threading.Event()
        self._thread = None
        self._slots = 0

    def start(self, timeout=5.0):
        """Starts the thread and waits for the first snapshot: True, or False after timeout
        seconds (the thread keeps trying; lookups answer None meanwhile)."""
        if self._thread is not None:
            raise RuntimeError("started already")
        self._thread = threading.Thread(target=self._run, name="shardz-router", daemon=True)
        self._thread.start()
        return self.wait(1, timeout)

    def stop(self):
        """Stops the thread (a long-poll in flight ends with its timeout, at most
        watch_timeout_ms later, in the background)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def snapshot(self):
        """The current Snapshot (None before the first): many lookups against one view."""
        return self._snap

    @property
    def revision(self):
        s = self._snap
        return s.revision if s is not None else 0

    def lookup_partition(self, partition):
        s = self._snap
        return s.lookup_partition(partition) if s is not None else None

    def lookup_key(self, key):
        """(slot, Route) as Snapshot.lookup_key; (None, None) before the first snapshot."""
        s = self._snap
        return s.lookup_key(key) if s is not None else (None, None)

    def wait(self, revision, timeout=None):
        """True once the installed revision is >= revision; False after timeout seconds."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stop.is_set() or self.revision >= revision, timeout) \
                and self.revision >= revision

    def load_state(self, state):
        """Installs a parsed /state (as the thread would). False when not newer."""
        snap = Snapshot(state, self._slots)
        return self._install(snap, force=False)

    def _install(self, snap, force):
        with self._cond:
            cur = self._snap
            if cur is not None and snap.revision <= cur.revision and not force:
                return False
            self._snap = snap  # one store: lookups see the old or the new snapshot, whole
            self._cond.notify_all()
        if self._on_change is not None:
            self._on_change(snap.revision)
        return True

    def _run(self):
        base = f"/v1/namespaces/{self.namespace}"
        backoff = 0.05
        answered_by = None
        while not self._stop.is_set():
            try:
                if self._snap is None or answered_by is None:
                    _, ns, _ = self._coords.request("GET", base)
                    self._slots = int((ns or {}).get("slots") or 0)
                    _, st, who = self._coords.request("GET", base + "/state")
                    # another coordinator's revisions are its own: start again from its state
                    self._install(Snapshot(st, self._slots), force=True)
                    answered_by = who
                    backoff = 0.05
                    continue
                t = self._watch_timeout_ms
                _, st, who = self._coords.request(
                    "GET", f"{base}/watch?revision={self.revision}&timeout_ms={t}",
                    timeout=t / 1000.0 + 5)
                if who != answered_by:
                    answered_by = None  # moved to another coordinator: read its /state
                    continue
                if st and not st.get("unchanged"):
                    self._install(Snapshot(st, self._slots), force=False)
                backoff = 0.05
            except (ShardzError, ValueError, KeyError, TypeError) as e:
                log.warning("router %s: %s", self.namespace, e)
                answered_by = None
                self._stop.wait(backoff * random.uniform(0.75, 1.25))
                backoff = min(backoff * 2, self._backoff_max)
