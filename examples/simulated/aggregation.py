"""AGGREGATION of the simulated collections demo, run when a session ends.

PAID closes the contact with a positive result, REFUSED with a negative
one. NO_RESPONSE and MISSED are retried at once on the retry stage, up to
MAX_ATTEMPTS; after that the contact is unreachable. A promise to pay is
remembered and checked on the promised day.
"""

from stratagem import Communication, CommunicationStatus, Contact, datetime, timedelta

RETRY_STAGE = "2. Retry"
MAX_ATTEMPTS = 2


def plan(contact: Contact, name: str, stage: str, start: datetime) -> None:
    contact.communications.append(
        Communication(name=name, stage_name=stage, start_date=start, end_date=start + timedelta(hours=2))
    )
    contact.current_stage = stage


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    for comm in contact.communications:
        if comm.flagged and comm.status.status != CommunicationStatus.MISSED:
            comm.status.status = CommunicationStatus.COMPLETED

    outcome = (session_results or {}).get("OutcomeStatus", "NO_RESPONSE")
    if outcome == "PAID":
        contact.current_stage = "Paid"
        contact.result_flag = True
    elif outcome == "REFUSED":
        contact.current_stage = "Refused"
        contact.result_flag = False
    elif outcome == "PROMISE_TO_PAY":
        promised = datetime.fromisoformat(session_results["PromiseDate"])
        contact.results["promise_date"] = promised.date()
        plan(contact, "Promise check", RETRY_STAGE, promised)
    else:  # NO_RESPONSE, MISSED, FAILED
        attempts = contact.internal_data.get("attempts", 1)
        if attempts >= MAX_ATTEMPTS:
            contact.current_stage = "Unreachable"
            contact.result_flag = False
        else:
            contact.internal_data["attempts"] = attempts + 1
            plan(contact, "Retry", RETRY_STAGE, datetime.now())
    logger.info("%s: %s -> %s", contact.object_id, outcome, contact.current_stage)
    return contact
