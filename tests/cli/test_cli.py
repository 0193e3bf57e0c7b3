"""shardzctl against a real shardzd and real worker processes: every command in human and
--json form (JSON parsed, tables spot-checked), exit codes for bad input (2, nothing sent or
changed), server errors (1, "error: CODE: message"), an unreachable coordinator (3), the
secret, the long-running commands (watch, events --follow) stopped by --count and Ctrl-C, and
the generated bash completion.
Usage: test_cli.py SHARDZD_BINARY SHARDZCTL_BINARY"""
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Daemon, Worker, free_port, routing, run, settled, wait_for  # noqa: E402

SHARDZD, CTL = sys.argv[1], sys.argv[2]
# No test here judges failure detection: timings a loaded CI machine cannot flap (a 500 ms
# dead-after once kept a node dead-and-back long enough to miss a 10 s placement deadline).
STEADY = ["--ping-interval-ms", "200", "--dead-after-ms", "3000"]


def env_for(d, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SHARDZ_")}
    if d is not None:
        e["SHARDZ_ENDPOINT"] = f"127.0.0.1:{d.port}"
    e.update(extra)
    return e


def ctl(d, *args, env=None, timeout=30):
    """Runs shardzctl; returns (exit code, stdout, stderr)."""
    p = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout,
                       env=env if env is not None else env_for(d))
    return p.returncode, p.stdout, p.stderr


def ok(d, *args, **kw):
    rc, out, err = ctl(d, *args, **kw)
    assert rc == 0, f"shardzctl {' '.join(args)}: exit {rc}\n{out}\n{err}"
    assert "runtime error" not in err and "Sanitizer" not in err, err
    return out


def js(d, *args, **kw):
    out = ok(d, "--json", *args, **kw)
    return json.loads(out)


def fails(d, code, *args, **kw):
    """Expects exit `code`; returns stderr."""
    rc, out, err = ctl(d, *args, **kw)
    assert rc == code, f"shardzctl {' '.join(args)}: exit {rc}, wanted {code}\n{out}\n{err}"
    assert err.startswith("error: "), err
    assert "runtime error" not in err and "Sanitizer" not in err, err
    return err


def table(out):
    """A human table as a list of dicts by header."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = lines[0].split()
    return [dict(zip(head, ln.split())) for ln in lines[1:]]


def revisions(d):
    return {n["name"]: n["revision"] for n in d.call("GET", "/v1/namespaces")[1]["namespaces"]}


# ---- usage: exit 2, nothing sent ----------------------------------------------------------

COMMANDS = ["namespace create", "namespace list", "namespace show", "namespace set",
            "namespace delete",
            "node list", "node show", "node drain", "node undrain", "node stoppable",
            "partition list", "partition show", "partition move", "partition history", "where", "plan", "rebalance", "task list",
            "task show", "task cancel", "events", "watch", "status", "completion"]


def test_help_and_usage_errors():
    d = Daemon(SHARDZD).start()
    try:
        out = ok(None, "--help")
        assert "Usage: shardzctl COMMAND" in out and "Exit codes" in out
        for cmd in COMMANDS:
            out = ok(None, *cmd.split(), "--help")
            assert out.startswith(f"Usage: shardzctl {cmd}"), (cmd, out)
            assert "--endpoint HOST:PORT" in out, out
        assert "node drain [ID]" in ok(None, "help", "node")
        assert "--to NODE" in ok(None, "partition", "move", "-h")
        ok(d, "namespace", "create", "kv", "--partitions", "4")
        before = revisions(d)
        bad = [
            ([], "no command"),
            (["frob"], "unknown command 'frob'"),
            (["namespace"], "'namespace' needs a command"),
            (["node", "frob"], "unknown command 'node frob'"),
            (["status", "--frob"], "unknown flag '--frob'"),
            (["--to", "w1", "node", "list"], "belongs to a command"),
            (["-n", "kv", "node", "list", "--slot", "1"], "unknown flag '--slot'"),
            (["-n", "kv", "node", "show"], "missing argument ID"),
            (["-n", "kv", "node", "show", "a", "b"], "unexpected argument 'b'"),
            (["node", "list"], "no namespace"),
            (["-n", "Bad NS", "node", "list"], "not a valid name"),
            (["-n", "kv", "node", "drain", "a b"], "not a valid node id"),
            (["namespace", "create", "x", "--replicas", "abc"], "'abc' is not an integer"),
            (["namespace", "create", "x", "--replicas", "17"], "in [1, 16]"),
            (["namespace", "create", "x", "--replicas"], "needs a value"),
            (["namespace", "create", "x", "--sharder", "ring"], "not replica, hash or range"),
            (["namespace", "create", "x", "--consistency", "eventual"], "not available or strict"),
            (["namespace", "create", "x", "--ping-interval-ms", "5"], "in [10, 60000]"),
            (["namespace", "create", "x", "--sharder", "hash", "--slots", "100"],
             "not a power of two"),
            (["namespace", "create", "x", "--slots", "128"], "--sharder hash only"),
            (["namespace", "create", "x", "--partitions", "a,,b"], "empty or too long item"),
            (["namespace", "create", "x", "--partitions", "a,b c"], "not a valid id"),
            (["namespace", "create", "x", "--dimensions", "a,b,c,d,e,f,g,h,i"], "at most 8"),
            (["namespace", "create", "x", "--roles=maybe"], "not true or false"),
            (["namespace", "create", "X"], "not a valid namespace name"),
            (["-n", "kv", "partition", "move", "0"], "--to NODE is required"),
            (["-n", "kv", "partition", "move", "0", "--to", "w1", "--slot", "16"], "in [0, 15]"),
            (["-n", "kv", "partition", "move", "0", "--to", "w1", "--slot", "x"],
             "not an integer"),
            (["-n", "kv", "task", "cancel", "0", "--slot", "-1"], "in [0, 15]"),
            (["-n", "kv", "events", "--limit", "0"], "in [1, 10000]"),
            (["-n", "kv", "events", "--since", "-3"], "not an integer"),
            (["-n", "kv", "events", "--interval", "1s"], "--follow only"),
            (["-n", "kv", "watch", "--count", "0"], "not an integer"),
            (["--timeout", "soon", "status"], "not a duration"),
            (["--endpoint", "nohost", "status"], "not HOST:PORT"),
            (["completion", "zsh"], "only bash"),
            (["-n", "kv", "node", "drain"], "give a node ID or --zone ZONE"),
            (["-n", "kv", "node", "drain", "w1", "--zone", "a"], "give a node ID or --zone"),
            (["-n", "kv", "node", "drain", "--zone", "a b"], "not a valid zone name"),
            (["-n", "kv", "node", "drain", "w1", "--reason", "x" * 201], "at most 200 bytes"),
            (["node", "stoppable"], "missing argument"),
            (["node", "stoppable", "a b"], "not a valid node id"),
            (["-n", "kv", "partition", "history"], "missing argument"),
        ]
        for args, msg in bad:
            err = fails(d, 2, *args)
            assert msg in err, (args, err)
            assert "Usage: shardzctl" in err or "shardzctl: operate" in err, (args, err)
        assert revisions(d) == before, "bad input changed something"
        assert len(js(d, "namespace", "list")["namespaces"]) == 1
        # help wins over a bad flag: print what was understood
        assert "Usage: shardzctl node list" in ok(None, "node", "list", "--frob", "--help")
    finally:
        d.stop()


def test_unreachable_and_secret():
    port = free_port()
    err = fails(None, 3, "--endpoint", f"127.0.0.1:{port}", "status")
    assert f"cannot reach the coordinator at 127.0.0.1:{port}" in err, err
    err = fails(None, 3, "-n", "kv", "node", "list",
                env=env_for(None, SHARDZ_ENDPOINT=f"http://127.0.0.1:{port}"))
    assert f"127.0.0.1:{port}" in err, err
    d = Daemon(SHARDZD, extra=["--secret", "s3cret"]).start()
    try:
        err = fails(d, 1, "status")
        assert "error: EPROTO: bad or missing secret" in err, err
        err = fails(d, 1, "--secret", "wrong", "namespace", "list")
        assert "EPROTO" in err
        st = js(d, "--secret", "s3cret", "status")
        assert st["role"] == "leader" and st["store"] == "sqlite" and st["fsync"] == "full", st
        out = ok(d, "status", env=env_for(d, SHARDZ_SECRET="s3cret"))
        assert "fsync:" in out and "full" in out and "leader:" in out, out
        ok(d, "--endpoint", f"http://127.0.0.1:{d.port}", "--secret=s3cret", "namespace", "list")
    finally:
        d.stop()


def test_namespace_commands():
    d = Daemon(SHARDZD).start()
    try:
        assert ok(d, "namespace", "list").strip() == "no namespaces"
        out = ok(d, "namespace", "create", "kv", "--sharder", "hash", "--replicas", "2",
                 "--roles", "--consistency", "strict", "--ping-interval-ms", "100",
                 "--dead-after-ms", "500", "--lease-ms", "700", "--dimensions", "cpu,mem",
                 "--partitions", "8", "--slots", "1024")
        assert out.startswith("namespace kv created: hash sharder, 8 partitions"), out
        ns = js(d, "namespace", "show", "kv")
        want = {"name": "kv", "sharder": "hash", "replicas": 2, "roles": True,
                "consistency": "strict", "ping_interval_ms": 100, "dead_after_ms": 500,
                "lease_ms": 700, "dimensions": ["cpu", "mem"], "partitions": 8, "slots": 1024}
        assert {k: ns[k] for k in want} == want, ns
        created = js(d, "namespace", "create", "ids", "--partitions", "a,b,c", "--roles=false")
        assert created["partitions"] == 3 and created["roles"] is False, created
        assert js(d, "-n", "ids", "partition", "list")["partitions"][0]["partition"] == "a"
        lst = js(d, "namespace", "list")["namespaces"]
        assert sorted(n["name"] for n in lst) == ["ids", "kv"], lst
        rows = table(ok(d, "ns", "list"))
        assert [r["NAME"] for r in rows] == ["kv", "ids"] and rows[0]["PARTITIONS"] == "8", rows
        assert rows[0]["NODES"] == "0/0" and rows[0]["MISSING"] == "16", rows
        out = ok(d, "namespace", "show", "kv")
        # the values are aligned after the longest field name: any run of spaces
        assert re.search(r"^consistency: +strict$", out, re.M) and \
            re.search(r"^dimensions: +cpu,mem$", out, re.M), out
        out = ok(d, "-n", "kv", "namespace", "show")  # the name from -n
        assert re.search(r"^name: +kv$", out, re.M), out
        out = ok(d, "namespace", "show", env=env_for(d, SHARDZ_NAMESPACE="ids"))
        assert "name:" in out and "ids" in out
        # the server's errors: exit 1 with its code
        err = fails(d, 1, "namespace", "show", "nope")
        assert err.strip() == "error: ENOENT: no namespace 'nope'", err
        before = revisions(d)
        assert "error: EEXIST:" in fails(d, 1, "namespace", "create", "kv")
        assert "error: EINVAL:" in fails(d, 1, "namespace", "create", "x",
                                          "--ping-interval-ms", "200", "--dead-after-ms", "100")
        assert revisions(d) == before
        assert ok(d, "namespace", "delete", "ids").strip() == "namespace ids deleted"
        assert js(d, "namespace", "delete", "kv") == {"deleted": True}
        assert "ENOENT" in fails(d, 1, "namespace", "delete", "kv")
        assert js(d, "namespace", "list") == {"namespaces": []}
        assert "ENOENT" in fails(d, 1, "-n", "kv", "node", "list")
    finally:
        d.stop()


def test_namespace_set():
    """shardzctl namespace set: FIELD=VALUE pairs (JSON values, else strings) sent as one PATCH;
    --dry-run shows the config it would have and changes nothing; --transfer-timeout-ms at
    create. Bad syntax is a usage error (exit 2, nothing sent); a field the API refuses is its
    EINVAL (exit 1), and nothing changes."""
    d = Daemon(SHARDZD).start()
    try:
        ok(d, "namespace", "create", "kv", "--replicas", "2", "--partitions", "4",
           "--transfer-timeout-ms", "5000", *STEADY)
        assert js(d, "namespace", "show", "kv")["transfer_timeout_ms"] == 5000
        out = ok(d, "namespace", "set", "kv", "frozen=true", "min_available=1",
                 "transfer_timeout_ms=0")
        assert re.search(r"^frozen: +true$", out, re.M), out
        ns = js(d, "namespace", "show", "kv")
        assert (ns["frozen"], ns["min_available"], ns["transfer_timeout_ms"]) == (True, 1, 0), ns
        before = revisions(d)
        out = ok(d, "-n", "kv", "namespace", "set", "replicas=3", "--dry-run")
        assert out.startswith("dry run: nothing changed"), out
        assert re.search(r"^replicas: +3$", out, re.M), out
        assert js(d, "namespace", "show", "kv")["replicas"] == 2 and revisions(d) == before
        got = js(d, "namespace", "set", "kv", 'balance={"band": 0.2}')
        assert got["balance"]["band"] == 0.2, got
        before = revisions(d)
        assert "EINVAL" in fails(d, 1, "namespace", "set", "kv", "sharder=hash")
        assert "EINVAL" in fails(d, 1, "namespace", "set", "kv", "replicas=many")
        assert "not FIELD=VALUE" in fails(d, 2, "namespace", "set", "kv", "frozen")
        assert "twice" in fails(d, 2, "namespace", "set", "kv", "frozen=true", "frozen=false")
        assert "FIELD=VALUE" in fails(d, 2, "namespace", "set", "kv")
        assert revisions(d) == before
        assert js(d, "namespace", "show", "kv")["frozen"] is True
    finally:
        d.stop()


def test_nodes_partitions_where():
    d = Daemon(SHARDZD).start()
    ws = []
    try:
        ok(d, "namespace", "create", "kv", "--sharder", "hash", "--replicas", "2",
           "--partitions", "8", *STEADY)
        ok(d, "namespace", "create", "plain", "--partitions", "2")
        ws = [Worker(d, "kv", f"w{i}", zone=f"z{i}") for i in range(3)]
        wait_for(lambda: settled(d, "kv", 8, 2, nodes=3), 30, what="placement")
        nodes = js(d, "-n", "kv", "node", "list")
        assert sorted(n["id"] for n in nodes["nodes"]) == ["w0", "w1", "w2"], nodes
        assert all(n["state"] == "alive" for n in nodes["nodes"])
        rows = table(ok(d, "-n", "kv", "nodes", "list"))
        assert sorted(r["ID"] for r in rows) == ["w0", "w1", "w2"], rows
        assert all(r["STATE"] == "alive" for r in rows) and sum(int(r["REPLICAS"]) for r in rows) \
            == 16, rows
        node = js(d, "-n", "kv", "node", "show", "w1")
        assert node["id"] == "w1" and node["zone"] == "z1", node
        out = ok(d, "-n", "kv", "node", "show", "w1")
        assert "zone:" in out and "z1" in out and "PARTITION  SLOT" in out, out
        assert len(table(out.split("\n\n", 1)[1])) == node["replicas"], out
        assert "error: ENOENT: no node 'w9'" in fails(d, 1, "-n", "kv", "node", "show", "w9")
        parts = js(d, "-n", "kv", "partition", "list")["partitions"]
        assert len(parts) == 8 and all(len(p["replicas"]) == 2 for p in parts), parts
        rows = table(ok(d, "-n", "kv", "partition", "list"))
        assert len(rows) == 8 and all(r["REPLICAS"].count(":serving") == 1 for r in rows), rows
        p = js(d, "-n", "kv", "partition", "show", "3")
        assert p["partition"] == "3" and len(p["replicas"]) == 2, p
        out = ok(d, "-n", "kv", "part", "show", "3")
        assert "SLOT  NODE" in out and out.count("serving") == 2, out
        assert "ENOENT" in fails(d, 1, "-n", "kv", "partition", "show", "99")
        # where KEY agrees with the coordinator's /lookup, also for keys that need escaping
        for key in ["user:1", "a b&c=d/{tag}x", "ü"]:
            w = js(d, "-n", "kv", "where", key)
            assert w["key"] == key, w
            from urllib.parse import quote
            _, direct = d.call("GET", "/v1/namespaces/kv/lookup?key=" + quote(key, safe=""))
            assert w["partition"] == direct["partition"] and w["slot"] == direct["slot"], (w, direct)
        out = ok(d, "-n", "kv", "where", "user:1")
        assert "partition:" in out and "slot:" in out and "NODE" in out, out
        err = fails(d, 1, "-n", "plain", "where", "k")
        assert "error: ENOTSUP:" in err, err
        err = fails(d, 2, "-n", "kv", "where", "x" * 700)
        assert "too long" in err
        assert "no moves in flight" in ok(d, "-n", "kv", "task", "list")
        assert js(d, "-n", "kv", "task", "list")["moves"] == []
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_operator_commands():
    d = Daemon(SHARDZD).start()
    ws = []
    try:
        ok(d, "namespace", "create", "kv", "--partitions", "12", *STEADY)
        ws = [Worker(d, "kv", f"w{i}") for i in range(3)]
        wait_for(lambda: settled(d, "kv", 12, 1, nodes=3), 30, what="placement")
        plan = js(d, "-n", "kv", "plan")
        assert plan["moves"] == [] and plan["missing"] == 0, plan
        assert "0 moves planned" in ok(d, "-n", "kv", "plan")
        # drain: the node stays, its replicas move away (reason drain)
        out = ok(d, "-n", "kv", "node", "drain", "w0")
        assert out.startswith("node w0: draining"), out
        r = wait_for(lambda: (lambda r: r if r and all("w0" not in v for v in r.values())
                              else None)(settled(d, "kv", 12, 1)), 10, what="drain")
        assert js(d, "-n", "kv", "node", "show", "w0")["state"] == "draining"
        node = js(d, "-n", "kv", "node", "undrain", "w0")
        assert node["state"] == "alive", node
        r = wait_for(lambda: settled(d, "kv", 12, 1), 30, what="undrain")
        # an operator's move
        p = next(p for p, v in sorted(r.items()) if v[0] != "w2")
        out = ok(d, "-n", "kv", "partition", "move", p, "--to", "w2", "--slot", "0")
        assert out.startswith(f"move started: partition {p} slot 0 to w2"), out
        wait_for(lambda: routing(d, "kv")[p] == ["w2"], 10, what="operator move")
        wait_for(lambda: settled(d, "kv", 12, 1), 30, what="settled")
        assert "EEXIST" in fails(d, 1, "-n", "kv", "partition", "move", p, "--to", "w2")
        assert "ENOENT" in fails(d, 1, "-n", "kv", "partition", "move", p, "--to", "nope")
        # events: json, human, paging
        ev = js(d, "-n", "kv", "events", "--limit", "10000")
        assert any(e["type"] == "move" and e.get("reason") == "operator" and
                   e.get("partition") == p for e in ev["events"]), ev["events"][-5:]
        seqs = [e["seq"] for e in ev["events"]]
        assert seqs == sorted(seqs) and ev["next"] == seqs[-1], ev
        page = js(d, "-n", "kv", "events", "--since", str(seqs[1]), "--limit", "2")
        assert [e["seq"] for e in page["events"]] == seqs[2:4], page
        out = ok(d, "-n", "kv", "events")
        assert "node-state" in out and "reason=drain" in out and "reason=operator" in out, out
        # plan (dry run: nothing changes) and rebalance (starts those moves)
        rev = revisions(d)["kv"]
        plan = js(d, "-n", "kv", "plan")
        assert len(plan["moves"]) == 1 and plan["moves"][0]["from"] == "w2", plan
        out = ok(d, "-n", "kv", "plan")
        assert "1 moves planned" in out and "nothing changed" in out and "REASON" in out, out
        assert revisions(d)["kv"] == rev
        done = js(d, "-n", "kv", "rebalance")
        assert done["moves"] == plan["moves"], (done, plan)
        wait_for(lambda: settled(d, "kv", 12, 1), 30, what="rebalance")
        assert "0 moves started" in ok(d, "-n", "kv", "rebalance")
        # the load balancer's round: a dry run with its report, and a bad value refused
        lb = js(d, "-n", "kv", "plan", "--balancer", "load")
        assert lb["stopped"] in ("balanced", "off", "stuck") and "budget" in lb, lb
        assert "load moves planned" in ok(d, "-n", "kv", "plan", "--balancer", "load")
        assert "--balancer" in fails(d, 2, "-n", "kv", "rebalance", "--balancer", "cpu")
        assert "ENOENT" in fails(d, 1, "-n", "kv", "task", "cancel", p)
        assert "ENOENT" in fails(d, 1, "-n", "kv", "node", "drain", "w9")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_tasks_in_flight_and_cancel():
    d = Daemon(SHARDZD).start()
    ws = []
    try:
        ok(d, "namespace", "create", "kv", "--partitions", "4", *STEADY)
        ws = [Worker(d, "kv", "w0")]
        wait_for(lambda: settled(d, "kv", 4, 1, nodes=1), 30, what="placement")
        ws.append(Worker(d, "kv", "w1", extra=["--serve-delay-ms", "3000"]))
        moves = wait_for(lambda: js(d, "-n", "kv", "task", "list")["moves"], 10,
                         what="moves to the slow joiner")
        m = moves[0]
        p = m["partition"]
        assert m["from"] == "w0" and m["to"] == "w1" and m["reason"] == "join", m
        rows = table(ok(d, "-n", "kv", "tasks", "list"))
        assert any(r["PARTITION"] == p and r["TO"] == "w1" and r["REASON"] == "join"
                   for r in rows), rows
        shown = js(d, "-n", "kv", "task", "show", p)
        assert [x["partition"] for x in shown["moves"]] == [p] and "revision" in shown, shown
        out = ok(d, "-n", "kv", "task", "show", p, "--slot", "0")
        assert "reason:" in out and "join" in out, out
        assert "ENOENT" in fails(d, 1, "-n", "kv", "task", "show", p, "--slot", "3")
        out = ok(d, "-n", "kv", "task", "cancel", p, "--slot", "0")
        assert out.startswith(f"move of partition {p} slot 0 cancelled"), out
        assert all(x["partition"] != p for x in js(d, "-n", "kv", "task", "list")["moves"])
        assert "error: ENOENT:" in fails(d, 1, "-n", "kv", "task", "cancel", p)
        wait_for(lambda: settled(d, "kv", 4, 1), 15, what="the other moves")
        assert routing(d, "kv")[p] == ["w0"]
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_watch_and_follow():
    d = Daemon(SHARDZD).start()
    ws = []
    procs = []
    try:
        ok(d, "namespace", "create", "kv", "--partitions", "4", *STEADY)

        def start(*args):
            p = subprocess.Popen([CTL, "-n", "kv", *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env_for(d))
            procs.append(p)
            return p

        human = start("watch", "--count", "2")
        as_json = start("--json", "watch", "--count", "1")
        forever = start("watch")
        follow = start("events", "--follow", "--interval", "100ms")
        time.sleep(0.5)
        ws = [Worker(d, "kv", "w0")]
        out, err = human.communicate(timeout=15)
        assert human.returncode == 0, (out, err)
        lines = out.splitlines()
        assert lines[0].startswith("watching namespace kv from revision"), out
        assert any("node w0 registered" in ln for ln in lines), out
        assert all(ln.startswith("rev ") for ln in lines[1:]), out
        assert len({ln.split(":")[0] for ln in lines[1:]}) == 2, out  # two revisions
        out, err = as_json.communicate(timeout=15)
        assert as_json.returncode == 0, (out, err)
        st = json.loads(out)
        assert st["namespace"] == "kv" and any(n["id"] == "w0" for n in st["nodes"]), st
        wait_for(lambda: settled(d, "kv", 4, 1), 30, what="placement")
        time.sleep(0.5)
        for p in (forever, follow):
            p.send_signal(signal.SIGINT)
        out, err = forever.communicate(timeout=10)
        assert forever.returncode == 0, (forever.returncode, out, err)
        assert "partition 0 slot 0:" in out and "w0" in out, out
        out, err = follow.communicate(timeout=10)
        assert follow.returncode == 0, (follow.returncode, out, err)
        # first placements are one "placed" event, not a "move" each
        assert "node-registered" in out and "node=w0" in out and "placed" in out, out
        assert "count=4" in out and "move " not in out, out
        seqs = [int(ln.split()[0]) for ln in out.splitlines()]
        assert seqs == sorted(set(seqs)), out
        # --follow --json: one event per line
        p = start("--json", "events", "--follow", "--since", "1", "--interval", "50ms")
        time.sleep(0.7)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0, (out, err)
        evs = [json.loads(ln) for ln in out.splitlines()]
        assert evs and evs[0]["seq"] == 2 and all("type" in e for e in evs), evs
        # the namespace going away ends a watch with the server's error
        w = start("watch")
        time.sleep(0.3)
        ok(d, "namespace", "delete", "kv")
        out, err = w.communicate(timeout=40)
        assert w.returncode == 1 and "error: ENOENT" in err, (w.returncode, out, err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for w in ws:
            w.kill9()
        d.stop()


def test_completion():
    d = Daemon(SHARDZD).start()
    try:
        ok(d, "namespace", "create", "kv", "--partitions", "1")
        ok(d, "namespace", "create", "logs")
        script = ok(None, "completion", "bash")
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
        assert sorted(ok(d, "__complete", "namespaces").split()) == ["kv", "logs"]
        env = env_for(d, PATH=os.path.dirname(os.path.abspath(CTL)) + ":" + os.environ["PATH"])

        def complete(*words):
            prog = ("source <(shardzctl completion bash)\n"
                    f"COMP_WORDS=(shardzctl {' '.join(words)}); COMP_CWORD={len(words)}\n"
                    "_shardzctl; echo \"${COMPREPLY[@]}\"\n")
            p = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env,
                               timeout=20)
            assert p.returncode == 0, p.stderr
            return sorted(p.stdout.split())

        assert complete("nod") == ["node"]
        assert complete("node", "") == ["drain", "list", "show", "stoppable", "undrain"]
        assert complete("ns", "cr") == ["create"]
        assert "--partitions" in complete("namespace", "create", "x", "--pa")
        assert complete("-n", "") == ["kv", "logs"]
        assert complete("--sharder", "h") == ["hash"]
        assert complete("namespace", "show", "l") == ["logs"]
    finally:
        d.stop()


def test_range_commands():
    d = Daemon(SHARDZD).start()
    ws = []
    try:
        out = ok(d, "namespace", "create", "rg", "--sharder", "range", "--partitions", "2", *STEADY)
        assert "range sharder" in out, out
        ws = [Worker(d, "rg", f"w{i}") for i in range(2)]
        wait_for(lambda: settled(d, "rg", 2, 1), 30, what="placement")
        rows = table(ok(d, "-n", "rg", "range", "list"))
        assert [(r["LO"], r["HI"], r["PARTITION"]) for r in rows] == [("-inf", "O", "0"),
                                                                     ("O", "+inf", "1")], rows
        out = ok(d, "-n", "rg", "range", "split", "0", "--at", "G")
        assert out.startswith("split task t000001 started: 0 -> 2 [-inf, G) 3 [G, O)"), out
        wait_for(lambda: d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"][0]["state"]
                 == "done", 10, what="split done")
        out = ok(d, "-n", "rg", "ranges", "merge", "3", "1")
        assert "merge task t000002 started: 3 1 -> 4 [G, +inf)" in out, out
        wait_for(lambda: all(t["state"] == "done" for t in
                             d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"]), 10,
                 what="merge done")
        rows = table(ok(d, "-n", "rg", "range", "tasks"))
        assert [(r["ID"], r["TYPE"], r["STATE"]) for r in rows] == [
            ("t000001", "split", "done"), ("t000002", "merge", "done")], rows
        tasks = js(d, "-n", "rg", "range", "tasks")["tasks"]
        assert [t["from"] for t in tasks] == [["0"], ["3", "1"]], tasks
        rows = table(ok(d, "-n", "rg", "range", "list"))
        assert [(r["LO"], r["HI"]) for r in rows] == [("-inf", "G"), ("G", "+inf")], rows
        # the server's refusals: exit 1 with the code and message; a usage error: exit 2
        err = fails(d, 1, "-n", "rg", "range", "split", "4", "--at", "A")
        assert "error: EINVAL: split bound 'A' is outside range '4'" in err, err
        err = fails(d, 1, "-n", "rg", "range", "merge", "2", "9")
        assert "error: ENOENT:" in err, err
        fails(d, 2, "-n", "rg", "range", "merge", "2")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_maintenance_commands():
    d = Daemon(SHARDZD).start()
    ws = []
    try:
        ok(d, "namespace", "create", "m", "--partitions", "6", "--replicas", "2", *STEADY)
        ws = [Worker(d, "m", n, zone=z) for n, z in (("a1", "za"), ("b1", "zb"), ("b2", "zb"))]
        r = wait_for(lambda: settled(d, "m", 6, 2, nodes=3), 30, what="placement")
        out = ok(d, "node", "stoppable", "a1")
        assert table(out) == [{"ID": "a1", "STOPPABLE": "yes", "REASONS": "-"}], out
        # b1 and b2 hold both replicas of a partition only when a1 lacks it; a1 and b1 always
        # share one (6 partitions x 2 on 3 nodes): refused, exit 4, reasons named
        rc, out, err = ctl(d, "node", "stoppable", "a1", "b1")
        assert rc == 4, (rc, out, err)
        rows = table(out)
        assert rows[0]["STOPPABLE"] == "yes" and rows[1]["STOPPABLE"] == "no", out
        assert "zone zb (stopping zone za)" in out, out
        rc, out, _ = ctl(d, "--json", "node", "stoppable", "a1", "b1")
        assert rc == 4 and json.loads(out)["stoppable"] == ["a1"], out
        assert "ENOENT" in fails(d, 1, "node", "stoppable", "nope")
        out = ok(d, "-n", "m", "node", "drain", "a1", "--reason", "kernel upgrade")
        assert out.startswith("node a1: draining"), out
        assert js(d, "-n", "m", "node", "show", "a1")["drain_reason"] == "kernel upgrade"
        wait_for(lambda: (lambda r: r and all("a1" not in v for v in r.values()))(
            settled(d, "m", 6, 2)), 30, what="a1 drained")
        moved = next(p for p, v in r.items() if "a1" in v)
        out = ok(d, "-n", "m", "partition", "history", moved)
        rows = table(out)
        assert rows and rows[-1]["FROM"] == "a1" and rows[-1]["REASON"] == "drain", out
        assert rows[-1]["TIME"].endswith("Z"), out
        h = js(d, "-n", "m", "partition", "history", moved)["history"]
        assert h[-1]["from"] == "a1" and h[-1]["reason"] == "drain", h
        ok(d, "-n", "m", "node", "undrain", "a1")
        out = ok(d, "-n", "m", "node", "drain", "--zone", "zb", "--reason", "rack")
        first = out.splitlines()[0].split()
        assert first[:3] == ["zone", "zb:", "draining"] and sorted(first[3:]) == ["b1", "b2"], out
        assert js(d, "-n", "m", "node", "show", "b2")["drain_reason"] == "rack"
        assert "ENOENT" in fails(d, 1, "-n", "m", "node", "drain", "--zone", "zq")
        assert "ENOENT" in fails(d, 1, "-n", "m", "partition", "history", "nope")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


run([test_help_and_usage_errors, test_unreachable_and_secret, test_namespace_commands,
     test_namespace_set,
     test_nodes_partitions_where, test_operator_commands, test_tasks_in_flight_and_cancel,
     test_watch_and_follow, test_completion, test_range_commands, test_maintenance_commands])
