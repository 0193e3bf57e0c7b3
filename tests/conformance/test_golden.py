"""Golden files (tests/conformance/README.md, "Golden files"): every driver's key -> slot
function against keyslot.json (made with xxhsum -H3), and every driver's worker against the
pinned wire messages: the registration it sends, a full assignment, a delta, a refused delta
and a ping with load, each with the exact reply. The worker registers with a stand-in
coordinator in this file so that it is sent exactly the golden messages."""
import json
import os
import re
import subprocess

import xxhash

from conftest import DRIVER_DIR, HERE, DriverWorker, driver_env
from standin import StandIn

GOLDEN = os.path.join(HERE, "golden")


def golden(name, listen=None):
    with open(os.path.join(GOLDEN, name)) as f:
        text = f.read()
    if listen is not None:
        text = text.replace("@LISTEN@", listen)
    return json.loads(text)


def vectors():
    return golden("keyslot.json")["vectors"]


def test_keyslot_file_matches_xxhash_module():
    """The golden file, made with xxhsum -H3, agrees with the xxhash module (a second
    reference) and with the hash tag rule, so a wrong file cannot pass the drivers."""
    assert len(vectors()) >= 25
    for v in vectors():
        k = v["key"].encode()
        h = int(v["hash"], 16)
        assert xxhash.xxh3_64_intdigest(v["hashed"].encode()) == h, v
        o = k.find(b"{")
        c = k.find(b"}", o + 1) if o >= 0 else -1
        tag = k[o + 1:c] if o >= 0 and c > o + 1 else k
        assert tag == v["hashed"].encode(), v
        for slots, s in v["slots"].items():
            assert h & (int(slots) - 1) == s, (v, slots)
    tags = [v for v in vectors() if v["hashed"] != v["key"]]
    assert len(tags) >= 8  # hash tags are covered


def test_keyslot_file_is_what_xxhsum_makes(tmp_path):
    """make_keyslot.sh, run again now with Debian's xxhsum, writes exactly the committed file."""
    out = tmp_path / "keyslot.json"
    p = subprocess.run([os.path.join(GOLDEN, "make_keyslot.sh"), str(out)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text()) == golden("keyslot.json")


def test_keyslot_vectors(driver):
    keys = [v["key"] for v in vectors()]
    for slots in ("64", "16384", "1048576"):
        out = subprocess.run([os.path.join(DRIVER_DIR, driver), "hash", "--slots", slots] + keys,
                             env=driver_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        got = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(got) == len(keys), out.stdout
        for v, g in zip(vectors(), got):
            assert g == {"key": v["key"], "hash": v["hash"], "slot": v["slots"][slots]}, \
                (driver, slots, v, g)


def sorted_serving(reply):
    if isinstance(reply, dict) and isinstance(reply.get("serving"), list):
        reply = dict(reply, serving=sorted(reply["serving"], key=lambda s: s["partition"]))
    return reply


def unstamped(reply, seen):
    """The reply without its "stamp" (PROTOCOL.md 4.1: the worker's clock in ms, an integer
    >= 0 that never goes back, so not in the golden files); appends it to seen."""
    if isinstance(reply, dict) and "stamp" in reply:
        reply = dict(reply)
        st = reply.pop("stamp")
        assert isinstance(st, int) and not isinstance(st, bool) and st >= 0, st
        assert not seen or st >= seen[-1], (seen, st)
        seen.append(st)
    return reply


def test_wire_messages(driver, tmp_path):
    tmp = str(tmp_path)
    w = None
    stand = StandIn(golden("register.reply.json"))
    try:
        w = DriverWorker(driver, tmp, f"127.0.0.1:{stand.port}", "golden", "g1", zone="za",
                         capacity=["cpu=8"])
        w.wait_registered()
        # a worker process may name itself (PROTOCOL.md 4.1: incarnation, drawn at random at
        # start, so not in the golden file): a valid id when present, and nothing else differs
        body = dict(stand.bodies[0])
        inc = body.pop("incarnation", None)
        assert inc is None or (isinstance(inc, str) and re.fullmatch(r"[A-Za-z0-9._:-]{1,255}",
                                                                      inc)), inc
        stamps = []
        assert unstamped(body, stamps) == golden("register.json", w.addr), stand.bodies
        assert stamps, "no stamp in the registration"

        status, reply = w.post("/shardz/v1/assign", golden("assign.json"))
        reply = unstamped(reply, stamps)
        assert status == 200 and sorted_serving(reply) == golden("assign.reply.json"), reply
        serves = [(e["partition"], e["generation"], e["role"], e["slot"]) for e in w.events("serve")]
        assert serves == [("p1", 4, "primary", 0), ("p7", 9, "secondary", 1)], serves

        status, reply = w.post("/shardz/v1/assign", golden("delta.json"))
        reply = unstamped(reply, stamps)
        assert status == 200 and sorted_serving(reply) == golden("delta.reply.json"), reply
        evs = [(e["ev"], e["partition"]) for e in w.events() if e["ev"] in ("serve", "delete")]
        # p7's state alone changed: no hook; p1 deleted before p8 is served
        assert evs[2:] == [("delete", "p1"), ("serve", "p8")], evs
        assert w.events("delete")[0]["cause"] == "assign"

        status, reply = w.post("/shardz/v1/assign", golden("delta_stale.json"))
        want = golden("delta_stale.reply.json")
        assert status == want["status"], (status, reply)
        assert reply["code"] == want["code"] and reply["applied_revision"] == \
            want["applied_revision"] and isinstance(reply.get("message"), str), reply
        assert len(w.events("serve")) == 3  # nothing was called

        assert w.cmd("load golden p7 cpu 0.25") == "ok"
        assert w.cmd("load golden p8 cpu 1.5") == "ok"
        assert w.cmd("load golden p1 cpu 1").startswith("error ")  # p1 is not served
        status, reply = w.post("/shardz/v1/ping", golden("ping.json"))
        assert status == 200 and unstamped(reply, stamps) == golden("ping.reply.json"), reply
        status, reply = w.post("/shardz/v1/ping", golden("ping.json"))  # samples were cleared
        assert status == 200 and unstamped(reply, stamps) == {"node": "g1",
                                                              "applied_revision": 15}, reply

        # PROTOCOL.md 6: a strict grant runs from the lease_stamp it echoes. One that ran out
        # before it arrived (lease_ms 10 leaves at most 10 ms; this one is 10 ms old before it
        # is even sent) is late: its assignment is not applied and nothing is served.
        while stamps[-1] < 10:  # a stamp 10 ms back must exist on the worker's clock
            status, reply = w.post("/shardz/v1/ping", golden("ping.json"))
            unstamped(reply, stamps)
        late = dict(golden("assign.json"), revision=16, consistency="strict", lease_ms=10,
                    lease_stamp=stamps[-1] - 10)
        late["replicas"] = [dict(late["replicas"][0], partition="p9")]
        status, reply = w.post("/shardz/v1/assign", late)
        assert status == 200 and reply["applied_revision"] in (0, 15), reply
        assert "p9" not in [s["partition"] for s in reply["serving"]], reply
        assert [e["partition"] for e in w.events("serve")].count("p9") == 0

        # PROTOCOL.md 4.2: once term 9 was seen, a message of term 8 is a deposed
        # coordinator's: refused 409 ESTALE naming the term seen, and nothing runs
        status, reply = w.post("/shardz/v1/ping", dict(golden("ping.json"), term=9))
        assert status == 200, reply
        before = len(w.events())
        older = dict(golden("assign.json"), revision=17, term=8)
        status, reply = w.post("/shardz/v1/assign", older)
        assert status == 409 and reply["code"] == "ESTALE" and reply["term"] == 9, reply
        status, reply = w.post("/shardz/v1/ping", dict(golden("ping.json"), term=8))
        assert status == 409 and reply["term"] == 9, reply
        assert len(w.events()) == before, w.events()[before:]
    finally:
        if w is not None:
            w.close()
        stand.close()
