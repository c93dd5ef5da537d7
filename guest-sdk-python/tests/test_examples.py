"""The examples of examples/ run in plain CPython through stratagem.testing."""

from stratagem import Communication, CommunicationStatus, Contact, Message, datetime, timedelta
from stratagem.testing import load_strategy


def contact(**overrides) -> Contact:
    fields = dict(object_id="CONTRACT-123", external_id="USER-456", name="John Smith",
                  email="john@example.com", phone="+1234567890", parameters={"amount_due": "120.50"})
    fields.update(overrides)
    return Contact(**fields)


def in_session() -> Contact:
    c = contact(current_stage="1. Email reminder", internal_data={"attempts": 1})
    c.communications.append(Communication("Payment reminder email", "1. Email reminder",
                                          datetime(2026, 11, 27, 9), flagged=True,
                                          status=None or CommunicationStatus.IN_PROGRESS))
    return c


def test_works_when_spec_data_load_plans_first_contact(examples):
    result = load_strategy(examples / "spec/data_load.py").data_load(contact())
    assert result.current_stage == "First Contact"
    [comm] = result.communications
    assert comm.name == "Initial Message" and comm.stage_name == "First Contact"
    assert comm.status.status is CommunicationStatus.PLANNED
    assert timedelta(minutes=59) < comm.start_date - datetime.now() <= timedelta(hours=1)


def test_works_when_spec_aggregation_schedules_follow_up(examples):
    result = load_strategy(examples / "spec/aggregation.py").aggregation(
        in_session(), {"OutcomeStatus": "NO_RESPONSE"})
    first, follow_up = result.communications
    assert first.status.status is CommunicationStatus.COMPLETED
    assert follow_up.name == "Follow-up" and follow_up.stage_name == "Second Attempt"


def test_works_when_spec_contact_answer_detects_promise(examples):
    strategy = load_strategy(examples / "spec/contact_answer.py")
    result = strategy.contact_answer(contact(), Message("OK, I promise to pay tomorrow"))
    assert result.current_stage == "Payment Promised"
    assert isinstance(result.internal_data["last_message_time"], datetime)


def test_works_when_debt_collection_runs_its_workflow(examples):
    folder = examples / "debt-collection"
    loaded = load_strategy(folder / "data_load.py").data_load(contact())
    assert loaded.current_stage == "1. Email reminder"
    assert loaded.communications[0].start_date.hour == 9

    aggregate = load_strategy(folder / "aggregation.py")
    after_silence = aggregate.aggregation(in_session(), {"OutcomeStatus": "NO_RESPONSE"})
    assert after_silence.current_stage == "2. WhatsApp follow-up"
    assert after_silence.internal_data["attempts"] == 2

    promised = aggregate.aggregation(in_session(), {"OutcomeStatus": "PROMISE_TO_PAY", "PromiseDate": "2026-12-05"})
    assert promised.current_stage == "3. Payment reminder"
    assert promised.communications[-1].start_date == datetime(2026, 12, 5, 9)
    assert str(promised.results["promise_date"]) == "2026-12-05"

    paid = aggregate.aggregation(in_session(), {"OutcomeStatus": "PAID"})
    assert paid.result_flag is True and paid.current_stage == "Paid"

    answer = load_strategy(folder / "contact_answer.py")
    assert answer.contact_answer(contact(), Message("How can I help?")) is None
    noted = answer.contact_answer(contact(), Message("Noted: you will pay on Friday."))
    assert noted.current_stage == "Payment Promised"


def test_works_when_a_strategy_is_a_small_package(tmp_path):
    (tmp_path / "main.py").write_text(
        "from rules import stage_for\n"
        "async def run(contact, existing_contact, logger, **kwargs):\n"
        "    contact.current_stage = stage_for(contact)\n"
        "    return contact\n")
    (tmp_path / "rules.py").write_text(
        "def stage_for(contact):\n    return 'VIP' if contact.parameters.get('vip') else 'Standard'\n")
    result = load_strategy(tmp_path).data_load(contact(parameters={"vip": True}))
    assert result.current_stage == "VIP"


def test_works_when_failures_falls_back_after_a_failed_send(examples):
    aggregate = load_strategy(examples / "failures/aggregation.py")
    failed = contact(current_stage="1. First contact")
    failed.communications.append(Communication("First contact", "1. First contact", datetime(2026, 11, 27, 9), flagged=True,
                                               status=CommunicationStatus.FAILED))
    result = aggregate.aggregation(failed, {"OutcomeStatus": "FAILED", "FailureDetail": "Infobip: 400 Bad Request: Invalid destination"})
    first, fallback = result.communications
    assert first.status.status is CommunicationStatus.FAILED
    assert fallback.stage_name == "2. Retry" and result.current_stage == "2. Retry"
    assert result.results["failure_seen"] == "Infobip: 400 Bad Request: Invalid destination"
    assert result.results["Outcome"] == "Fell back"

    delivered = aggregate.aggregation(in_session(), {"OutcomeStatus": "NO_RESPONSE"})
    assert delivered.communications[0].status.status is CommunicationStatus.COMPLETED
    assert delivered.communications[-1].name == "Follow-up"


def test_works_when_local_hours_plans_inside_the_contacts_calling_hours(examples):
    from zoneinfo import ZoneInfo

    strategy = load_strategy(examples / "local-hours/data_load.py")
    for name in ("America/Chicago", "Asia/Tokyo", "Pacific/Auckland"):
        result = strategy.data_load(contact(parameters={"timezone": name}))
        [comm] = result.communications
        zone = ZoneInfo(name)
        start, end = comm.start_date.astimezone(zone), comm.end_date.astimezone(zone)
        assert 8 <= start.hour < 21 and (end.hour, end.minute) == (21, 0) and start.date() == end.date()
        assert result.internal_data["timezone"] == name
