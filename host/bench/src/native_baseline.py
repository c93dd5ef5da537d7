"""Native CPython baseline: the same strategy doing the same work as in the
sandbox, in-process. The sandbox receives WIT records, builds the SDK
contact, calls run() and validates and converts the result back; this does
exactly that with stratagem._records standing in for the generated WIT
types, and a logger that formats every record as the sandbox's does.
Arguments: the strategy file, the hook (data_load or aggregation; the
inputs are runtime_bench.rs's) and, for aggregation, how many completed
communications come before the one that ended. After a warm-up it serves
runtime_bench.rs, so that native and sandboxed calls can take turns: each
line read is a number of calls to time, answered by one JSON line of
their nanoseconds."""

import json
import logging
import sys
import time
from datetime import datetime

from stratagem import Campaign, Communication, CommunicationState, CommunicationStatus, Contact, _records, _runner, _wire

path, hook, history = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, encoding="utf-8") as handle:
    namespace = _runner.load({path: handle.read()}, path)
if hook == "data_load":
    contact = Contact("CONTRACT-123", "USER-456", "John Smith", "john@example.com", "+1234567890",
                      parameters={"amount_due": "120.50", "due_date": "2026-12-01"})
    argument = None
else:
    contact = Contact("CONTRACT-123", "USER-456", "John Smith", "john@example.com", "+1234567890",
                      parameters={"amount_due": "120.50"}, current_stage="1. First contact",
                      internal_data={"attempts": 1})
    contact.communications.extend(
        Communication(id=f"comm-earlier-{n}", name="Earlier attempt", stage_name="1. First contact",
                      start_date=datetime(2026, 11, 20, 9), end_date=datetime(2026, 11, 20, 17),
                      status=CommunicationState(CommunicationStatus.COMPLETED))
        for n in range(1, history + 1)
    )
    contact.communications.append(Communication(
        id="comm-1", name="First contact", stage_name="1. First contact",
        start_date=datetime(2026, 11, 27, 9), end_date=datetime(2026, 11, 27, 17),
        status=CommunicationState(CommunicationStatus.IN_PROGRESS), flagged=True,
    ))
    argument = {"OutcomeStatus": "PAID"}
wire = _wire.contact_to_wire(_records, contact, "contact")


class _Formatting(logging.Handler):
    """The sandbox's handler formats each record and hands it to the host."""

    def emit(self, record):
        self.format(record)


campaign, logger = Campaign(), logging.getLogger("strategy")
logger.setLevel(logging.DEBUG)
logger.addHandler(_Formatting())
logger.propagate = False


def invoke():
    origin = _wire.Origin()
    result = _runner.call(namespace, hook, _wire.contact_from_wire(wire, origin), argument, campaign, logger)
    return _wire.result_to_wire(_records, "run", result, False, origin)


for _ in range(1000):  # warm up
    invoke()
for line in sys.stdin:
    samples = []
    for _ in range(int(line)):
        started = time.perf_counter_ns()
        invoke()
        samples.append(time.perf_counter_ns() - started)
    print(json.dumps(samples), flush=True)
