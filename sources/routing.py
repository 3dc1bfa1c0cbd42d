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


def _rotl_array(x, bits: int):
    import numpy as np

    return (x << np.uint64(bits)) | (x >> np.uint64(64 - bits))


def _rounds_array(v: list, n: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(n):
        v0 = v0 + v1
        v1 = _rotl_array(v1, 13) ^ v0
        v0 = _rotl_array(v0, 32)
        v2 = v2 + v3
        v3 = _rotl_array(v3, 16) ^ v2
        v0 = v0 + v3
        v3 = _rotl_array(v3, 21) ^ v0
        v2 = v2 + v1
        v1 = _rotl_array(v1, 17) ^ v2
        v2 = _rotl_array(v2, 32)
    v[:] = [v0, v1, v2, v3]


def key_hashes(keys: list[str]):
    """`key_hash` of many keys at once, with numpy (uint64 arithmetic wraps as Rust's does):
    about a microsecond a key instead of ten, for a source meeting thousands of new sensors.

    >>> keys = ["", "0", "42", "héllo", "123456789012345", "x" * 40]
    >>> key_hashes(keys).tolist() == [key_hash(k) for k in keys]
    True
    """
    import numpy as np

    out = np.zeros(len(keys), np.uint64)
    data = [key.encode() + b"\xff" for key in keys]
    lengths = np.fromiter(map(len, data), np.int64, len(data))
    for length in np.unique(lengths).tolist():
        where = np.flatnonzero(lengths == length)
        blocks = length // 8 + 1  # the last block holds the tail and the length byte
        padded = np.zeros((len(where), blocks * 8), np.uint8)
        padded[:, :length] = np.frombuffer(b"".join(data[i] for i in where), np.uint8).reshape(
            len(where), length
        )
        padded[:, blocks * 8 - 1] = length & 0xFF
        words = padded.view("<u8")
        v = [
            np.full(len(where), c, np.uint64)
            for c in (
                0x736F6D6570736575,
                0x646F72616E646F6D,
                0x6C7967656E657261,
                0x7465646279746573,
            )
        ]
        for b in range(blocks):
            m = words[:, b].astype(np.uint64)
            v[3] = v[3] ^ m
            _rounds_array(v, 1)
            v[0] = v[0] ^ m
        v[2] = v[2] ^ np.uint64(0xFF)
        _rounds_array(v, 3)
        out[where] = v[0] ^ v[1] ^ v[2] ^ v[3]
    return out


def key_workers(keys: list[str], workers: int):
    """`key_worker` of many keys at once (an int64 array)."""
    import numpy as np

    return (key_hashes(keys) % np.uint64(workers)).astype(np.int64)
