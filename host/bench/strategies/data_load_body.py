# The spec DATA_LOAD snippet's own work (examples/spec/data_load.py: a
# Communication planned an hour ahead, the stage set), 100 times inside
# run(). The boundary is crossed once per 100, so against native CPython
# (`BENCH_MODES=native,warm`) this measures how fast the sandbox runs the
# strategy's code itself.
async def run(contact, existing_contact, logger, **kwargs):
    for _ in range(100):
        planned = []
        first_comm = Communication(
            name="Initial Message",
            stage_name="First Contact",
            start_date=datetime.now() + timedelta(hours=1),
            end_date=datetime.now() + timedelta(hours=4),
        )
        planned.append(first_comm)
        contact.current_stage = "First Contact"
    return contact
