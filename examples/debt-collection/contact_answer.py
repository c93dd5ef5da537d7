"""CONTACT_ANSWER of a debt-collection campaign: after each agent message,
detect a promise to pay so the panel shows it before the session ends."""

import re

from stratagem import Contact, Message, datetime

PROMISE = re.compile(
    r"promise to pay|i(?:'ll| will) pay|pay (?:it )?(?:on|by|tomorrow|next)", re.IGNORECASE
)


async def on_agent_answer(contact: Contact, message: Message, **kwargs) -> Contact | None:
    if not PROMISE.search(message.content):
        return None  # no change
    contact.current_stage = "Payment Promised"
    contact.internal_data["promise_detected_at"] = datetime.now()
    contact.internal_data["promise_message"] = message.content[:200]
    return contact
