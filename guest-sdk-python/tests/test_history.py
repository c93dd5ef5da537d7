"""A communication the hook did not change goes back as its index in the
contact it came in (`kept`), not as a record: converting and lowering a
contact's history again costs as much as the rest of a small call. Every
change to it, made in place or by assignment, still comes back."""

import copy

import pytest

from stratagem import Communication, CommunicationState, CommunicationStatus, Contact, _records, _wire, datetime
from stratagem.testing import load_strategy


def with_history() -> Contact:
    contact = Contact("C-1", "U-1", "Ann")
    contact.communications = [
        Communication(
            id="comm-1",
            name="First contact",
            stage_name="1. First contact",
            start_date=datetime(2026, 11, 20, 9),
            end_date=datetime(2026, 11, 20, 17),
            status=CommunicationState(CommunicationStatus.COMPLETED, detail="answered", updated_at=datetime(2026, 11, 20, 10)),
            alternative="A",
            parameters={"template_name": "first"},
        ),
        Communication(
            id="comm-2",
            name="Retry",
            stage_name="2. Retry",
            start_date=datetime(2026, 11, 27, 9),
            status=CommunicationState(CommunicationStatus.IN_PROGRESS),
            flagged=True,
        ),
    ]
    return contact


def received(wire):
    """`wire` as a hook receives it, and what stands for it."""
    origin = _wire.Origin()
    return _wire.contact_from_wire(wire, origin), origin


def test_works_when_unchanged_history_goes_back_as_its_index():
    wire = _wire.contact_to_wire(_records, with_history(), "contact")
    contact, origin = received(wire)
    contact.communications[1].status.status = CommunicationStatus.COMPLETED

    back = _wire.result_to_wire(_records, "run", contact, False, origin)

    assert back.communications[0] == _records.ReturnedCommunication_Kept(0)
    changed = back.communications[1]
    assert type(changed) is _records.ReturnedCommunication_Changed
    assert changed.value.status.status == _records.CommunicationStatus.COMPLETED


def test_works_when_a_communication_is_kept_once_and_then_sent_as_its_record():
    wire = _wire.contact_to_wire(_records, with_history(), "contact")
    contact, origin = received(wire)
    first = contact.communications[0]
    contact.communications = [first, first]

    back = _wire.result_to_wire(_records, "run", contact, False, origin)

    assert back.communications == [_records.ReturnedCommunication_Kept(0), _records.ReturnedCommunication_Changed(wire.communications[0])]


def test_works_when_communications_of_another_contact_go_back_as_records():
    """DATA_LOAD's `existing_contact`, or a communication kept from an
    earlier call: an index means the hook's own contact only."""
    wire, other = (_wire.contact_to_wire(_records, with_history(), "contact") for _ in range(2))
    (contact, origin), (earlier, _) = received(wire), received(other)
    contact.communications = [earlier.communications[1], contact.communications[0]]

    back = _wire.result_to_wire(_records, "run", contact, False, origin)

    assert back.communications == [_records.ReturnedCommunication_Changed(other.communications[1]), _records.ReturnedCommunication_Kept(0)]


@pytest.mark.parametrize(
    "kept, error",
    [
        ([2], "contact.communications[0] keeps received communication 2, but the contact had 2"),
        ([1, 1], "contact.communications[1] keeps received communication 1 a second time; each is kept at most once"),
    ],
)
def test_errors_when_a_returned_contact_keeps_what_it_did_not_receive(kept, error):
    """What the host checks, mirrored by `stratagem.testing`."""
    wire = _wire.contact_to_wire(_records, with_history(), "contact")
    contact, origin = received(wire)
    back = _wire.result_to_wire(_records, "run", contact, False, origin)
    back.communications = [_records.ReturnedCommunication_Kept(index) for index in kept]

    with pytest.raises(_wire.InvalidResult, match=error.replace("[", r"\[").replace("]", r"\]")):
        _wire.returned_from_wire(back, wire)


def test_works_when_a_strategy_keeps_history_in_a_global_between_calls(tmp_path):
    """An instance serves many calls: a communication kept from an earlier
    contact is that contact's, and goes back as what it is."""
    path = tmp_path / "app.py"
    path.write_text(
        "seen = []\n"
        "async def run(contact, session_results, logger, **kwargs):\n"
        "    seen.append(contact.communications[0])\n"
        "    contact.communications = [seen[0]] + contact.communications[1:]\n"
        "    return contact\n"
    )
    strategy = load_strategy(path)
    strategy.aggregation(with_history(), {})
    later = with_history()
    later.communications[0].name = "Later contact"

    result = strategy.aggregation(later, {})

    assert result.communications[0] == with_history().communications[0]
    assert result.communications[1] == later.communications[1]


CHANGES = {
    "comm.status.status = CommunicationStatus.CANCELLED": lambda comm: comm.status.status == CommunicationStatus.CANCELLED,
    "comm.status = CommunicationState(CommunicationStatus.FAILED)": lambda comm: comm.status == CommunicationState(CommunicationStatus.FAILED),
    "comm.status = CommunicationStatus.MISSED": lambda comm: comm.status.status == CommunicationStatus.MISSED,
    "comm.status.detail = 'no answer'": lambda comm: comm.status.detail == "no answer",
    "comm.status.updated_at = datetime(2026, 11, 21)": lambda comm: comm.status.updated_at == datetime(2026, 11, 21),
    "comm.start_date = datetime(2026, 11, 19, 9)": lambda comm: comm.start_date == datetime(2026, 11, 19, 9),
    "comm.end_date = None": lambda comm: comm.end_date is None,
    "comm.id = None": lambda comm: comm.id is None,
    "comm.name = 'Renamed'": lambda comm: comm.name == "Renamed",
    "comm.stage_name = '2. Retry'": lambda comm: comm.stage_name == "2. Retry",
    "comm.flagged = True": lambda comm: comm.flagged is True,
    "comm.alternative = 'B'": lambda comm: comm.alternative == "B",
    "comm.parameters['template_name'] = 'second'": lambda comm: comm.parameters == {"template_name": "second"},
    "comm.parameters.clear()": lambda comm: comm.parameters == {},
    "comm.parameters = {'template_name': 'first', 'version': 2}": lambda comm: comm.parameters["version"] == 2,
}


@pytest.mark.parametrize("change", CHANGES)
def test_works_when_a_strategy_changes_a_communication_it_received(tmp_path, change):
    path = tmp_path / "app.py"
    path.write_text(
        "async def run(contact, session_results, logger, **kwargs):\n"
        "    comm = contact.communications[0]\n"
        f"    {change}\n"
        "    return contact\n"
    )

    result = load_strategy(path).aggregation(with_history(), {"OutcomeStatus": "PAID"})

    assert CHANGES[change](result.communications[0]), result.communications[0]
    assert result.communications[1] == with_history().communications[1]


def test_works_when_history_is_reordered_dropped_or_repeated(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(
        "async def run(contact, session_results, logger, **kwargs):\n"
        "    first, second = contact.communications\n"
        "    contact.communications = [second, first, first]\n"
        "    return contact\n"
    )

    result = load_strategy(path).aggregation(with_history(), {"OutcomeStatus": "PAID"})

    expected = with_history().communications
    assert result.communications == [expected[1], expected[0], expected[0]]


def test_works_when_a_strategy_copies_a_received_communication(tmp_path):
    """A copy of a communication shares what stands for its contact, not a
    copy of the whole contact; an unchanged copy is still that one."""
    wire = _wire.contact_to_wire(_records, with_history(), "contact")
    contact, origin = received(wire)
    copied = copy.deepcopy(contact.communications[0])
    assert copied._received[0] is origin
    contact.communications = [copied, contact.communications[1]]
    back = _wire.result_to_wire(_records, "run", contact, False, origin)
    assert back.communications[0] == _records.ReturnedCommunication_Kept(0)

    path = tmp_path / "app.py"
    path.write_text(
        "import copy\n"
        "async def run(contact, session_results, logger, **kwargs):\n"
        "    retry = copy.deepcopy(contact.communications[0])\n"
        "    retry.id, retry.name = None, 'Retry'\n"
        "    contact.communications.append(retry)\n"
        "    return contact\n"
    )
    result = load_strategy(path).aggregation(with_history(), {})
    assert result.communications[:2] == with_history().communications
    assert (result.communications[2].id, result.communications[2].name) == (None, "Retry")
    assert result.communications[2].parameters == {"template_name": "first"}
