"""AGGREGATION of a debt-collection campaign, run when a session ends.

- NO_RESPONSE: follow up on WhatsApp three days later (at most 3 attempts,
  then the contact is marked unreachable).
- PROMISE_TO_PAY: remember the promised date and plan a reminder email on it.
- PAID: the campaign result is achieved.
- Anything else (REFUSED, DISPUTE, ...): the result is not achieved and a
  human agent takes over.
"""

from stratagem import Communication, CommunicationStatus, Contact, datetime, timedelta

MAX_ATTEMPTS = 3


def plan(contact: Contact, name: str, stage: str, start: datetime, hours: int = 8) -> None:
    contact.communications.append(
        Communication(name=name, stage_name=stage, start_date=start, end_date=start + timedelta(hours=hours))
    )
    contact.current_stage = stage


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    for comm in contact.communications:
        if comm.flagged:
            comm.status.status = CommunicationStatus.COMPLETED

    results = session_results or {}
    outcome = results.get("OutcomeStatus", "NO_RESPONSE")
    contact.results["last_outcome"] = outcome
    now = datetime.now()

    if outcome == "NO_RESPONSE":
        attempts = contact.internal_data.get("attempts", 1)
        if attempts >= MAX_ATTEMPTS:
            contact.current_stage = "Unreachable"
            contact.result_flag = False
        else:
            contact.internal_data["attempts"] = attempts + 1
            plan(contact, "WhatsApp follow-up", "2. WhatsApp follow-up", now + timedelta(days=3))
    elif outcome == "PROMISE_TO_PAY":
        promised = results.get("PromiseDate")
        due = datetime.fromisoformat(promised) if promised else now + timedelta(days=7)
        contact.results["promise_date"] = due.date()
        plan(contact, "Promise reminder", "3. Payment reminder", due.replace(hour=9, minute=0))
    elif outcome == "PAID":
        contact.current_stage = "Paid"
        contact.result_flag = True
    else:
        contact.current_stage = "4. Human follow-up"
        contact.result_flag = False
        plan(contact, "Escalation", "4. Human follow-up", now + timedelta(hours=1), hours=48)

    logger.info("%s: outcome %s -> stage %s", contact.object_id, outcome, contact.current_stage)
    return contact
