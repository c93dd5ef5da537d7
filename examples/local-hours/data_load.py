"""DATA_LOAD that plans the first contact inside the contact's own calling
hours, in the contact's time zone.

Collection rules such as the US Regulation F (12 CFR 1006.6(b)(1)) presume
that calls before 8 a.m. or after 9 p.m. at the consumer's location are
inconvenient. Each row's `timezone` parameter names the contact's IANA time
zone (e.g. America/Chicago); rows without one use DEFAULT_ZONE. The first
contact is planned for the next moment between 08:00 and 21:00 local time,
and its window closes at 21:00 local that day: the engine never sends it
outside those hours (a window that passes unsent becomes MISSED, and
AGGREGATION plans the next attempt).
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIRST_STAGE = "1. First contact"
DEFAULT_ZONE = "America/New_York"
OPENS, CLOSES = 8, 21  # local hours

# Read while the component is built, so these cost nothing per call; any
# other zone is read from the platform's time zone database when used.
KNOWN_ZONES = {name: ZoneInfo(name) for name in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")}


def zone_of(contact: Contact) -> ZoneInfo:
    name = contact.parameters.get("timezone") or DEFAULT_ZONE
    if name in KNOWN_ZONES:
        return KNOWN_ZONES[name]
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} in column `timezone`: use an IANA name such as America/Chicago") from None


def calling_hours(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first stretch of calling hours at or after `now`, in `zone`."""
    local = now.astimezone(zone)
    day = local.date()
    closes = datetime(day.year, day.month, day.day, CLOSES, tzinfo=zone)
    if local >= closes:
        day += timedelta(days=1)
        closes = datetime(day.year, day.month, day.day, CLOSES, tzinfo=zone)
    opens = datetime(day.year, day.month, day.day, OPENS, tzinfo=zone)
    return max(local, opens), closes


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    if existing_contact is not None:
        existing_contact.parameters.update(contact.parameters)
        return existing_contact
    zone = zone_of(contact)
    start, end = calling_hours(datetime.now(timezone.utc), zone)
    contact.communications.append(
        Communication(name="First contact", stage_name=FIRST_STAGE, start_date=start, end_date=end)
    )
    contact.current_stage = FIRST_STAGE
    contact.internal_data["timezone"] = zone.key
    logger.info("%s: first contact from %s to %s, %s", contact.object_id, start.strftime("%H:%M"), end.strftime("%H:%M"), zone.key)
    return contact
