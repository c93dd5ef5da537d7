# examples/simulated/aggregation.py's work for a PAID session (the flagged
# communication completed, the contact closed, a log line), 100 times
# inside run() on copies of the contact. The boundary is crossed once per
# 100, so against native CPython (`BENCH_MODES=native,warm`,
# `BENCH_HOOK=aggregation`) this measures how fast the sandbox runs the
# strategy's code itself.
from stratagem import CommunicationState, CommunicationStatus


async def run(contact, session_results, logger, **kwargs):
    for _ in range(100):
        copy = Contact(
            contact.object_id,
            contact.external_id,
            contact.name,
            current_stage=contact.current_stage,
            communications=[
                Communication(comm.name, comm.stage_name, comm.start_date, flagged=comm.flagged,
                              status=CommunicationState(comm.status.status))
                for comm in contact.communications
            ],
        )
        for comm in copy.communications:
            if comm.flagged and comm.status.status != CommunicationStatus.MISSED:
                comm.status.status = CommunicationStatus.COMPLETED
        outcome = (session_results or {}).get("OutcomeStatus", "NO_RESPONSE")
        if outcome == "PAID":
            copy.current_stage = "Paid"
            copy.result_flag = True
        logger.info("%s: %s -> %s", copy.object_id, outcome, copy.current_stage)
    return contact
