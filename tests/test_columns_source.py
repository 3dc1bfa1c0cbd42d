"""`columns.source.ColumnFileSource` against `sources.shards.ShardedFileSource` (the oracle):
partition by partition and batch by batch, the same readings in the same order, the same dead
letters, the same snapshot `Position`s, and from any snapshot the same rest, on the shipped polls
with the bad-input corpus mixed in, a pretty-printed single payload and over-long lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from columns.batch import Columns
from columns.source import ColumnFileSource, shard_key
from core.readings import DeadLetter, Reading
from sources import shards
from sources.routing import key_worker
from sources.shards import ShardedFileSource
from tests.corpus import NEW_SENSOR, STAMP, doc, dumps, good_row, kinds, write_mixed
from tests.test_recovery import drain


def reading_rows(batch) -> list[tuple]:
    """The readings of a batch of either source, as comparable tuples (values bit for bit)."""
    out = []
    for item in batch:
        if isinstance(item, Reading):
            values = tuple((k, None if v is None else v.hex()) for k, v in item.values.items())
            out.append((item.sensor_index, item.time, values, tuple(item.text.items())))
        elif isinstance(item, tuple):
            _, c = item
            for i in range(len(c)):
                values = tuple(
                    (k, None if np.isnan(v) else float(v).hex())
                    for k, v in zip(c.fields, c.values[i].tolist(), strict=True)
                )
                text = () if c.text is None else tuple(c.text[i].items())
                out.append((int(c.sensors[i]), int(c.times[i]), values, text))
    return out


def dead_letters(batch) -> list[tuple]:
    return [(d.reason, repr(d.raw), d.origin) for d in batch if isinstance(d, DeadLetter)]


def compare(path, n_shards: int, batch_size: int, resume_every: int = 0) -> int:
    """Both sources over `path`, every partition, batch by batch; optionally resumed from every
    `resume_every`-th snapshot. Returns the rows read."""
    want_source = ShardedFileSource(path, shards=n_shards, batch_size=batch_size)
    got_source = ColumnFileSource(path, shards=n_shards, batch_size=batch_size)
    assert got_source.list_parts() == want_source.list_parts()
    rows = 0
    for shard, part in enumerate(got_source.list_parts()):
        want = drain(want_source.build_part("read", part, None))
        got = drain(got_source.build_part("read", part, None))
        assert len(got) == len(want)
        for (w_batch, w_at), (g_batch, g_at) in zip(want, got, strict=True):
            assert g_at == w_at
            assert reading_rows(g_batch) == reading_rows(w_batch)
            assert dead_letters(g_batch) == dead_letters(w_batch)
            for item in g_batch:
                assert isinstance(item, DeadLetter) or (
                    item[0] == shard_key(shard, n_shards)
                    and isinstance(item[1], Columns)
                    and len(item[1])
                )
            rows += len(w_batch)
        if resume_every:
            for k in range(0, len(got), resume_every):
                rest = drain(got_source.build_part("read", part, got[k][1]))
                assert [(reading_rows(b), dead_letters(b), at) for b, at in rest] == [
                    (reading_rows(b), dead_letters(b), at) for b, at in got[k + 1 :]
                ]
    return rows


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "polls-with-bad-lines.jsonl"
    write_mixed(path, kinds())
    return path


@pytest.mark.parametrize(("n_shards", "batch_size"), [(1, 1000), (2, 1000), (2, 7), (3, 250)])
def test_same_batches_as_the_sharded_source(mixed, n_shards, batch_size):
    assert compare(mixed, n_shards, batch_size) > 42_000


def test_resumes_from_any_snapshot(tmp_path):
    path = tmp_path / "part.jsonl"
    lines = [kind.line for kind in kinds() if len(kind.line) < 10_000]
    good = [dumps(doc([good_row(s, STAMP + 120 * t) for s in range(40)])) for t in range(6)]
    path.write_bytes(b"\n".join(good[:3] + lines + good[3:]) + b"\n")
    assert compare(path, 2, 5, resume_every=1) > 200


def test_single_pretty_printed_payload(tmp_path):
    rows = [good_row(NEW_SENSOR + i, STAMP + i) for i in range(60)]
    rows[7][4], rows[30] = "x", None  # a bad value, a row that is not a list
    rows[41][0] = True  # no usable sensor: shard 0's
    path = tmp_path / "one.json"
    path.write_text(json.dumps(doc(rows), indent=1))
    for n_shards, batch_size in [(1, 1000), (1, 7), (2, 7), (3, 1)]:
        assert compare(path, n_shards, batch_size, resume_every=1) == 60


def test_over_long_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "MAX_LINE_BYTES", 1000)
    small = [dumps(doc([good_row(NEW_SENSOR + i, STAMP + 120 * i)])) for i in range(3)]
    path = tmp_path / "long.jsonl"
    path.write_bytes(
        small[0] + b"\n" + b"x" * 5000 + b"\n" + small[1] + b"\n" + small[2] + b"\n" + b"y" * 3000
    )
    assert compare(path, 2, 1, resume_every=1) == 5


def test_shard_keys_route_to_their_partitions_worker():
    for n in range(1, 13):
        keys = [shard_key(i, n) for i in range(n)]
        assert len(set(keys)) == n
        for workers in (w for w in range(1, n + 1) if n % w == 0):
            assert [key_worker(k, workers) for k in keys] == [i % workers for i in range(n)]


def test_progress_hook_sees_every_row_and_the_end_of_the_file(mixed):
    seen: dict[str, list[tuple[int, int]]] = {}
    source = ColumnFileSource(
        mixed, shards=2, progress=lambda p, r, o: seen.setdefault(p, []).append((r, o))
    )
    batches = {p: drain(source.build_part("read", p, None)) for p in source.list_parts()}
    total = mixed.stat().st_size
    for part, calls in seen.items():
        assert calls[-1][1] == total
        assert [o for _, o in calls] == sorted(o for _, o in calls)
        assert sum(r for r, _ in calls) == sum(
            len(reading_rows(b)) + len(dead_letters(b)) for b, _ in batches[part]
        )


@pytest.mark.parametrize("workers", [1, 2])
def test_in_a_dataflow_every_row_once_keyed_to_its_shard(mixed, workers):
    """Run by Bytewax (1 and 2 workers): every row of the file arrives once, as the sharded
    source gives it, each shard's columns under its own key."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, cluster_main, run_main

    got: list = []
    flow = Dataflow("columns")
    items = op.input("read", flow, ColumnFileSource(mixed, shards=2))
    op.output("out", items, TestingSink(got))
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=2)
    want = ShardedFileSource(mixed, shards=2)
    want_items = [
        i for p in want.list_parts() for b, _ in drain(want.build_part("r", p, None)) for i in b
    ]
    assert sorted(reading_rows(got)) == sorted(reading_rows(want_items))
    assert sorted(dead_letters(got)) == sorted(dead_letters(want_items))
    for item in got:
        if isinstance(item, tuple):
            key, columns = item
            shard = [shard_key(i, 2) for i in range(2)].index(key)
            assert all(key_worker(str(s), 2) == shard for s in columns.sensors.tolist())


def test_partitions_of_one_process_decode_each_line_once(mixed, monkeypatch):
    """Two shards read in turn (as one worker runs them) share each line's decoding; one that
    falls behind decodes for itself, with the same batches."""
    from columns import source as column_source

    decoded = []
    real = column_source.decode_line

    def counting(document):
        decoded.append(len(document))
        return real(document)

    monkeypatch.setattr(column_source, "decode_line", counting)
    source = ColumnFileSource(mixed, shards=2, batch_size=500)
    parts = [source.build_part("read", p, None) for p in source.list_parts()]
    in_turn: dict[int, list] = {0: [], 1: []}
    done = set()
    while len(done) < 2:
        for i, part in enumerate(parts):
            if i in done:
                continue
            try:
                in_turn[i].append(part.next_batch())
            except StopIteration:
                done.add(i)
    lines = [line for line in mixed.read_bytes().splitlines() if line.strip()]
    assert len(decoded) < 1.05 * len(lines)
    decoded.clear()
    alone = ColumnFileSource(mixed, shards=2, batch_size=500)
    for i, part in enumerate(alone.list_parts()):
        batches = [b for b, _ in drain(alone.build_part("read", part, None))]
        assert [(reading_rows(b), dead_letters(b)) for b in batches] == [
            (reading_rows(b), dead_letters(b)) for b in in_turn[i]
        ]
    assert len(decoded) > 1.9 * len(lines)  # one after the other: each decodes for itself
