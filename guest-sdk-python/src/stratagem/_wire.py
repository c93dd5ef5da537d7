"""Conversion between SDK objects and the WIT records of ``wit/types.wit``.

``make`` is the namespace of record constructors: the generated
``wit_world.imports.types`` inside the sandbox, ``stratagem._records`` in
plain CPython. One code path for both means a strategy that passes its
pytest suite is validated exactly as the platform will validate it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from . import _records, codec
from .codec import _EPOCH, _MICROSECOND, InvalidResult
from .models import (
    Campaign,
    Communication,
    CommunicationState,
    CommunicationStatus,
    Contact,
    Message,
    MessageRole,
    ResultField,
)


# Statuses are mapped by member name, read as `_name_`: `Enum.name`,
# `Enum[...]` and an enum's hash are Python-level calls, a dict lookup by
# string is not.
_STATUS_FROM_WIRE: dict[str, CommunicationStatus] = dict(CommunicationStatus.__members__)
_STATUS_TO_WIRE: dict[Any, dict[str, Any]] = {}


def _wire_status(make: Any) -> dict[str, Any]:
    """Status name -> ``make``'s enum member."""
    mapping = _STATUS_TO_WIRE.get(make)
    if mapping is None:
        mapping = {name: make.CommunicationStatus[name] for name in _STATUS_FROM_WIRE}
        _STATUS_TO_WIRE[make] = mapping
    return mapping


# `codec.datetime_to_instant` and `instant_to_datetime` inlined for the
# usual naive datetimes: a communication has two or three.
def _instant(value: datetime) -> int:
    if value.tzinfo is None:
        delta = value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return codec.datetime_to_instant(value)


def _when(value: Optional[int]) -> Optional[datetime]:
    return None if value is None else _EPOCH + _MICROSECOND * value


def _require(value: Any, kind: type, path: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = kind.__name__ + (" or None" if optional else "")
        raise InvalidResult(f"{path} is {type(value).__name__} {value!r:.60}; expected {expected}")
    return value


def _status(value: Any, path: str) -> CommunicationStatus:
    if isinstance(value, CommunicationStatus):
        return value
    if isinstance(value, str) and value.upper() in CommunicationStatus.__members__:
        return CommunicationStatus[value.upper()]
    allowed = ", ".join(CommunicationStatus.__members__)
    raise InvalidResult(f"{path} is {value!r}; expected a CommunicationStatus ({allowed})")


# The checks below test the exact type inline and call `_require` only on
# a mismatch, which accepts subclasses or raises with the path: a call per
# field (nineteen for a contact with one communication) costs the sandbox
# far more than the check.


class Origin:
    """The contact one call received: a communication built from it keeps
    this, and goes back as its index only to the call that made it. Copies
    of a communication share it, so a copy costs its own values, not the
    contact's."""

    __slots__ = ()

    def __copy__(self) -> "Origin":
        return self

    def __deepcopy__(self, memo: Any) -> "Origin":
        return self


def _unchanged(comm: Any) -> Any:
    """The ``(origin, index, record)`` that ``comm`` was built from, if the
    hook changed nothing in it.

    Most of a contact's communications are history no hook touches, and
    converting one back costs as much as the rest of a small call. Values
    are compared by identity with those built on the way in (a value put
    back equal but new counts as a change: converted, never wrong), and the
    parameters, which may have been changed in place, by their JSON."""
    received = comm.__dict__.get("_received")
    if received is None:
        return None
    origin, index, wire, start_date, end_date, state, status, updated_at, parameters = received
    if not (
        comm.status is state
        and state.status is status
        and state.detail is wire.status.detail
        and state.updated_at is updated_at
        and comm.start_date is start_date
        and comm.end_date is end_date
        and comm.id is wire.id
        and comm.name is wire.name
        and comm.stage_name is wire.stage_name
        and comm.flagged is wire.flagged
        and comm.alternative is wire.alternative
        and comm.parameters is parameters
    ):
        return None
    if parameters or wire.parameters != "{}":
        try:
            if codec.dumps(parameters, "") != wire.parameters:
                return None
        except InvalidResult:
            return None  # converted below, which says where
    return origin, index, wire


def communication_to_wire(make: Any, comm: Any, path: str) -> Any:
    type(comm) is Communication or _require(comm, Communication, path)
    unchanged = _unchanged(comm)
    if unchanged is not None and type(unchanged[2]) is make.Communication:
        return unchanged[2]
    return _communication(make, comm, path)


def _communication(make: Any, comm: Any, path: str) -> Any:
    """``comm`` validated and converted to a ``make.Communication``."""
    state = comm.status
    if type(state) is not CommunicationState:
        if isinstance(state, (CommunicationStatus, str)):
            # `comm.status = CommunicationStatus.COMPLETED` is a common slip for
            # `comm.status.status = ...`; it is unambiguous, so accept it.
            state = CommunicationState(status=_status(state, f"{path}.status"))
        _require(state, CommunicationState, f"{path}.status")
    status = state.status
    if type(status) is not CommunicationStatus:
        status = _status(status, f"{path}.status.status")
    detail, updated_at = state.detail, state.updated_at
    detail is None or type(detail) is str or _require(detail, str, f"{path}.status.detail")
    updated_at is None or type(updated_at) is datetime or _require(updated_at, datetime, f"{path}.status.updated_at")
    start_date, end_date = comm.start_date, comm.end_date
    type(start_date) is datetime or _require(start_date, datetime, f"{path}.start_date")
    if end_date is not None:
        type(end_date) is datetime or _require(end_date, datetime, f"{path}.end_date")
        if codec.to_utc_naive(end_date) <= codec.to_utc_naive(start_date):
            raise InvalidResult(f"{path}.end_date {end_date} is not after start_date {start_date}")
    id, name, stage_name, alternative = comm.id, comm.name, comm.stage_name, comm.alternative
    id is None or type(id) is str or _require(id, str, f"{path}.id")
    type(name) is str or _require(name, str, f"{path}.name")
    type(stage_name) is str or _require(stage_name, str, f"{path}.stage_name")
    alternative is None or type(alternative) is str or _require(alternative, str, f"{path}.alternative")
    return make.Communication(
        id=id,
        name=name,
        stage_name=stage_name,
        start_date=_instant(start_date),
        end_date=None if end_date is None else _instant(end_date),
        status=make.CommunicationState(
            status=_wire_status(make)[status._name_],
            detail=detail,
            updated_at=None if updated_at is None else _instant(updated_at),
        ),
        flagged=bool(comm.flagged),
        alternative=alternative,
        parameters=codec.dumps(comm.parameters, f"{path}.parameters"),
    )


def _contact_fields(contact: Any, path: str) -> tuple[tuple, list]:
    """A contact's fields but its communications, validated and converted
    in the contract's order, and its communications as they are."""
    if not isinstance(contact, Contact):
        raise InvalidResult(f"{path} is {type(contact).__name__}; expected Contact")
    comms = contact.communications
    type(comms) is list or _require(comms, list, f"{path}.communications")
    object_id, external_id, name = contact.object_id, contact.external_id, contact.name
    email, phone, current_stage = contact.email, contact.phone, contact.current_stage
    result_flag, flag_time = contact.result_flag, contact.result_datetime
    type(object_id) is str or _require(object_id, str, f"{path}.object_id")
    type(external_id) is str or _require(external_id, str, f"{path}.external_id")
    type(name) is str or _require(name, str, f"{path}.name")
    type(email) is str or _require(email, str, f"{path}.email")
    type(phone) is str or _require(phone, str, f"{path}.phone")
    current_stage is None or type(current_stage) is str or _require(current_stage, str, f"{path}.current_stage")
    result_flag is None or type(result_flag) is bool or _require(result_flag, bool, f"{path}.result_flag")
    flag_time is None or type(flag_time) is datetime or _require(flag_time, datetime, f"{path}.result_datetime")
    fields = (
        object_id,
        external_id,
        name,
        email,
        phone,
        codec.dumps(contact.parameters, f"{path}.parameters"),
        current_stage,
        codec.dumps(contact.internal_data, f"{path}.internal_data"),
        codec.dumps(contact.results, f"{path}.results"),
        result_flag,
        None if flag_time is None else _instant(flag_time),
    )
    return fields, comms


def contact_to_wire(make: Any, contact: Any, path: str) -> Any:
    """A contact as a hook receives it (``make.Contact``)."""
    fields, comms = _contact_fields(contact, path)
    return make.Contact(
        *fields,
        [communication_to_wire(make, comm, f"{path}.communications[{index}]") for index, comm in enumerate(comms)],
    )


def returned_to_wire(make: Any, contact: Any, path: str, origin: Origin) -> Any:
    """A contact as a hook returns it (``make.ReturnedContact``): each
    communication of the contact the call received (``origin``) that comes
    back unchanged is returned as its index there, once; any other is
    converted, or returned as the record it came in as."""
    fields, comms = _contact_fields(contact, path)
    kept_as, changed_as, record = make.ReturnedCommunication_Kept, make.ReturnedCommunication_Changed, make.Communication
    kept: set[int] = set()
    returned = []
    for index, comm in enumerate(comms):
        type(comm) is Communication or _require(comm, Communication, f"{path}.communications[{index}]")
        unchanged = _unchanged(comm)
        if unchanged is not None:
            received_in, position, wire = unchanged
            if received_in is origin and position not in kept:
                kept.add(position)
                returned.append(kept_as(position))
                continue
            if type(wire) is record:
                returned.append(changed_as(wire))
                continue
        returned.append(changed_as(_communication(make, comm, f"{path}.communications[{index}]")))
    return make.ReturnedContact(*fields, returned)


def returned_from_wire(returned: Any, received: Any) -> Contact:
    """The contact a hook returned, each kept communication replaced by the
    one it received, as the host rebuilds it (``stratagem.testing``)."""
    received_comms = received.communications
    comms, kept = [], set()
    for index, item in enumerate(returned.communications):
        position = item.value
        if type(item) is _records.ReturnedCommunication_Kept:
            if not 0 <= position < len(received_comms):
                raise InvalidResult(
                    f"contact.communications[{index}] keeps received communication {position}, "
                    f"but the contact had {len(received_comms)}"
                )
            if position in kept:
                raise InvalidResult(
                    f"contact.communications[{index}] keeps received communication {position} a second time; "
                    "each is kept at most once"
                )
            kept.add(position)
            comms.append(received_comms[position])
        else:
            comms.append(item.value)
    fields = [getattr(returned, name) for name in returned.__dataclass_fields__ if name != "communications"]
    return contact_from_wire(type(received)(*fields, comms))


def communication_from_wire(wire: Any, origin: Optional[Origin] = None, index: int = 0) -> Communication:
    """``wire`` as an SDK object; it is ``communications[index]`` of the
    contact ``origin`` stands for, for ``returned_to_wire``."""
    received = wire.status
    start_date, end_date, updated_at = _when(wire.start_date), _when(wire.end_date), _when(received.updated_at)
    status = _STATUS_FROM_WIRE[received.status._name_]
    state = CommunicationState(status=status, detail=received.detail, updated_at=updated_at)
    parameters = codec.loads(wire.parameters)
    comm = Communication(
        id=wire.id,
        name=wire.name,
        stage_name=wire.stage_name,
        start_date=start_date,
        end_date=end_date,
        status=state,
        flagged=wire.flagged,
        alternative=wire.alternative,
        parameters=parameters,
    )
    # What `_unchanged` compares with on the way back.
    comm._received = (origin, index, wire, start_date, end_date, state, status, updated_at, parameters)
    return comm


def contact_from_wire(wire: Any, origin: Optional[Origin] = None) -> Contact:
    """``wire`` as an SDK object; ``origin``, when the hook's result is to
    keep its communications by index, stands for it (pass the same to
    ``result_to_wire``)."""
    return Contact(
        object_id=wire.object_id,
        external_id=wire.external_id,
        name=wire.name,
        email=wire.email,
        phone=wire.phone,
        parameters=codec.loads(wire.parameters),
        current_stage=wire.current_stage,
        internal_data=codec.loads(wire.internal_data),
        results=codec.loads(wire.results),
        result_flag=wire.result_flag,
        result_datetime=None if wire.result_datetime is None else _when(wire.result_datetime),
        communications=[communication_from_wire(comm, origin, index) for index, comm in enumerate(wire.communications)],
    )


def message_from_wire(wire: Any) -> Message:
    return Message(
        content=wire.content,
        role=MessageRole[wire.role.name],
        sent_at=_when(wire.sent_at),
        communication_id=wire.communication_id,
    )


def message_to_wire(make: Any, message: Message) -> Any:
    sent_at = message.sent_at or datetime(1970, 1, 1)
    return make.Message(
        role=make.MessageRole[MessageRole(message.role).name],
        content=message.content,
        sent_at=_instant(sent_at),
        communication_id=message.communication_id,
    )


def campaign_from_wire(wire: Any) -> Campaign:
    return Campaign(
        id=wire.id,
        name=wire.name,
        result_fields=[ResultField(f.code, f.name, f.description) for f in wire.result_fields],
    )


def campaign_to_wire(make: Any, campaign: Campaign) -> Any:
    return make.Campaign(
        id=campaign.id,
        name=campaign.name,
        result_fields=[make.ResultField(f.code, f.name, f.description) for f in campaign.result_fields],
    )


def result_to_wire(make: Any, hook_function: str, result: Any, may_be_none: bool, origin: Origin) -> Any:
    """Validate and convert what a hook returned (``origin`` stands for
    the contact it was given); errors say what to fix."""
    if result is None and may_be_none:
        return None
    if not isinstance(result, Contact):
        expected = "Contact or None" if may_be_none else "Contact"
        raise InvalidResult(
            f"{hook_function}() returned {type(result).__name__}; expected {expected} "
            "(did you forget `return contact`?)"
        )
    try:
        return returned_to_wire(make, result, "contact", origin)
    except InvalidResult as error:
        raise InvalidResult(f"{hook_function}() returned an invalid contact: {error}") from None
