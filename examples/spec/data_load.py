# The specification's DATA_LOAD snippet, with "# ... other settings" filled
# minimally (a three-hour window). Runs unmodified: no imports needed.
async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    # Check if contact already exists
    if existing_contact is not None:
        # Handle existing contact logic
        pass
    # Plan first communication
    first_comm = Communication(
        name="Initial Message",
        stage_name="First Contact",
        start_date=datetime.now() + timedelta(hours=1),
        end_date=datetime.now() + timedelta(hours=4),
    )
    contact.communications.append(first_comm)
    # Set initial stage
    contact.current_stage = "First Contact"
    return contact
