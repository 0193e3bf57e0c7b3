"""Key routing for hash namespaces (docs/PROTOCOL.md section 7): key -> hash tag -> XXH3-64
(seed 0) -> slot = hash & (slots - 1). The hash comes from the xxhash package (Debian:
python3-xxhash), the reference implementation's binding. Pure; any thread."""
import xxhash

SLOTS_DEFAULT = 16384

_xxh3 = xxhash.xxh3_64_intdigest


def _bytes(key):
    return key.encode() if isinstance(key, str) else bytes(key)


def hashtag(key):
    """The bytes of `key` (str: its UTF-8) that are hashed: the bytes between the first '{' and
    the first '}' after it when there is at least one, else the whole key."""
    b = _bytes(key)
    open_ = b.find(b"{")
    if open_ >= 0:
        close = b.find(b"}", open_ + 1)
        if close > open_ + 1:
            return b[open_ + 1:close]
    return b


def key_hash(key):
    """XXH3-64 (seed 0) of the key's hash tag, an int in [0, 2**64)."""
    return _xxh3(hashtag(key))


def key_slot(key, slots=SLOTS_DEFAULT):
    """The key's slot in a space of `slots` (a power of two)."""
    if slots <= 0 or slots & (slots - 1):
        raise ValueError(f"slots must be a power of two, not {slots}")
    return _xxh3(hashtag(key)) & (slots - 1)
