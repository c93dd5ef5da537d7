"""AGGREGATION that falls back to another channel when a send fails.

A send the platform could not make — the provider refused it, a template
placeholder the contact lacks, no reachable integration — ends its session
with `OutcomeStatus: "FAILED"` and the reason in `FailureDetail`; the
communication itself is FAILED, whatever this strategy sets. Here the
reason is kept in the contact's results and the contact is tried again on
the fallback stage.
"""

from stratagem import Communication, CommunicationStatus, Contact, datetime, timedelta

FALLBACK_STAGE = "2. Retry"


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    results = session_results or {}
    if results.get("OutcomeStatus") == "FAILED":
        contact.results["failure_seen"] = results.get("FailureDetail", "")
        start = datetime.now()
        contact.communications.append(
            Communication(name="Fallback", stage_name=FALLBACK_STAGE, start_date=start, end_date=start + timedelta(hours=2))
        )
        contact.current_stage = FALLBACK_STAGE
        contact.results["Outcome"] = "Fell back"
        logger.warning("%s: send failed (%s); falling back to %s", contact.object_id, contact.results["failure_seen"], FALLBACK_STAGE)
        return contact
    for comm in contact.communications:
        if comm.flagged:
            comm.status.status = CommunicationStatus.COMPLETED
    if contact.current_stage == FALLBACK_STAGE:
        contact.current_stage = "Done"
        contact.result_flag = True
        contact.results["Outcome"] = "Reached"
    else:
        start = datetime.now()
        contact.communications.append(
            Communication(name="Follow-up", stage_name=FALLBACK_STAGE, start_date=start, end_date=start + timedelta(hours=2))
        )
        contact.current_stage = FALLBACK_STAGE
    return contact
