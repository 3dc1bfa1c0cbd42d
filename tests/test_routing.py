"""`sources.routing` predicts where the installed Bytewax processes each key and each partition."""

import random
import threading

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import cluster_main

from sources.routing import key_hash, key_hashes, key_worker, key_workers, siphash13

#: Rust's `DefaultHasher::new()` over `String::hash` (bytes then 0xff), printed by rustc 1.95
RUST_HASHES = {
    "": 0x30406EA523C53DEF,
    "0": 0xFC6647014FB554E5,
    "42": 0x5EE89D10068C3D9,
    "sensor": 0x57102E45A4C8A2CC,
    "héllo": 0xE73616F26C73B87F,
    "1234567": 0xB9A4F30E757FE044,
    "12345678": 0x40CC4E544A5AF2CD,
    "123456789012345": 0x2CE65C932BD5EFF4,
}


def test_key_hash_equals_rusts_default_hasher():
    assert {k: key_hash(k) for k in RUST_HASHES} == RUST_HASHES
    assert (
        siphash13(b"") == 0xD1FBA762150C532C
    )  # Rust: DefaultHasher::new().finish() after write(&[])


def test_key_hashes_vectorised_equal_key_hash():
    """numpy's SipHash over many keys: Rust's hashes, and `key_hash` on keys of every length
    from 0 to 40 bytes and on every sensor_index form (negative, 19 and 20 digits)."""
    keys = list(RUST_HASHES)
    assert key_hashes(keys).tolist() == [RUST_HASHES[k] for k in keys]
    rng = random.Random(4)
    keys = [
        "".join(rng.choice("0123456789é") for _ in range(n)) for n in range(41) for _ in range(3)
    ]
    keys += [str(rng.getrandbits(bits) - (bits % 2) * 2**bits) for bits in range(1, 66)]
    assert key_hashes(keys).tolist() == [key_hash(k) for k in keys]
    assert key_workers(keys, 3).tolist() == [key_worker(k, 3) for k in keys]


class _Part(StatefulSourcePartition):
    def __init__(self, keys):
        self.keys = keys

    def next_batch(self):
        if self.keys is None:
            raise StopIteration()
        keys, self.keys = self.keys, None
        return keys

    def snapshot(self):
        return None


class _Parts(FixedPartitionedSource):
    """Partitions named in an order that is not their numeric one; only the first has items."""

    def __init__(self, names, keys, built):
        self.names, self.keys, self.built = names, keys, built

    def list_parts(self):
        return list(self.names)

    def build_part(self, step_id, for_part, resume_state):
        self.built[for_part] = threading.current_thread().ident
        return _Part(self.keys if for_part == self.names[0] else [])


@pytest.mark.parametrize("workers", [2, 3])
def test_keys_and_partitions_land_where_routing_says(workers):
    names = ["p-b", "p-a", "p-d", "p-c", "p-f", "p-e"]
    keys = [str(i) for i in range(200)] + ["sensor", "héllo"]
    built, seen = {}, {}

    def remember(state, key):
        seen[key] = threading.current_thread().ident
        return state, key

    flow = Dataflow("routing")
    items = op.input("in", flow, _Parts(names, keys, built))
    done = op.stateful_map("where", op.key_on("key", items, lambda k: k), remember)
    op.inspect("sink", done, lambda *_: None)
    cluster_main(flow, [], 0, worker_count_per_proc=workers)

    # partitions: round-robin over the workers in sorted name order
    thread_of_worker = {}
    for position, name in enumerate(sorted(names)):
        worker = position % workers
        assert thread_of_worker.setdefault(worker, built[name]) == built[name]
    assert len(set(thread_of_worker.values())) == workers
    # keys: on the worker their hash names
    assert {k: seen[k] for k in keys} == {k: thread_of_worker[key_worker(k, workers)] for k in keys}
