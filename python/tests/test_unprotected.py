"""Protected mode's library half (issue 16): a Worker reachable beyond loopback without a
secret warns loudly; loopback, or a secret, does not."""
import logging

from shardz.worker import Worker


def make(caplog, **kw):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shardz.worker"):
        Worker(["127.0.0.1:1"], "kv", "w1", serve=lambda r: None, delete=lambda r: None, **kw)
    return [r.getMessage() for r in caplog.records if "without a secret" in r.getMessage()]


def test_warns_beyond_loopback_without_secret(caplog):
    assert make(caplog) == []  # 127.0.0.1:0
    assert make(caplog, listen="[::1]:0") == []
    warned = make(caplog, listen="0.0.0.0:0", advertise="192.0.2.7:9000")
    assert len(warned) == 1 and "0.0.0.0:0" in warned[0] and "INSECURE" in warned[0]
    assert len(make(caplog, listen=None, advertise="192.0.2.7:9000")) == 1
    assert make(caplog, listen="0.0.0.0:0", advertise="192.0.2.7:9000", secret="s") == []
