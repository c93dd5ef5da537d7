"""Native CPython baseline: the same strategy doing the same work as in the
sandbox, in-process. The sandbox receives WIT records, builds the SDK
contact, calls run() and validates and converts the result back; this does
exactly that with stratagem._records standing in for the generated WIT
types. Prints one JSON line of per-call nanoseconds."""

import json
import logging
import sys
import time

from stratagem import Campaign, Contact, _records, _runner, _wire

path, iterations = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8") as handle:
    namespace = _runner.load({path: handle.read()}, path)
contact = Contact("CONTRACT-123", "USER-456", "John Smith", "john@example.com", "+1234567890",
                  parameters={"amount_due": "120.50", "due_date": "2026-12-01"})
wire = _wire.contact_to_wire(_records, contact, "contact")
campaign, logger = Campaign(), logging.getLogger("strategy")


def invoke():
    result = _runner.call(namespace, "data_load", _wire.contact_from_wire(wire), None, campaign, logger)
    return _wire.result_to_wire(_records, "run", result, False)


for _ in range(min(iterations, 1000)):  # warm up
    invoke()
samples = []
for _ in range(iterations):
    started = time.perf_counter_ns()
    invoke()
    samples.append(time.perf_counter_ns() - started)
print(json.dumps(samples))
