"""The worker side of the protocol's messages (docs/PROTOCOL.md 4.2, 4.3): parses and validates
a ping or an assignment (full or delta) addressed to this worker, with the same rules and codes
as libshardz (src/lib/proto.c), so that every library answers a bad message alike. Pure: no
thread, socket or clock; a message that fails any check is refused whole (ProtocolError)."""
import json
import re
from dataclasses import dataclass, field

from .errors import ProtocolError

ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,255}\Z")
NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,63}\Z")
LEASE_MAX = 86_400_000  # a day: anything longer is a typo
SLOT_MAX = 255
INT64_MAX = 2**63 - 1
RANGE_MAX = 1024
MAX_BODY = 1 << 20


def valid_id(s):
    return isinstance(s, str) and ID_RE.match(s) is not None


def _int(obj, key, lo, hi):
    v = obj.get(key)
    # bool is an int in Python; JSON true is not an integer
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        return None
    return v


@dataclass(frozen=True)
class AssignedReplica:
    """One replica of an assignment. lo/hi: its range in range namespaces (lo "" is -inf, hi
    None is +inf); has_range False elsewhere."""
    partition: str
    generation: int
    slot: int = 0
    role: str = "none"
    state: str = "serving"
    has_range: bool = False
    lo: str = None
    hi: str = None
    from_node: str = None     # state transfer (PROTOCOL.md 4.3): the node it comes from
    from_address: str = None  # and its address, host:port


@dataclass
class Ping:
    revision: int
    lease_ms: int  # 0: the ping grants no lease
    consistency: str  # "strict", "available" or None when not said
    lease_stamp: int = -1  # the worker's own clock (ms) the grant runs from; -1: not said
    term: int = -1  # the sending coordinator's leadership (PROTOCOL.md 4.2); -1: not said


@dataclass
class Assignment:
    revision: int
    lease_ms: int
    consistency: str
    lease_stamp: int = -1  # as in Ping
    term: int = -1  # as in Ping
    released: bool = False
    replicas: dict = field(default_factory=dict)  # partition -> AssignedReplica
    delta: bool = False
    base_revision: int = 0
    removed: list = field(default_factory=list)   # sorted partition ids
    resync_from: int = 0  # full only: applied even if older, when the last applied is this one


def _load(body, ns, node):
    if not body:
        raise ProtocolError("EINVAL", "empty body")
    try:
        root = json.loads(body, object_pairs_hook=_no_duplicates)
    except ProtocolError:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("EINVAL", f"malformed JSON: {e}")
    if not isinstance(root, dict):
        raise ProtocolError("EINVAL", "the body is not a JSON object")
    mns, mnode = root.get("namespace"), root.get("node")
    if not isinstance(mns, str) or not isinstance(mnode, str):
        raise ProtocolError("EINVAL", '"namespace" and "node" are required strings')
    if mns != ns or mnode != node:
        raise ProtocolError("EPROTO", f"addressed to {mns[:63]}/{mnode[:255]}, this is {ns}/{node}")
    return root


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ProtocolError("EINVAL", f"malformed JSON: duplicate object key {k!r}")
        out[k] = v
    return out


def _common(root):
    revision = _int(root, "revision", 0, INT64_MAX)
    if revision is None:
        raise ProtocolError("EINVAL", '"revision" must be an integer >= 0')
    lease_ms = 0
    if "lease_ms" in root:
        lease_ms = _int(root, "lease_ms", 1, LEASE_MAX)
        if lease_ms is None:
            raise ProtocolError("EINVAL", f'"lease_ms" must be an integer in [1, {LEASE_MAX}]')
    c = root.get("consistency")
    consistency = None if c is None else ("available" if c == "available" else "strict")
    lease_stamp = -1
    if "lease_stamp" in root:
        lease_stamp = _int(root, "lease_stamp", 0, INT64_MAX)
        if lease_stamp is None:
            raise ProtocolError("EINVAL", '"lease_stamp" must be an integer >= 0')
    term = -1
    if "term" in root:
        term = _int(root, "term", 0, INT64_MAX)
        if term is None:
            raise ProtocolError("EINVAL", '"term" must be an integer >= 0')
    return revision, lease_ms, consistency, lease_stamp, term


def parse_ping(body, ns, node):
    """A ping's body (bytes) -> Ping; ProtocolError when refused."""
    root = _load(body, ns, node)
    return Ping(*_common(root))


def _name(rep, key, default, i):
    v = rep.get(key, default) if key not in rep else rep[key]
    if not isinstance(v, str) or NAME_RE.match(v) is None:
        raise ProtocolError("EINVAL", f"replicas[{i}].{key} must be a name of 1-63 id characters")
    return v


def _bound(rng, key, i):
    v = rng.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v.encode()) > RANGE_MAX or "\0" in v:
        raise ProtocolError("EINVAL",
                            f"replicas[{i}].range.{key} must be a string of at most {RANGE_MAX} bytes")
    return v


def _replica(rep, i):
    if not isinstance(rep, dict):
        raise ProtocolError("EINVAL", f"replicas[{i}] is not an object")
    pid = rep.get("partition")
    if not valid_id(pid):
        raise ProtocolError("EINVAL", f"replicas[{i}].partition must be an id (1-255 of [A-Za-z0-9._:-])")
    gen = _int(rep, "generation", 0, INT64_MAX)
    if gen is None:
        raise ProtocolError("EINVAL", f"replicas[{i}].generation must be an integer >= 0")
    slot = 0
    if "slot" in rep:
        slot = _int(rep, "slot", 0, SLOT_MAX)
        if slot is None:
            raise ProtocolError("EINVAL", f"replicas[{i}].slot must be an integer in [0, {SLOT_MAX}]")
    role = _name(rep, "role", "none", i)
    state = _name(rep, "state", "serving", i)
    rng = rep.get("range")
    has_range, lo, hi = False, None, None
    if rng is not None:
        if not isinstance(rng, dict):
            raise ProtocolError("EINVAL", f"replicas[{i}].range must be an object {{lo, hi}}")
        has_range = True
        lo = _bound(rng, "lo", i)
        hi = _bound(rng, "hi", i)
        lo = "" if lo is None else lo
    src = rep.get("from")
    from_node = from_address = None
    if src is not None:
        if not (isinstance(src, dict) and valid_id(src.get("node")) and
                isinstance(src.get("address"), str) and 0 < len(src["address"]) <= 261):
            raise ProtocolError("EINVAL", f'replicas[{i}].from must be {{"node": id, "address": '
                                f'host:port}}')
        from_node, from_address = src["node"], src["address"]
    return AssignedReplica(pid, gen, slot, role, state, has_range, lo, hi, from_node,
                           from_address)


def parse_assign(body, ns, node):
    """An assignment's body (bytes) -> Assignment; ProtocolError when refused."""
    root = _load(body, ns, node)
    revision, lease_ms, consistency, lease_stamp, term = _common(root)
    a = Assignment(revision, lease_ms, consistency, lease_stamp, term)
    rel = root.get("released")
    if rel is not None and not isinstance(rel, bool):
        raise ProtocolError("EINVAL", '"released" must be a boolean')
    a.released = rel is True
    reps = root.get("replicas")
    if not (reps is None and a.released):
        if not isinstance(reps, list):
            raise ProtocolError("EINVAL", '"replicas" must be an array')
        if a.released and reps:
            raise ProtocolError("EPROTO", "a release must carry no replicas")
        for i, rep in enumerate(reps):
            r = _replica(rep, i)
            if r.partition in a.replicas:
                raise ProtocolError("EPROTO", f"partition {r.partition} is listed twice")
            a.replicas[r.partition] = r
    _delta(root, a)
    return a


def _delta(root, a):
    base = root.get("base_revision", _MISSING)
    rm = root.get("removed", _MISSING)
    if "resync_from" in root:
        r = _int(root, "resync_from", 1, INT64_MAX)
        if r is None or base is not _MISSING:
            raise ProtocolError("EINVAL", '"resync_from" must be an integer >= 1, on a full assignment')
        a.resync_from = r
    if base is _MISSING:
        if rm is not _MISSING:
            raise ProtocolError("EPROTO", '"removed" is only for a delta (with "base_revision")')
        return
    b = _int(root, "base_revision", 0, INT64_MAX)
    if b is None:
        raise ProtocolError("EINVAL", '"base_revision" must be an integer >= 0')
    if b >= a.revision:
        raise ProtocolError("EINVAL", f'"base_revision" ({b}) must be below "revision" ({a.revision})')
    a.delta, a.base_revision = True, b
    if a.released:
        raise ProtocolError("EPROTO", "a release is never a delta")
    if rm is _MISSING:
        return
    if not isinstance(rm, list):
        raise ProtocolError("EINVAL", '"removed" must be an array of partition ids')
    for i, pid in enumerate(rm):
        if not valid_id(pid):
            raise ProtocolError("EINVAL", f"removed[{i}] must be an id (1-255 of [A-Za-z0-9._:-])")
    seen = set()
    for pid in sorted(rm):
        if pid in seen:
            raise ProtocolError("EPROTO", f"partition {pid} is removed twice")
        if pid in a.replicas:
            raise ProtocolError("EPROTO", f"partition {pid} is both listed and removed")
        seen.add(pid)
    a.removed = sorted(rm)


_MISSING = object()
