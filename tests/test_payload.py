"""Payload parsing: each good row becomes a reading, each bad one a dead letter with its reason."""

import json

import pytest

from core.readings import DeadLetter, Reading
from sources.payload import (
    PayloadError,
    decode_line,
    parse_payload,
    payload_shape,
    row_sensor,
    row_sensors,
)
from sources.purpleair import sensor_owner, sensor_worker
from tests.conftest import payload


def parse(doc):
    return list(parse_payload(doc, origin="t"))


def test_good_rows_become_typed_readings_with_nulls_as_missing():
    items = parse(payload([[7, 990, None, 12], [8, 995, 40.5, None]]))
    assert items == [
        Reading(7, 990, {"humidity": None, "pm1.0_cf_1": 12.0}),
        Reading(8, 995, {"humidity": 40.5, "pm1.0_cf_1": None}),
    ]
    assert all(type(v) is float for r in items for v in r.values.values() if v is not None)


def test_event_time_is_data_time_stamp_when_last_seen_is_absent():
    items = parse(payload([[7, 3.5]], fields=("sensor_index", "pm1.0_cf_1"), stamp=1234))
    assert items == [Reading(7, 1234, {"pm1.0_cf_1": 3.5})]


def test_text_fields_are_carried_not_validated_as_numbers():
    doc = payload([[7, "Backyard", 3.0]], fields=("sensor_index", "name", "pm1.0_cf_1"))
    assert parse(doc) == [Reading(7, 1000, {"pm1.0_cf_1": 3.0}, {"name": "Backyard"})]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([7, 990, 1.0], "row has 3 values but 'fields' names 4"),
        ([7, 990, 1.0, 2.0, 3.0], "row has 5 values but 'fields' names 4"),
        ([7, 990, "40", 2.0], "field 'humidity' is a string ('40'), not a number"),
        ([7, 990, True, 2.0], "field 'humidity' is a boolean (true), not a number"),
        ([7, 990, 1.0, float("nan")], "field 'pm1.0_cf_1' is nan, not a finite number"),
        ([7, 990, 1.0, float("inf")], "field 'pm1.0_cf_1' is inf, not a finite number"),
        ([None, 990, 1.0, 2.0], "sensor_index is null, not an integer"),
        (["7", 990, 1.0, 2.0], "sensor_index is a string ('7'), not an integer"),
        ([7.0, 990, 1.0, 2.0], "sensor_index is 7.0, not an integer"),
        ([7, None, 1.0, 2.0], "last_seen is null, not an integer"),
        ([7, 990, [1], 2.0], "field 'humidity' is a JSON list, not a number"),
        ({"sensor_index": 7}, "row is a JSON dict, not an array"),
    ],
)
def test_each_bad_row_kind_is_a_dead_letter_with_reason_and_raw_row(row, reason):
    good = [8, 991, 1.0, 2.0]
    items = parse(payload([good, row, good]))
    assert items[0] == items[2] == Reading(8, 991, {"humidity": 1.0, "pm1.0_cf_1": 2.0})
    assert items[1] == DeadLetter(reason, row, "t#row1")


def test_nan_tokens_in_the_json_text_reach_the_row_check():
    doc = decode_line(b'{"data_time_stamp":1,"fields":["sensor_index","pm"],"data":[[1,NaN]]}')
    [letter] = parse(doc)
    assert (letter.reason, letter.origin) == ("field 'pm' is nan, not a finite number", "t#row0")


def test_no_sensor_index_field_makes_every_row_a_dead_letter():
    items = parse(payload([[1.0], [2.0]], fields=("pm1.0_cf_1",)))
    assert [(d.reason, d.raw) for d in items] == [
        ("no sensor_index: 'fields' does not name it", [1.0]),
        ("no sensor_index: 'fields' does not name it", [2.0]),
    ]


@pytest.mark.parametrize(
    ("doc", "reason", "n"),
    [
        ({"data": [[1, 2], [3, 4]]}, "payload has no 'fields' list of names", 2),
        (
            {"fields": ["sensor_index"], "data": [[1]]},
            "payload has neither a 'last_seen' field nor 'data_time_stamp'",
            1,
        ),
        ({"fields": ["sensor_index"], "data_time_stamp": 1}, "payload has no 'data' list", 1),
        (
            {"fields": ["a", "a"], "data": [[1, 1]], "data_time_stamp": 1},
            "payload 'fields' has repeated names",
            1,
        ),
        (
            {"fields": ["sensor_index"], "data": [[1]], "data_time_stamp": "x"},
            "payload 'data_time_stamp' is not an integer",
            1,
        ),
        ([1, 2, 3], "payload is a JSON list, not an object", 1),
    ],
)
def test_envelope_errors_give_one_dead_letter_per_row(doc, reason, n):
    items = parse(doc)
    assert len(items) == n
    assert all(isinstance(d, DeadLetter) and d.reason == reason for d in items)


@pytest.mark.parametrize("line", [b"{not json", b"\xff\xfe\x00garbage", b'{"a": 1'])
def test_bytes_that_are_not_json_raise_payload_error(line):
    with pytest.raises(PayloadError, match="not JSON"):
        decode_line(line)


def test_owner_filter_takes_only_its_rows_and_unidentified_rows_go_to_one_owner():
    rows = [[1, 5, 1.0, 1.0], [2, 5, 1.0, 1.0], [None, 5, 1.0, 1.0], [3, 5, "x", 1.0]]
    mine = list(parse_payload(payload(rows), owner=lambda s: s is not None and s % 2 == 1))
    assert [getattr(i, "sensor_index", None) for i in mine] == [1, None]
    assert mine[1].raw == [3, 5, "x", 1.0]
    others = list(parse_payload(payload(rows), owner=lambda s: s is None or s % 2 == 0))
    assert len(mine) + len(others) == len(rows)
    assert json.dumps(others[1].raw) == "[null, 5, 1.0, 1.0]"


#: JSON text of a row (fields sensor_index, last_seen, humidity, name, pm) -> reading or reason.
TRICKY_ROWS = [
    ('[1, 5, 40, "a", 2]', Reading(1, 5, {"humidity": 40.0, "pm": 2.0}, {"name": "a"})),
    ("[1, 5, -0.0, null, null]", Reading(1, 5, {"humidity": -0.0, "pm": None}, {"name": None})),
    (
        '[1, 5, 1180591620717411303424, "a", 1e308]',
        Reading(1, 5, {"humidity": 1.1805916207174113e21, "pm": 1e308}, {"name": "a"}),
    ),
    ('[1, 5, NaN, "a", 2]', "field 'humidity' is nan, not a finite number"),
    (f'[1, 5, 40, "a", 1{"0" * 400}]', "field 'pm' is an integer too large for a float"),
    ('[1, 5, 2, "a", 1e400]', "field 'pm' is inf, not a finite number"),
    ('[1, 5, -Infinity, "a", 2]', "field 'humidity' is -inf, not a finite number"),
    ('[1, 5, true, "a", 2]', "field 'humidity' is a boolean (true), not a number"),
    ('[1, 5, 2, "a", false]', "field 'pm' is a boolean (false), not a number"),
    ('[1, 5, "40", "a", 2]', "field 'humidity' is a string ('40'), not a number"),
    ('[1, 5, [40], "a", 2]', "field 'humidity' is a JSON list, not a number"),
    ('[1, 5, 40, ["a"], 2]', "field 'name' is a JSON list, not text"),
    ("[1, 5, 40, 7, 2]", "field 'name' is a JSON int, not text"),
    ('[true, 5, 40, "a", 2]', "sensor_index is a boolean (true), not an integer"),
    ('[1, 5.0, 40, "a", 2]', "last_seen is 5.0, not an integer"),
    ('[1, 253402300800, 40, "a", 2]', "last_seen 253402300800 is not a time (years 1–9999)"),
    ('[1, 5, 40, "a"]', "row has 4 values but 'fields' names 5"),
    ('{"sensor_index": 1}', "row is a JSON dict, not an array"),
]


@pytest.mark.parametrize("nonfinite", [False, True])
def test_tricky_rows_match_their_expected_reading_or_reason(nonfinite):
    # Without NaN/Infinity/1e400 orjson decodes the line; with them the json fallback does.
    tokens = ("NaN", "Infinity", "e400")
    cases = [c for c in TRICKY_ROWS if nonfinite or not any(t in c[0] for t in tokens)]
    line = (
        '{"data_time_stamp": 1, "fields": ["sensor_index", "last_seen", "humidity", "name", "pm"],'
        f' "data": [{", ".join(text for text, _ in cases)}]}}'
    )
    items = parse(decode_line(line.encode()))
    assert len(items) == len(cases)
    for i, ((text, expected), item) in enumerate(zip(cases, items, strict=True)):
        if isinstance(expected, Reading):
            assert item == expected, text
            assert list(map(type, item.values.values())) == list(
                map(type, expected.values.values())
            )
            assert item.imputed == item.missing == [] and item.flags == {}
        else:
            assert (item.reason, item.origin) == (expected, f"t#row{i}")
            assert repr(item.raw) == repr(json.loads(text))  # NaN != NaN, so compare the text


def test_readings_do_not_share_their_mutable_defaults():
    first, second = parse(payload([[1, 5, 1, 2], [2, 5, 3, 4]]))
    first.imputed.append("humidity")
    first.flags["pm1.0_cf_1"] = "spike"
    assert second.imputed == [] and second.flags == {} and first.text is not second.text


def test_row_sensors_is_row_sensor_of_every_row():
    rows = [[1, 5, 1, 1], [True, 5, 1, 1], [2.0, 5, 1, 1], [3, 5], "row", None, [None, 5, 1, 1]]
    shape = payload_shape(payload(rows))
    assert row_sensors(shape) == [row_sensor(shape, row) for row in rows] == [1] + [None] * 6
    no_sensor = payload_shape(payload([[1.0], [2.0]], fields=("pm",)))
    assert row_sensors(no_sensor) == [None, None]


@pytest.mark.parametrize("split", [True, False])
def test_sensor_owner_gives_each_sensor_one_worker_and_unidentified_rows_to_worker_0(split):
    owners = [sensor_owner(w, 3, split) for w in range(3)]
    for sensor in [*range(50), 2**40, None, 7, None]:
        taken = [w for w, owns in enumerate(owners) if owns(sensor)]
        if sensor is None or not split:
            assert taken == [0]
        else:
            assert taken == [sensor_worker(sensor, 3)]


def test_owner_filter_keeps_file_order_and_splits_every_row_once():
    rows = [[s, 5, float(s), s] for s in range(40)] + [[None, 5, 1, 1], [3, 5, "x", 1], "bad"]
    whole = list(parse_payload(payload(rows)))
    shares = [list(parse_payload(payload(rows), owner=sensor_owner(w, 3))) for w in range(3)]
    assert sorted(map(repr, whole)) == sorted(repr(i) for share in shares for i in share)
    for share in shares:
        assert [repr(i) for i in share] == [repr(i) for i in whole if repr(i) in map(repr, share)]


def test_a_data_time_stamp_that_is_no_date_makes_every_row_a_dead_letter():
    doc = {
        "fields": ["sensor_index", "pm"],
        "data": [[1, 2.0], [2, 3.0]],
        "data_time_stamp": 10**13,
    }
    items = parse(doc)
    assert [type(i) for i in items] == [DeadLetter, DeadLetter]
    assert {i.reason for i in items} == {
        "payload 'data_time_stamp' 10000000000000 is not a time (years 1–9999)"
    }
