"""The router's snapshot: hash slots, routed ranges, targets; installing never blocks a lookup."""
import threading

import pytest

from shardz import Router, Snapshot, key_slot


def hash_state(revision=5):
    return {"namespace": "h", "revision": revision, "sharder": "hash", "slots": 64,
            "nodes": [], "partitions": [
                {"id": "a", "generation": 3, "slots": [[0, 32]], "replicas": [
                    {"node": "n1", "address": "127.0.0.1:1", "slot": 1, "role": "secondary",
                     "state": "serving", "generation": 3},
                    {"node": "n2", "address": "127.0.0.1:2", "slot": 0, "role": "primary",
                     "state": "serving", "generation": 3}]},
                {"id": "b", "generation": 1, "slots": [[32, 64]], "replicas": [
                    {"node": "n1", "address": "127.0.0.1:1", "slot": 0, "role": "none",
                     "state": "adding", "generation": 1}]}]}


def test_hash_lookups():
    s = Snapshot(hash_state())
    for key in ("foo", "bar", "{user1}:x", "ключ"):
        slot, route = s.lookup_key(key)
        assert slot == key_slot(key, 64)
        assert route.partition == ("a" if slot < 32 else "b")
    a = s.lookup_partition("a")
    assert [r.node for r in a.replicas] == ["n2", "n1"]  # slot order
    assert a.target.node == "n2"  # the serving primary
    assert s.lookup_partition("b").target is None and s.lookup_partition("b").serving() == []
    assert s.lookup_partition("zz") is None


def test_overlapping_slots_refused():
    st = hash_state()
    st["partitions"][1]["slots"] = [[16, 64]]
    with pytest.raises(ValueError):
        Snapshot(st)


def test_range_lookups():
    st = {"namespace": "r", "revision": 9, "sharder": "range", "nodes": [], "partitions": [
        {"id": "0", "generation": 1, "range": {"lo": "", "hi": "G"}, "replicas": []},
        {"id": "1", "generation": 1, "range": {"lo": "G", "hi": None}, "replicas": []},
        {"id": "2", "generation": 1, "range": {"lo": "G", "hi": "M"}, "routed": False,
         "replicas": []}]}
    s = Snapshot(st)
    assert s.lookup_key("A") == (None, s.lookup_partition("0"))
    assert s.lookup_key("G")[1].partition == "1"
    assert s.lookup_key("Fzzz")[1].partition == "0"
    assert s.lookup_key("zzz")[1].partition == "1"
    assert s.lookup_key("")[1].partition == "0"


def test_install_order_and_lookup_never_blocked():
    r = Router("127.0.0.1:1", "h")
    assert r.load_state(hash_state(5))
    assert not r.load_state(hash_state(4))  # not newer
    assert r.revision == 5
    # a lookup while an install holds the router's lock answers at once
    done = threading.Event()
    with r._cond:
        t = threading.Thread(target=lambda: (r.lookup_key("foo"), r.lookup_partition("a"),
                                             done.set()))
        t.start()
        assert done.wait(5)
    assert r.wait(5, timeout=0) and not r.wait(6, timeout=0.01)
    assert r.load_state(hash_state(6)) and r.wait(6, timeout=0)
