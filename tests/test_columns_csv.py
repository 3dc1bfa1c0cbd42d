"""The CSV of readings read in column batches (`columns.csv_source`): each bad row's reason, the
column reading against the row-by-row rule on random files, clean files against the standard
library's csv and datetime, shards, resume from any snapshot and over-long lines."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime

import numpy as np
import pytest

from columns import csv_source
from columns.csv_source import (
    CsvColumnSource,
    CsvRowError,
    line_sensor,
    parse_line,
    parse_lines,
    read_header,
)
from core.errors import ConfigError
from core.readings import DeadLetter
from sources.purpleair import sensor_owner
from tests.test_recovery import drain

HEADER = "sensor_index,time,humidity,name,pm1.0_cf_1"
FIELDS = ("humidity", "pm1.0_cf_1")


@pytest.fixture
def header(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + "\n")
    return read_header(path)


BAD_ROWS = [
    (b"5,1775001600,31", "row has 3 cells but the header names 5"),
    (b"5,1775001600,31,a,2,9", "row has 6 cells but the header names 5"),
    (b'5,1775001600,31,"a,2', "not a CSV row: unexpected end of data"),
    (b"5,1775001600,31,caf\xe9,2", "not UTF-8: byte 0xe9 at 19"),
    (b"x,1775001600,31,a,2", "sensor_index 'x' is not an index (0 to 2**63 - 1)"),
    (b",1775001600,31,a,2", "sensor_index '' is not an index"),
    (b"-5,1775001600,31,a,2", "sensor_index '-5' is not an index"),
    (b"9223372036854775808,1775001600,31,a,2", "sensor_index '9223372036854775808' is not"),
    (b"5.0,1775001600,31,a,2", "sensor_index '5.0' is not an index"),
    (b"1_0,1775001600,31,a,2", "sensor_index '1_0' is not an index"),
    ("\u0661,1775001600,31,a,2".encode(), "sensor_index '\u0661' is not an index"),
    (b"5,yesterday,31,a,2", "time 'yesterday' is not a time (epoch seconds or ISO 8601"),
    (b"5,,31,a,2", "time '' is not a time"),
    (b"5,1775001600.5,31,a,2", "time '1775001600.5' is not a time"),
    (b"5,1000000000000,31,a,2", "time '1000000000000' is not a time"),
    (b"5,2026-04-01T00:00:00.25,31,a,2", "time '2026-04-01T00:00:00.25' is not a whole second"),
    (b"5,0001-01-01T00:00:00+01:00,31,a,2", "time '0001-01-01T00:00:00+01:00' is not a time"),
    (b"5,1775001600,wet,a,2", "field 'humidity' is 'wet', not a number"),
    (b"5,1775001600,1e999,a,2", "field 'humidity' is '1e999', not a finite number"),
    (b"5,1775001600,inf,a,2", "field 'humidity' is 'inf', not a finite number"),
    (b"5,1775001600,-nan,a,2", "field 'humidity' is '-nan', not a finite number"),
    (b"5,1775001600,1_000,a,2", "field 'humidity' is '1_000', not a number"),
    ("5,1775001600,\uff11,a,2".encode(), "field 'humidity' is '\uff11', not a number"),
    (b"5,1775001600,31,a,0x1f", "field 'pm1.0_cf_1' is '0x1f', not a number"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_ROWS)
def test_each_bad_row_names_its_reason(header, line, reason):
    with pytest.raises(CsvRowError) as caught:
        parse_line(header, line)
    assert str(caught.value).startswith(reason)
    got, dead = parse_lines(header, [line], [7], "r.csv")
    assert len(got) == 0 and [(d.reason, d.raw, d.origin) for d in dead] == [
        (str(caught.value), line, "r.csv:7")
    ]


GOOD = [
    (b"5,1775001600,31,a,2", (5, 1775001600, [31.0, 2.0], {"name": "a"})),
    (b" 5 , 1775001600 , 31 ,,  2.5 ", (5, 1775001600, [31.0, 2.5], {"name": None})),
    (b"5,2026-04-01T00:00:00Z,,b,NA", (5, 1775001600, [None, None], {"name": "b"})),
    (b"5,2026-04-01 01:00:00+01:00,nan,c,null", (5, 1775001600, [None, None], {"name": "c"})),
    (b"5,2026-04-01,None,\xc3\xa9,NaN", (5, 1775001600, [None, None], {"name": "\u00e9"})),
    (b'5,1775001600,31,"x, y",2', (5, 1775001600, [31.0, 2.0], {"name": "x, y"})),
    (b"0,-62135596800,-0.0,d,1e-999", (0, -62135596800, [-0.0, 0.0], {"name": "d"})),
]


@pytest.mark.parametrize(("line", "want"), GOOD)
def test_good_rows(header, line, want):
    assert parse_line(header, line) == want
    got, dead = parse_lines(header, [line], [2], "r.csv")
    assert not dead and got.fields == FIELDS
    values = [None if np.isnan(v) else v for v in got.values[0].tolist()]
    assert (int(got.sensors[0]), int(got.times[0]), values, got.text[0]) == want


def random_line(rng: random.Random) -> bytes:
    sensor = rng.choice([str(rng.randrange(60)), str(rng.randrange(60)), "x", "", "-1", "7.0"])
    time = rng.choice(
        [str(1775001600 + rng.randrange(10**5))] * 6
        + ["2026-04-01T00:02:00Z", "2026-04-01 00:04:00", "soon", "1e3", "2026-04-01T00:00:00.5"]
    )
    cells = [sensor, time]
    for _ in range(3):
        cells.append(
            rng.choice(
                [f"{rng.uniform(0, 100):.2f}", str(rng.randrange(100)), "", "NA", "nan"] * 3
                + ["inf", "x", "1_0", "1e999", " 3 ", "-nan"]
            )
        )
    cells.insert(3, rng.choice(["site", "", "a b", "\u00e9t\u00e9"]))
    line = ",".join(cells).encode()
    roll = rng.random()
    if roll < 0.05:
        line += b",extra"
    elif roll < 0.1:
        line = line.rsplit(b",", 1)[0]
    elif roll < 0.13:
        line = line.replace(b"site", b'"si,te"')
    elif roll < 0.15:
        line = line.replace(b"site", b"s\xffte")
    elif roll < 0.17:
        line += b"\r"
    return line


def reference(header, lines, numbers, owner):
    """Row by row, by `parse_line` and `line_sensor`."""
    readings, dead = [], []
    for line, n in zip(lines, numbers, strict=True):
        if owner is not None and not owner(line_sensor(header, line)):
            continue
        try:
            s, t, values, text = parse_line(header, line)
        except CsvRowError as exc:
            dead.append((str(exc), line, f"r.csv:{n}"))
            continue
        hexes = tuple(None if v is None else v.hex() for v in values)
        readings.append((s, t, hexes, tuple(text.items())))
    return readings, dead


def by_columns(columns, dead):
    readings = []
    for i in range(len(columns)):
        hexes = tuple(None if np.isnan(v) else float(v).hex() for v in columns.values[i].tolist())
        text = tuple(columns.text[i].items())
        readings.append((int(columns.sensors[i]), int(columns.times[i]), hexes, text))
    return readings, [(d.reason, d.raw, d.origin) for d in dead]


@pytest.mark.parametrize("seed", range(40))
def test_columns_equal_the_row_rule(header, seed):
    rng = random.Random(seed)
    lines = [random_line(rng) for _ in range(rng.randrange(1, 300))]
    numbers = list(range(2, 2 + len(lines)))
    shards = rng.choice([1, 2, 3])
    for shard in range(shards):
        owner = None if shards == 1 else sensor_owner(shard, shards)
        got = by_columns(*parse_lines(header, lines, numbers, "r.csv", owner))
        assert got == reference(header, lines, numbers, owner)


def write_clean(path, rng, n_sensors=30, n_rows=900, iso=False):
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "pm1.0_cf_1", "sensor_index", "humidity"])
        for k in range(n_rows):
            t = 1775001600 + 120 * (k // n_sensors)
            when = datetime.fromtimestamp(t, UTC).isoformat() if iso and k % 2 else t
            pm = "" if rng.random() < 0.1 else round(rng.gammavariate(2, 5), 1)
            out.writerow([when, pm, k % n_sensors, rng.randrange(10, 90)])


@pytest.mark.parametrize("iso", [False, True])
def test_a_clean_file_reads_as_csv_and_datetime_read_it(tmp_path, iso):
    """Independent oracle: csv.DictReader, float() and datetime, on a clean file."""
    path = tmp_path / "clean.csv"
    write_clean(path, random.Random(3), iso=iso)
    want = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            t = row["time"]
            epoch = int(datetime.fromisoformat(t).timestamp()) if "T" in t else int(t)
            pm = float(row["pm1.0_cf_1"]) if row["pm1.0_cf_1"] else None
            want.append((int(row["sensor_index"]), epoch, pm, float(row["humidity"])))
    source = CsvColumnSource(path, shards=1, batch_size=128)
    got = []
    for batch, _ in drain(source.build_part("read", "shard-0-of-1", None)):
        for item in batch:
            assert not isinstance(item, DeadLetter)
            _, c = item
            assert c.fields == ("pm1.0_cf_1", "humidity") and c.text is None
            for i in range(len(c)):
                pm, humidity = c.values[i].tolist()
                pm = None if np.isnan(pm) else pm
                got.append((int(c.sensors[i]), int(c.times[i]), pm, humidity))
    assert got == want


def items_of(batches):
    rows, dead = [], []
    for batch, _ in batches:
        for item in batch:
            if isinstance(item, DeadLetter):
                dead.append((item.reason, item.origin))
            else:
                c = item[1]
                rows += list(zip(c.sensors.tolist(), c.times.tolist(), strict=True))
    return rows, dead


def test_shards_resume_and_over_long_lines(tmp_path, monkeypatch):
    """Every row once over the shards (rows in = readings + dead letters), each sensor in one
    shard in file order; from any snapshot a shard goes on exactly; a line over the limit is
    one dead letter of shard 0, read no further."""
    monkeypatch.setattr(csv_source, "MAX_LINE_BYTES", 200)
    rng = random.Random(11)
    lines = [random_line(rng) for _ in range(400)]
    lines[50] = b"9" * 1000
    lines[120] = b""
    path = tmp_path / "r.csv"
    path.write_bytes(HEADER.encode() + b"\n" + b"\n".join(lines) + b"\n" + b"y" * 500)
    rows_in = sum(1 for line in lines if line.strip()) + 1
    one = CsvColumnSource(path, shards=1, batch_size=1000)
    whole = items_of(drain(one.build_part("read", "shard-0-of-1", None)))
    assert len(whole[0]) + len(whole[1]) == rows_in
    assert ("line of 1001 bytes, longer than 200", "r.csv:52") in whole[1]
    assert ("line of 500 bytes, longer than 200", "r.csv:402") in whole[1]
    source = CsvColumnSource(path, shards=3, batch_size=17)
    seen_rows, seen_dead, where = [], [], {}
    for part in source.list_parts():
        batches = drain(source.build_part("read", part, None))
        rows, dead = items_of(batches)
        seen_rows += rows
        seen_dead += dead
        for sensor, _ in rows:
            assert where.setdefault(sensor, part) == part
        assert rows == [r for r in whole[0] if r[0] in {s for s, _ in rows}]
        for k, (_, at) in enumerate(batches):
            rest = drain(source.build_part("read", part, at))
            assert items_of(rest) == items_of(batches[k + 1 :])
    assert sorted(seen_rows) == sorted(whole[0]) and sorted(seen_dead) == sorted(whole[1])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"time,pm1.0_cf_1\n", "the header has no 'sensor_index' column"),
        (b"sensor_index,pm\n", "the header has no 'time' column"),
        (b"sensor_index,time,pm,pm\n", "the header repeats a name"),
        (b"sensor_index,time,\xff\n", "the header is not UTF-8 text"),
        (b"", "the header has no 'sensor_index' column"),
    ],
)
def test_a_bad_header_is_a_configuration_error(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=problem):
        CsvColumnSource(path)
