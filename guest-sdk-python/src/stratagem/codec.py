"""How free-form dictionaries and datetimes cross the sandbox boundary.

Dictionaries travel as JSON text. Dates keep their Python type through a
tagged form: ``{"$datetime": "2026-11-26T10:00:00"}`` (UTC, no offset) and
``{"$date": "2026-11-26"}``. Anything else that JSON cannot carry is refused
with the path of the offending value, so a strategy learns at once that, say,
a ``set`` in ``internal_data`` cannot be kept.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

_EPOCH = datetime(1970, 1, 1)


class InvalidResult(TypeError):
    """A strategy returned something the platform cannot store."""


def to_utc_naive(value: datetime) -> datetime:
    """Aware datetimes become naive UTC; naive ones already mean UTC."""
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


_MICROSECOND = timedelta(microseconds=1)


# Arithmetic on a `timedelta` rather than a `timedelta(...)` call, which
# parses its arguments: the cheapest forms inside the sandbox
# (docs/BENCHMARKS.md, "instants as one number").
def datetime_to_instant(value: datetime) -> int:
    """The WIT ``instant``: microseconds since the Unix epoch, UTC."""
    delta = to_utc_naive(value) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def instant_to_datetime(microseconds: int) -> datetime:
    """A WIT ``instant`` as a naive UTC datetime."""
    return _EPOCH + _MICROSECOND * microseconds


def _encode(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidResult(f"{path} is {value!r}; only finite numbers can be stored")
        return value
    if isinstance(value, datetime):
        return {"$datetime": to_utc_naive(value).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidResult(
                    f"{path} has the key {key!r} of type {type(key).__name__}; keys must be str"
                )
            out[key] = _encode(item, f"{path}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise InvalidResult(
        f"{path} is a {type(value).__name__}, which cannot be stored; "
        "use None, bool, int, float, str, datetime, date, list or dict"
    )


def _tagged(obj: dict[str, Any]) -> Any:
    """json.loads object_hook: revive tagged dates, leave other objects."""
    if len(obj) == 1:
        if "$datetime" in obj:
            return datetime.fromisoformat(obj["$datetime"])
        if "$date" in obj:
            return date.fromisoformat(obj["$date"])
    return obj


def _not_plain(value: Any) -> Any:
    raise TypeError(type(value).__name__)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_decode = json.JSONDecoder(object_hook=_tagged).decode
# `JSONEncoder.encode` and `JSONDecoder.decode` build or wrap their C
# encoder and scanner on every call, which costs more than encoding the
# small dictionaries a strategy exchanges (3-4x, measured natively). These
# are made once. The encoder keeps no circular-reference markers: it only
# ever sees flat dictionaries or values `_encode` has already walked.
if json.encoder.c_make_encoder is not None and json.scanner.c_make_scanner is not None:
    _encode_compact = json.encoder.c_make_encoder(
        None, _not_plain, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    _scan_plain = json.scanner.c_make_scanner(json.JSONDecoder())
    _scan_tagged = json.scanner.c_make_scanner(json.JSONDecoder(object_hook=_tagged))

    def _encoded(value: Any) -> str:
        return "".join(_encode_compact(value, 0))

    def _decoded(text: str) -> Any:
        try:
            value, end = (_scan_tagged if '"$d' in text else _scan_plain)(text, 0)
        except StopIteration:
            end = -1
        # The host sends compact JSON; anything else takes the long way,
        # which also names the error.
        return value if end == len(text) else _decode(text)
else:  # a Python built without the C accelerator
    _encoded, _decoded = _ENCODER.encode, _decode

#: Values JSON carries as they are: a dict of only these needs no walk.
_PLAIN = (str, int, bool, type(None))


def dumps(value: Any, path: str) -> str:
    """Encode a dictionary field; ``path`` names it in errors."""
    if type(value) is not dict:
        if not isinstance(value, dict):
            raise InvalidResult(f"{path} is a {type(value).__name__}; expected dict")
    if not value:
        return "{}"
    if all(type(item) in _PLAIN for item in value.values()) and all(type(k) is str for k in value):
        return _encoded(value)
    return _encoded(_encode(value, path))


def loads(text: str) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    return _decoded(text)
