"""A hash namespace's slot table is written atomically on etcd (issue 15, "atomic flushes";
docs/STORE.md 5): real etcd, real shardzd killed with SIGKILL between two transactions of a
partition add (SHARDZ_TEST_CRASH_PIECES), restarted; its routing is then the whole table from
before the add or the whole table after it (every old partition keeping its slots but those the
new ones took, every partition holding its even share), every slot owned exactly once, never
dealt again. Also: a store in the old layout
(slot runs inside the assignment records) loads and is converted; removals switch the table
with the record's delete. Usage: test_slot_table.py SHARDZD"""
import json
import os
import sys
import tempfile
import urllib.request

from harness import Daemon, Etcd, HTTPError, error_of, etcd_keys, run, wait_for

BIN = sys.argv[1]
TTL = 2000
SLOTS = 1 << 20  # 512 pages of 2,048 slots: a table write spans several 128-operation pieces
PREFIX = "/shardz/"


def table(d, ns):
    """The routing's slot table: sorted (lo, hi, partition) runs, merged; checked to cover
    every slot exactly once."""
    _, st = d.call("GET", f"/v1/namespaces/{ns}/state", timeout=30)
    empty = [p["id"] for p in st["partitions"] if not p["slots"]]
    assert not empty, f"partitions holding no slot (left by an unfinished add?): {empty[:5]}"
    runs = sorted((lo, hi, p["id"]) for p in st["partitions"] for lo, hi in p["slots"])
    at = 0
    for lo, hi, pid in runs:
        assert lo == at and hi > lo, f"slot {at}: owned twice or by none ({lo}, {hi}, {pid})"
        at = hi
    assert at == st["slots"], f"slots {at}..{st['slots']} owned by none"
    merged = []
    for lo, hi, pid in runs:
        if merged and merged[-1][2] == pid and merged[-1][1] == lo:
            merged[-1] = (merged[-1][0], hi, pid)
        else:
            merged.append((lo, hi, pid))
    return merged


def owner_of(runs):
    """slot -> partition, as a list of (lo, hi, id) turned into an owner array."""
    own = []
    for lo, hi, pid in runs:
        own.extend([pid] * (hi - lo))
    return own


def whole_add(before, got, ids):
    """None when `got` is the whole table after adding `ids` to `before`: every partition of
    both, each with floor or ceil of S/P slots, and only slots that went to new partitions
    changed owner; else what is wrong."""
    old, new = owner_of(before), owner_of(got)
    if len(old) != len(new):
        return "slot counts differ"
    want = {pid for _, _, pid in before} | set(ids)
    have = set(new)
    fresh = set(ids)
    moved_wrong = sum(1 for a, b in zip(old, new) if a != b and b not in fresh)
    if moved_wrong:
        return f"{moved_wrong} slots moved between old partitions (dealt again?)"
    if have != want:
        return f"partitions: {len(want - have)} missing, {len(have - want)} unknown"
    count = {}
    for pid in new:
        count[pid] = count.get(pid, 0) + 1
    lo, hi = len(new) // len(want), -(-len(new) // len(want))
    uneven = [pid for pid, c in count.items() if c not in (lo, hi)]
    if uneven:
        return f"{len(uneven)} partitions without an even share"
    return None


def start(etcd, env=None, tmp=None):
    d = Daemon(BIN, extra=["--store", etcd.url(), "--id", "c0", "--lease-ttl", str(TTL)],
               env=env, data=tmp)
    d.start()
    wait_for(lambda: d.call("GET", "/v1/status")[1]["acting"], 20, what="leadership")
    return d


def log_has(d, text):
    with open(d.log, "rb") as f:
        return text in f.read().decode(errors="replace")


def test_add_killed_between_pieces():
    etcd = Etcd().start()
    crash = os.path.join(tempfile.mkdtemp(prefix="shardz-crash-"), "pieces")
    env = {"SHARDZ_TEST_CRASH_PIECES": crash}
    d = start(etcd, env)
    try:
        status, _ = d.call("POST", "/v1/namespaces", {"name": "h", "sharder": "hash",
                                                      "slots": SLOTS, "partitions": 1000})
        assert status == 201
        outcomes = []
        # An add writes its records (4-5 assignment pages and a few overrides) and 512 slot
        # pages in 5 pieces of 128 operations, then the switch, then the deletes. Kill after
        # 1 piece (the new pages part written), after 4, after 5 (every page and record
        # written, the switch not), after 6 (switched, nothing deleted yet); then an add not
        # killed (its switch leaves 512 replaced pages to delete with the next one), an add
        # killed after 8 (amid those deletes), and a last add not killed
        step = 0
        for n in (1, 4, 5, 6, 0, 8, 0):
            ids = [f"q{step}-{i:04d}" for i in range(1000)]
            before = table(d, "h")
            if n:
                with open(crash, "w") as f:
                    f.write(str(n))
            try:
                status, _ = d.call("POST", "/v1/namespaces/h/partitions", {"ids": ids},
                                   timeout=60)
                assert n == 0 and status == 201, (n, status)
            except (OSError, HTTPError):
                assert n != 0, "the add failed without the hook"
            if n:
                d.proc.wait(timeout=30)
                assert d.proc.returncode == -9, d.proc.returncode
                assert log_has(d, "test crash: killed after a store piece"), d.tail()
                os.unlink(crash)
                d = start(etcd, env, d.data)
            got = table(d, "h")
            wrong = None if got == before else whole_add(before, got, ids)
            assert not wrong, f"after {n} pieces: a table neither old nor new: {wrong}"
            outcome = "old" if got == before else "new"
            outcomes.append(outcome)
            print(f"killed after {n} pieces: the {outcome} table", flush=True)
            assert not log_has(d, "slot table not restored"), d.tail()
            if outcome == "new":
                step += 1
        # both outcomes were reached: the kills fell before and after the switch
        assert "old" in outcomes[:3] and outcomes[-1] == "new", outcomes
        assert outcomes[3] == "new", outcomes  # after the switch's piece
        # a restart deleted what the killed writes left: only the committed pages remain
        d.kill9()
        d = start(etcd, env, d.data)
        cfg = json.loads(etcd.get(PREFIX + "ns/h/config"))
        pages = etcd_keys(etcd, PREFIX + "ns/h/slots/")
        want = {f"{PREFIX}ns/h/slots/{e}/{k}" for k, e in enumerate(cfg["slot_table"]["pages"])}
        wait_for(lambda: set(etcd_keys(etcd, PREFIX + "ns/h/slots/")) == want, 20,
                 what="stale pages deleted")
        assert len(want) == SLOTS // 2048 and len(pages) >= len(want)
        assert not any("hash_slots" in v for v in etcd_keys(etcd, PREFIX + "ns/h/assign/").values())
    finally:
        d.stop()
        etcd.stop()


def test_old_layout_loads_and_converts():
    """Records of the old layout (hash_slots inside each assignment), written raw into etcd:
    the table they hold is restored exactly (a deal of its own would differ), then written as
    pages with the first write, and a removal switches it with the record's delete."""
    etcd = Etcd().start()
    cfg = {"name": "old", "sharder": "hash", "slots": 64, "replicas": 1, "generation_floor": 0}
    etcd.put(PREFIX + "ns/old/config", json.dumps(cfg))
    runs = {"a": [[0, 16], [48, 64]], "b": [[16, 40]], "c": [[40, 48]]}
    for pid, r in runs.items():
        etcd.put(PREFIX + f"ns/old/assign/{pid}",
                 json.dumps({"id": pid, "slots": [{"state": "none", "generation": 0}],
                             "hash_slots": r}))
    d = start(etcd)
    try:
        want = sorted((lo, hi, pid) for pid, r in runs.items() for lo, hi in r)
        assert table(d, "old") == want
        assert log_has(d, "slot table read from the old layout"), d.tail()
        # converted at the start's write: the config names one page of 64 slots
        m = wait_for(lambda: json.loads(etcd.get(PREFIX + "ns/old/config")).get("slot_table"),
                     10, what="the manifest")
        assert m["page_slots"] == 64 and len(m["pages"]) == 1, m
        page = etcd.get(PREFIX + f"ns/old/slots/{m['pages'][0]}/0")
        assert page == "0 16 a\n16 40 b\n40 48 c\n48 64 a\n", page
        # a removal: its slots go to the others, written with its delete
        status, _ = d.call("DELETE", "/v1/namespaces/old/partitions/c")
        assert 200 <= status < 300, status
        removed = table(d, "old")
        assert "c" not in {pid for _, _, pid in removed}
        # its record: gone, or a removal mark (docs/STORE.md 5, "Assignment pages")
        mark = etcd.get(PREFIX + "ns/old/assign/c")
        assert mark is None or json.loads(mark).get("removed") is True, mark
        d.stop()
        d = start(etcd)
        assert table(d, "old") == removed
        assert not log_has(d, "slot table not restored"), d.tail()
        assert not log_has(d, "slot table read from the old layout"), d.tail()
    finally:
        d.stop()
        etcd.stop()


def test_failed_write_reads_whole_table():
    """SQLite: an add and a removal whose writes fail (SHARDZ_TEST_STORE_FAIL) get no 2xx, and
    the namespace read again from the store (szd_ns_reload) has the whole committed table, not
    one dealt again; the same changes then succeed and survive a restart."""
    d = Daemon(BIN)
    fail = os.path.join(d.tmp, "fail")
    d.env["SHARDZ_TEST_STORE_FAIL"] = fail
    d.start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "h", "sharder": "hash", "slots": 4096,
                                          "partitions": 50})
        before = table(d, "h")
        victim = before[0][2]
        open(fail, "w").close()
        st, code = error_of(lambda: d.call("POST", "/v1/namespaces/h/partitions",
                                               {"ids": ["x1", "x2", "x3"]}))
        assert st >= 500 and code == "EIO", (st, code)
        st, code = error_of(lambda: d.call("DELETE", f"/v1/namespaces/h/partitions/{victim}"))
        assert st >= 500 and code == "EIO", (st, code)
        os.remove(fail)
        wait_for(lambda: log_has(d, "namespace read again after a failed write"), 10,
                 what="the namespace read again")
        assert table(d, "h") == before, "a failed change stayed, or the table was dealt again"
        assert not log_has(d, "slot table not restored"), d.tail()
        status, _ = d.call("POST", "/v1/namespaces/h/partitions", {"ids": ["x1", "x2", "x3"]})
        assert status == 201
        added = table(d, "h")
        assert whole_add(before, added, ["x1", "x2", "x3"]) is None
        status, _ = d.call("DELETE", f"/v1/namespaces/h/partitions/{victim}")
        assert 200 <= status < 300
        removed = table(d, "h")
        assert victim not in {pid for _, _, pid in removed}
        d.stop()
        d = Daemon(BIN, data=d.data).start()
        assert table(d, "h") == removed
        assert not log_has(d, "slot table not restored"), d.tail()
    finally:
        d.stop()


def test_empty_table_restarts():
    """SQLite: a hash namespace without partitions (an empty table, a manifest of no pages)
    restarts, takes partitions, loses them all and restarts again."""
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "e", "sharder": "hash", "slots": 256,
                                          "partitions": 0})
        d.stop()
        d = Daemon(BIN, data=d.data).start()
        status, _ = d.call("POST", "/v1/namespaces/e/partitions", {"ids": ["a", "b", "c"]})
        assert status == 201
        full = table(d, "e")
        d.stop()
        d = Daemon(BIN, data=d.data).start()
        assert table(d, "e") == full
        for pid in ("a", "b", "c"):
            status, _ = d.call("DELETE", f"/v1/namespaces/e/partitions/{pid}")
            assert 200 <= status < 300
        d.stop()
        d = Daemon(BIN, data=d.data).start()
        _, st = d.call("GET", "/v1/namespaces/e/state")
        assert st["partitions"] == [], st["partitions"]
        assert not log_has(d, "slot table not restored"), d.tail()
    finally:
        d.stop()


def test_follower_and_new_leader_read_the_table():
    """Two coordinators on etcd: the follower's cache (loaded again at every change of a hash
    namespace) shows the leader's table after adds and a removal, and once the leader is
    killed, the follower takes over with the same table (restored once, not dealt again)."""
    etcd = Etcd().start()
    ds = [Daemon(BIN, extra=["--store", etcd.url(), "--id", f"c{i}", "--lease-ttl", str(TTL)])
          for i in range(2)]
    for d in ds:
        d.start()
    try:
        def leader():
            acting = [d for d in ds if d.proc.poll() is None
                      and d.call("GET", "/v1/status", timeout=5)[1]["acting"]]
            return acting[0] if len(acting) == 1 else None
        lead = wait_for(leader, 20, what="a leader")
        other = ds[1] if lead is ds[0] else ds[0]
        lead.call("POST", "/v1/namespaces", {"name": "h", "sharder": "hash", "slots": 65536,
                                             "partitions": 300})
        for k in range(3):
            lead.call("POST", "/v1/namespaces/h/partitions",
                      {"ids": [f"a{k}-{i}" for i in range(40)]})
        lead.call("DELETE", "/v1/namespaces/h/partitions/a0-0")
        want = table(lead, "h")

        def same():
            try:
                return table(other, "h") == want
            except (OSError, HTTPError, AssertionError, KeyError):
                return False
        wait_for(same, 15, what="the follower's cache with the leader's table")
        lead.kill9()
        wait_for(lambda: leader() is other, 20, what="the follower leading")
        assert table(other, "h") == want
        assert not log_has(other, "slot table not restored"), other.tail()
        # the new leader changes the table on its own
        other.call("POST", "/v1/namespaces/h/partitions", {"ids": ["b1", "b2"]})
        assert whole_add(want, table(other, "h"), ["b1", "b2"]) is None
    finally:
        for d in ds:
            if d.proc and d.proc.poll() is None:
                d.stop()
        etcd.stop()


if __name__ == "__main__":
    run([test_add_killed_between_pieces, test_old_layout_loads_and_converts,
         test_failed_write_reads_whole_table, test_empty_table_restarts,
         test_follower_and_new_leader_read_the_table])
