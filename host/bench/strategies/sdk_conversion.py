# The SDK's own conversion of the hook's contact, both ways, 100 times
# inside run(): its record to SDK objects, and those back to the record a
# hook returns (validated), the code every call runs around a strategy. The boundary is crossed once per 100,
# so against native CPython (`BENCH_MODES=native,warm`, `BENCH_ITERATIONS`
# of a few hundred) this measures how fast the sandbox runs that code.
try:
    from wit_world.imports import types as records  # the sandbox's generated records
except ImportError:
    from stratagem import _records as records  # their plain-CPython twins

from stratagem import _wire


async def run(contact, argument, logger, **kwargs):
    received = _wire.contact_to_wire(records, contact, "contact")
    for _ in range(100):
        origin = _wire.Origin()
        _wire.result_to_wire(records, "run", _wire.contact_from_wire(received, origin), False, origin)
    return contact
