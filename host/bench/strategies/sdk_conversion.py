# The SDK's own conversion of the hook's contact, both ways, 100 times
# inside run(): SDK objects to WIT records (validated) and back, the code
# every call runs around a strategy. The boundary is crossed once per 100,
# so against native CPython (`BENCH_MODES=native,warm`, `BENCH_ITERATIONS`
# of a few hundred) this measures how fast the sandbox runs that code.
try:
    from wit_world.imports import types as records  # the sandbox's generated records
except ImportError:
    from stratagem import _records as records  # their plain-CPython twins

from stratagem import _wire


async def run(contact, argument, logger, **kwargs):
    for _ in range(100):
        _wire.contact_from_wire(_wire.contact_to_wire(records, contact, "contact"))
    return contact
