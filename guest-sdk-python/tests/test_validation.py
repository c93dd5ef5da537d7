"""Results the platform cannot store are refused with the path to fix."""

import pytest

from stratagem import Communication, Contact, InvalidResult, datetime
from stratagem.testing import load_strategy


def strategy(tmp_path, body: str, hook: str = "async def run(contact, existing_contact, logger, **kwargs):"):
    path = tmp_path / "app.py"
    path.write_text(hook + "\n" + "\n".join("    " + line for line in body.splitlines()) + "\n")
    return load_strategy(path)


def ann() -> Contact:
    return Contact("C-1", "U-1", "Ann")


def test_errors_when_run_returns_the_wrong_type(tmp_path):
    with pytest.raises(InvalidResult, match=r"run\(\) returned str; expected Contact \(did you forget `return contact`\?\)"):
        strategy(tmp_path, "return 'done'").data_load(ann())


def test_errors_when_run_returns_nothing(tmp_path):
    with pytest.raises(InvalidResult, match=r"run\(\) returned NoneType; expected Contact"):
        strategy(tmp_path, "contact.current_stage = 'x'").data_load(ann())


def test_errors_with_path_when_a_communication_field_has_the_wrong_type(tmp_path):
    s = strategy(tmp_path, "contact.communications.append(Communication('a', 'b', '2026-01-01'))\nreturn contact")
    with pytest.raises(InvalidResult, match=r"contact\.communications\[0\]\.start_date is str '2026-01-01'; expected datetime"):
        s.data_load(ann())


def test_errors_with_path_when_internal_data_holds_a_set(tmp_path):
    s = strategy(tmp_path, "contact.internal_data['tags'] = {'a'}\nreturn contact")
    with pytest.raises(InvalidResult, match=r"contact\.internal_data\['tags'\] is a set, which cannot be stored"):
        s.data_load(ann())


def test_errors_when_window_ends_before_it_starts(tmp_path):
    s = strategy(tmp_path, "now = datetime(2026, 1, 2)\n"
                 "contact.communications.append(Communication('a', 'b', now, end_date=now))\nreturn contact")
    with pytest.raises(InvalidResult, match=r"end_date .* is not after start_date"):
        s.data_load(ann())


def test_works_when_status_is_assigned_directly_or_as_text(tmp_path):
    s = strategy(tmp_path, "c = Communication('a', 'b', datetime(2026, 1, 1))\n"
                 "c.status = CommunicationStatus.CANCELLED\ncontact.communications.append(c)\n"
                 "d = Communication('a', 'b', datetime(2026, 1, 1))\nd.status.status = 'completed'\n"
                 "contact.communications.append(d)\nreturn contact")
    result = s.data_load(ann())
    assert [c.status.status.value for c in result.communications] == ["CANCELLED", "COMPLETED"]


def test_works_when_contact_answer_returns_none(tmp_path):
    s = strategy(tmp_path, "return None", hook="async def on_agent_answer(contact, message, **kwargs):")
    from stratagem import Message
    assert s.contact_answer(ann(), Message("hi")) is None


def test_errors_when_the_hook_function_is_missing(tmp_path):
    from stratagem._runner import MissingHook
    s = strategy(tmp_path, "return contact")
    from stratagem import Message
    with pytest.raises(MissingHook, match=r"defines no `async def on_agent_answer\(contact, message, \*\*kwargs\)`"):
        s.contact_answer(ann(), Message("hi"))


def test_errors_when_awaiting_something_the_platform_cannot_wait_for(tmp_path):
    s = strategy(tmp_path, "import asyncio\nawait asyncio.sleep(1)\nreturn contact")
    with pytest.raises(RuntimeError, match="await only stratagem.http calls"):
        s.data_load(ann())


def test_works_when_the_strategy_is_a_plain_function(tmp_path):
    path = tmp_path / "app.py"
    path.write_text("def run(contact, existing_contact, logger, **kwargs):\n    contact.name = 'Bob'\n    return contact\n")
    assert load_strategy(path).data_load(ann()).name == "Bob"


def test_works_when_dates_are_aware_or_strings_are_subclassed(tmp_path):
    s = strategy(tmp_path, "from datetime import timezone, timedelta\n"
                 "class Name(str):\n    pass\n"
                 "paris = timezone(timedelta(hours=1))\n"
                 "contact.communications.append(Communication(Name('a'), 'b', datetime(2026, 1, 1, 10, tzinfo=paris),\n"
                 "    end_date=datetime(2026, 1, 1, 12)))\n"
                 "contact.current_stage = Name('b')\nreturn contact")
    result = s.data_load(ann())
    comm = result.communications[0]
    assert (comm.name, comm.start_date, comm.end_date) == ("a", datetime(2026, 1, 1, 9), datetime(2026, 1, 1, 12))
    assert result.current_stage == "b"
