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
from datetime import date, datetime, timezone
from typing import Any

_EPOCH = datetime(1970, 1, 1)


class InvalidResult(TypeError):
    """A strategy returned something the platform cannot store."""


def to_utc_naive(value: datetime) -> datetime:
    """Aware datetimes become naive UTC; naive ones already mean UTC."""
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def datetime_to_instant(value: datetime) -> tuple[int, int]:
    """(seconds, nanoseconds) since the Unix epoch."""
    delta = to_utc_naive(value) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds, delta.microseconds * 1000


def instant_to_datetime(seconds: int, nanoseconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).replace(
        tzinfo=None, microsecond=nanoseconds // 1000
    )


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


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_decode = json.JSONDecoder(object_hook=_tagged).decode
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
        return _ENCODER.encode(value)
    return _ENCODER.encode(_encode(value, path))


def loads(text: str) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    return _decode(text)
