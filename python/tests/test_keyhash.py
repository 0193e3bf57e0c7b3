"""Key routing: the hash tag rule and the slot, against the golden vectors made with xxhsum."""
import json
import os

import pytest

from shardz import hashtag, key_hash, key_slot

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                      "conformance", "golden", "keyslot.json")


def test_hashtag_rule():
    assert hashtag("{user1}:a") == b"user1"
    assert hashtag("x{user1}y") == b"user1"
    assert hashtag("{}x") == b"{}x"          # empty tag: the whole key
    assert hashtag("a{b") == b"a{b"          # unclosed: the whole key
    assert hashtag("}{a}") == b"a"           # a '}' before the first '{' does not count
    assert hashtag("{a{b}c}") == b"a{b"      # the first '}' after the first '{'
    assert hashtag(b"{\xff}z") == b"\xff"    # bytes keys are taken as they are
    assert hashtag("{ключ}:1") == "ключ".encode()


def test_golden_vectors():
    with open(GOLDEN) as f:
        vectors = json.load(f)["vectors"]
    for v in vectors:
        assert f"{key_hash(v['key']):016x}" == v["hash"], v
        for slots, s in v["slots"].items():
            assert key_slot(v["key"], int(slots)) == s, v
            assert key_slot(v["key"].encode(), int(slots)) == s, v


def test_slots_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        key_slot("a", 1000)
    assert 0 <= key_slot("a", 64) < 64
