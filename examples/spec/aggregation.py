# The specification's AGGREGATION snippet, with "# ... other settings"
# filled minimally (a three-hour window).
async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    # Mark current communication as completed
    for comm in contact.communications:
        if comm.flagged:
            comm.status.status = CommunicationStatus.COMPLETED
    # Check conversation outcome
    outcome = session_results.get("OutcomeStatus", "NO_RESPONSE")
    # Plan next action based on outcome
    if outcome == "NO_RESPONSE":
        # Schedule follow-up
        next_comm = Communication(
            name="Follow-up",
            stage_name="Second Attempt",
            start_date=datetime.now() + timedelta(days=1),
            end_date=datetime.now() + timedelta(days=1, hours=3),
        )
        contact.communications.append(next_comm)
    return contact
