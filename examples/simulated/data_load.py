"""DATA_LOAD of the simulated collections demo (runs on the SIMULATED
channel, no accounts needed).

Plans a first contact now, or at the contact's `contact_after` time if the
import file gives one, inside a two-hour window. A window that passes before
the campaign runs makes the communication MISSED; AGGREGATION then decides.
"""

from stratagem import Communication, Contact, datetime, timedelta

FIRST_STAGE = "1. First contact"
WINDOW = timedelta(hours=2)


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    if existing_contact is not None:
        existing_contact.parameters.update(contact.parameters)
        return existing_contact
    after = contact.parameters.get("contact_after")
    start = datetime.fromisoformat(after) if after else datetime.now()
    contact.communications.append(
        Communication(name="First contact", stage_name=FIRST_STAGE, start_date=start, end_date=start + WINDOW)
    )
    contact.current_stage = FIRST_STAGE
    contact.internal_data["attempts"] = 1
    return contact
