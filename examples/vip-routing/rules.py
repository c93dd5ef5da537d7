from datetime import datetime, timedelta

VIP_THRESHOLD = 10_000


def first_stage(contact) -> str:
    amount = float(contact.parameters.get("amount_due", 0) or 0)
    return "1. Personal call" if amount >= VIP_THRESHOLD else "1. Email"


def window_for(stage: str, now: datetime) -> tuple[datetime, datetime]:
    hours = 2 if stage == "1. Personal call" else 24
    return now, now + timedelta(hours=hours)
