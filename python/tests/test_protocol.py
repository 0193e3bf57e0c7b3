"""The worker's message parser: the rules and codes of docs/PROTOCOL.md 4.2 / 4.3."""
import json

import pytest

from shardz.errors import ProtocolError
from shardz.protocol import parse_assign, parse_ping

BASE = {"namespace": "kv", "node": "w1", "revision": 13}
REP = {"partition": "p1", "slot": 0, "role": "primary", "generation": 4, "state": "serving"}


def enc(obj):
    return json.dumps(obj).encode()


def test_ping():
    p = parse_ping(enc(dict(BASE, lease_ms=1000, consistency="strict")), "kv", "w1")
    assert (p.revision, p.lease_ms, p.consistency) == (13, 1000, "strict")
    p = parse_ping(enc(BASE), "kv", "w1")
    assert (p.lease_ms, p.consistency) == (0, None)


def test_full_and_delta():
    a = parse_assign(enc(dict(BASE, replicas=[REP, dict(REP, partition="p0", slot=1)])), "kv", "w1")
    assert not a.delta and sorted(a.replicas) == ["p0", "p1"]
    assert a.replicas["p1"].role == "primary" and not a.replicas["p1"].has_range
    d = parse_assign(enc(dict(BASE, revision=15, base_revision=13, replicas=[],
                              removed=["p9", "p2"])), "kv", "w1")
    assert d.delta and d.base_revision == 13 and d.removed == ["p2", "p9"]
    r = parse_assign(enc(dict(BASE, replicas=[dict(REP, range={"lo": "", "hi": None})])), "kv", "w1")
    assert r.replicas["p1"].has_range and (r.replicas["p1"].lo, r.replicas["p1"].hi) == ("", None)
    rel = parse_assign(enc(dict(BASE, released=True)), "kv", "w1")
    assert rel.released and rel.replicas == {}


@pytest.mark.parametrize("body,code", [
    (b"", "EINVAL"),
    (b"{", "EINVAL"),
    (b"[]", "EINVAL"),
    (b'{"namespace": "kv", "node": "w1", "node": "w1", "revision": 1, "replicas": []}', "EINVAL"),
    (enc(dict(BASE, node="w2", replicas=[])), "EPROTO"),
    (enc(dict(BASE, revision=True, replicas=[])), "EINVAL"),
    (enc(dict(BASE, revision=-1, replicas=[])), "EINVAL"),
    (enc(dict(BASE, lease_ms=0, replicas=[])), "EINVAL"),
    (enc(dict(BASE, replicas={})), "EINVAL"),
    (enc(dict(BASE, replicas=[dict(REP, partition="a b")])), "EINVAL"),
    (enc(dict(BASE, replicas=[dict(REP, generation=-1)])), "EINVAL"),
    (enc(dict(BASE, replicas=[dict(REP, slot=256)])), "EINVAL"),
    (enc(dict(BASE, replicas=[dict(REP, role="")])), "EINVAL"),
    (enc(dict(BASE, replicas=[dict(REP, range=[1])])), "EINVAL"),
    (enc(dict(BASE, replicas=[REP, REP])), "EPROTO"),
    (enc(dict(BASE, released=1, replicas=[])), "EINVAL"),
    (enc(dict(BASE, released=True, replicas=[REP])), "EPROTO"),
    (enc(dict(BASE, replicas=[], removed=["p1"])), "EPROTO"),
    (enc(dict(BASE, replicas=[], base_revision=13)), "EINVAL"),
    (enc(dict(BASE, replicas=[], base_revision="1")), "EINVAL"),
    (enc(dict(BASE, replicas=[], base_revision=1, removed="p1")), "EINVAL"),
    (enc(dict(BASE, replicas=[], base_revision=1, removed=["p1", "p1"])), "EPROTO"),
    (enc(dict(BASE, replicas=[REP], base_revision=1, removed=["p1"])), "EPROTO"),
    (enc(dict(BASE, released=True, base_revision=1)), "EPROTO"),
])
def test_refused(body, code):
    with pytest.raises(ProtocolError) as e:
        parse_assign(body, "kv", "w1")
    assert e.value.code == code


def test_resync_from():
    a = parse_assign(enc(dict(BASE, replicas=[], resync_from=9223372036854775807)), "kv", "w1")
    assert a.resync_from == 9223372036854775807 and not a.delta
    assert parse_assign(enc(dict(BASE, replicas=[])), "kv", "w1").resync_from == 0
    for bad in (0, -1, "7", 1.5):
        with pytest.raises(ProtocolError):
            parse_assign(enc(dict(BASE, replicas=[], resync_from=bad)), "kv", "w1")
    with pytest.raises(ProtocolError):
        parse_assign(enc(dict(BASE, replicas=[], resync_from=5, base_revision=3)), "kv", "w1")
