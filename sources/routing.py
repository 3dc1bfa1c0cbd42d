"""Which worker Bytewax 0.21 gives a key, so a source can read each sensor where it is processed.

A stateful step sends each item to the worker that owns its key: the key's Rust hash (the
standard `DefaultHasher`: SipHash-1-3 with zero keys, over the key's UTF-8 bytes and a 0xff
terminator) modulo the number of workers. A `FixedPartitionedSource`'s partitions go round-robin
over the workers in the sorted order of their names. Neither is a documented contract, so nothing
depends on them for correctness: when both hold, a sensor shard is read on the worker that keeps
its sensors' state, and readings never cross between processes (no pickling, no network);
`tests/test_sources.py` checks both against the installed Bytewax.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK


def _rounds(v: list[int], n: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(n):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash13(data: bytes) -> int:
    """SipHash-1-3 with the zero key, as Rust's `DefaultHasher::new()` computes it.

    >>> hex(siphash13(b""))
    '0xd1fba762150c532c'
    """
    v = [0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573]
    tail = len(data) - len(data) % 8
    for i in range(0, tail, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v[3] ^= m
        _rounds(v, 1)
        v[0] ^= m
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[tail:], "little")
    v[3] ^= last
    _rounds(v, 1)
    v[0] ^= last
    v[2] ^= 0xFF
    _rounds(v, 3)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def key_hash(key: str) -> int:
    """Bytewax's routing hash of a state key (~10 µs in Python: callers per row memoise it)."""
    return siphash13(key.encode() + b"\xff")


def key_worker(key: str, workers: int) -> int:
    """The worker (of `workers`) that Bytewax 0.21 sends `key` to in a stateful step."""
    return key_hash(key) % workers
