"""DATA_LOAD of a debt-collection campaign.

Plans a payment-reminder email for the next business morning. A re-imported
contact (same object_id) keeps its history; only its parameters (amount,
due date) are refreshed. Contacts who owe nothing are closed at once.
"""

from stratagem import Communication, Contact, datetime, timedelta

EMAIL_STAGE = "1. Email reminder"
WINDOW = timedelta(hours=8)


def next_business_morning(now: datetime) -> datetime:
    start = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    while start.weekday() >= 5:  # Saturday, Sunday
        start += timedelta(days=1)
    return start


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    if existing_contact is not None:
        existing_contact.parameters.update(contact.parameters)
        logger.info("contact %s re-imported; parameters refreshed", contact.object_id)
        return existing_contact

    amount = float(contact.parameters.get("amount_due", 0) or 0)
    if amount <= 0:
        contact.current_stage = "Nothing owed"
        contact.result_flag = True
        return contact

    start = next_business_morning(datetime.now())
    contact.communications.append(
        Communication(
            name="Payment reminder email",
            stage_name=EMAIL_STAGE,
            start_date=start,
            end_date=start + WINDOW,
            parameters={"template": "reminder", "amount_due": amount},
        )
    )
    contact.current_stage = EMAIL_STAGE
    contact.internal_data["attempts"] = 1
    logger.info("planned reminder email for %s on %s", contact.object_id, start.date())
    return contact
