# The specification's CONTACT_ANSWER (intermediate analysis) snippet.
async def on_agent_answer(contact: Contact, message: Message, **kwargs) -> Contact | None:
    # Update last interaction time
    contact.internal_data["last_message_time"] = datetime.now()
    # Check message content and update stage if needed
    if "promise to pay" in message.content.lower():
        contact.current_stage = "Payment Promised"
    return contact
