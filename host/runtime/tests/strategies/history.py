"""A strategy that returns a contact's history the ways a strategy can:
untouched, changed in place, taken from the stored contact (DATA_LOAD's
`existing_contact`) and kept in a global from an earlier call. The
runtime suite checks the host ends up with exactly what it returned."""

from stratagem import CommunicationStatus, Contact

stashed = []


async def run(contact, argument, logger, **kwargs):
    if isinstance(argument, Contact):  # DATA_LOAD with a stored contact
        contact.communications = argument.communications + contact.communications
        return contact
    contact.communications[1].status.status = CommunicationStatus.COMPLETED
    if stashed:
        contact.communications[2] = stashed[0]
    else:
        stashed.append(contact.communications[0])
    return contact
