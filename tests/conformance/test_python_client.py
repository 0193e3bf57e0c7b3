"""The Python package's operator client (shardz.Client) against a real shardzd: namespaces,
partitions, nodes, drain / undrain, move, status, errors as ShardzError, and a coordinator list
whose first entry refuses connections. Workers are the Python driver's."""
import os
import sys

import pytest

import harness
from conftest import ROOT, Cluster, wait_for

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
import shardz  # noqa: E402


@pytest.fixture
def py_cluster():
    c = Cluster("python")
    yield c
    c.close()


def test_operator_client(py_cluster):
    c = py_cluster
    dead = f"127.0.0.1:{harness.free_port()}"  # nothing listens: refused, the next is tried
    cl = shardz.Client(f"{dead},{c.coord}")
    ns = cl.create_namespace("op", partitions=4, ping_interval_ms=100, dead_after_ms=600)
    assert ns["name"] == "op" and ns["partitions"] == 4
    assert [n["name"] for n in cl.namespaces()] == ["op"]
    with pytest.raises(shardz.ShardzError) as e:
        cl.create_namespace("op")
    assert (e.value.status, e.value.code) == (409, "EEXIST")
    with pytest.raises(shardz.ShardzError) as e:
        cl.namespace("nope")
    assert (e.value.status, e.value.code) == (404, "ENOENT")
    ws = [c.worker("op", f"w{i}") for i in range(2)]
    wait_for(lambda: harness.settled(c.d, "op", 4, 1, 2), what="placed")
    assert sorted(n["id"] for n in cl.nodes("op")) == ["w0", "w1"]
    cl.add_partitions("op", ["x"])
    wait_for(lambda: harness.settled(c.d, "op", 5, 1, 2), what="x placed")
    owner = cl.partition("op", "x")["replicas"][0]["node"]
    other = "w1" if owner == "w0" else "w0"
    assert cl.move("op", "x", slot=0, to=other)["partition"] == "x"
    wait_for(lambda: (harness.settled(c.d, "op", 5, 1, 2) or {}).get("x") == [other],
             what="x moved")
    cl.drain("op", "w0")
    wait_for(lambda: cl.node("op", "w0")["partitions"] == [], what="w0 drained")
    assert cl.node("op", "w0")["state"] == "draining"
    cl.undrain("op", "w0")
    wait_for(lambda: cl.node("op", "w0")["partitions"], what="w0 given its share again")
    assert cl.status()["role"] == "leader"
    with pytest.raises(shardz.ShardzError) as e:
        cl.lookup("op", "k")
    assert e.value.code == "ENOTSUP"
    cl.remove_partition("op", "x")
    assert "x" not in [p["partition"] for p in cl.partitions("op")["partitions"]]
    for w in ws:
        w.close()
