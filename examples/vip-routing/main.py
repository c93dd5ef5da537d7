"""DATA_LOAD strategy as a small package: the routing rules live in
rules.py beside this entry file."""

from rules import first_stage, window_for

from stratagem import Communication, Contact, datetime


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    stage = first_stage(contact)
    start, end = window_for(stage, datetime.now())
    contact.communications.append(Communication(name="Welcome", stage_name=stage, start_date=start, end_date=end))
    contact.current_stage = stage
    return contact
