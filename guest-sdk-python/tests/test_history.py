"""A communication the hook did not change goes back as the record it came
in as: converting a contact's history again costs as much as the rest of a
small call. Every change to it, made in place or by assignment, still
comes back."""

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


def test_works_when_unchanged_history_goes_back_as_the_records_it_came_in_as():
    wire = _wire.contact_to_wire(_records, with_history(), "contact")
    received = _wire.contact_from_wire(wire)
    received.communications[1].status.status = CommunicationStatus.COMPLETED

    back = _wire.result_to_wire(_records, "run", received, False)

    assert back.communications[0] is wire.communications[0]
    assert back.communications[1] is not wire.communications[1]
    assert back.communications[1].status.status == _records.CommunicationStatus.COMPLETED


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
