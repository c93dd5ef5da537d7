"""The SDK's communication statuses are the contract's (`wit/types.wit`):
a status one side knows and the other does not fails every invocation
whose contact carries it."""

from pathlib import Path

from stratagem import CommunicationState, CommunicationStatus, Contact, Communication, datetime
from stratagem import _records

WIT = Path(__file__).resolve().parents[2] / "wit" / "types.wit"


def wit_statuses() -> list[str]:
    lines = iter(WIT.read_text().splitlines())
    assert any(line.strip() == "enum communication-status {" for line in lines), "wit/types.wit defines it"
    cases = []
    for line in lines:
        line = line.split("//")[0].strip()
        if line == "}":
            return cases
        if line:
            cases.append(line.rstrip(",").replace("-", "_").upper())
    raise AssertionError("enum communication-status is not closed")


def test_works_when_the_sdk_statuses_are_the_contracts_in_order():
    assert [status.name for status in CommunicationStatus] == wit_statuses()
    assert [(status.name, status.value) for status in _records.CommunicationStatus] == list(
        (name, index) for index, name in enumerate(wit_statuses())
    )


def test_works_when_a_communication_is_in_doubt():
    assert "IN_DOUBT" in wit_statuses()
    comm = Communication("Invoice", "1. First contact", datetime(2026, 1, 1), status=CommunicationState(CommunicationStatus.IN_DOUBT))
    contact = Contact("C-1", "U-1", "Ann", communications=[comm])
    assert contact.communications[0].status.status.value == "IN_DOUBT"
