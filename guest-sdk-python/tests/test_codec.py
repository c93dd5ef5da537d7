from datetime import date, datetime, timedelta, timezone

import pytest

from stratagem import codec


def test_works_when_dates_round_trip_with_their_types():
    value = {"at": datetime(2026, 11, 26, 10, 30, 1, 500), "on": date(2026, 12, 1), "n": [1, 2.5, None, "x"]}
    assert codec.loads(codec.dumps(value, "x")) == value


def test_works_when_aware_datetimes_are_stored_as_utc():
    aware = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert codec.loads(codec.dumps({"t": aware}, "x")) == {"t": datetime(2026, 1, 1, 10)}


def test_works_when_instants_convert_both_ways():
    moment = datetime(2026, 11, 26, 23, 59, 58, 123456)
    assert codec.instant_to_datetime(codec.datetime_to_instant(moment)) == moment
    assert codec.datetime_to_instant(datetime(1970, 1, 1)) == 0
    assert codec.datetime_to_instant(datetime(1969, 12, 31, 23, 59, 59, 999999)) == -1
    assert codec.datetime_to_instant(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == 1767261600000000
    assert codec.instant_to_datetime(1767261600000001) == datetime(2026, 1, 1, 10, 0, 0, 1)


@pytest.mark.parametrize("bad, message", [
    ({1: "x"}, "has the key 1 of type int; keys must be str"),
    ({"x": float("nan")}, r"x\['x'\] is nan; only finite numbers can be stored"),
    ({"x": object()}, r"x\['x'\] is a object, which cannot be stored"),
])
def test_errors_when_a_value_cannot_be_stored(bad, message):
    with pytest.raises(codec.InvalidResult, match=message):
        codec.dumps(bad, "x")


def test_works_when_text_is_not_ascii_and_dates_are_tagged_inside_lists():
    value = {"name": "Zoë 東京", "seen": [date(2026, 1, 2), {"at": datetime(2026, 1, 2, 3, 4)}]}
    text = codec.dumps(value, "x")
    assert '"Zoë 東京"' in text
    assert codec.loads(text) == value


def test_errors_when_text_is_not_one_json_document():
    with pytest.raises(ValueError, match="Extra data: line 1 column 10"):
        codec.loads('{"a": 1} {"b": 2}')
    with pytest.raises(ValueError, match="Expecting property name"):
        codec.loads("{a: 1}")
