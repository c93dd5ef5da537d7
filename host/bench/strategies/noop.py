# The floor of an invocation: cross the boundary and back, no strategy work.
async def run(contact, existing_contact, logger, **kwargs):
    return contact
