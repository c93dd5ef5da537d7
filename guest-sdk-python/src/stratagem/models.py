"""The campaign entities a strategy reads and returns.

Attribute names follow the product specification, so its snippets run as
written: ``contact.communications``, ``contact.current_stage``,
``contact.internal_data``, ``comm.flagged``, ``comm.status.status``,
``message.content``.

Datetimes are naive and mean UTC, like ``datetime.now()`` inside the
platform; an aware datetime is converted to UTC when it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Optional


class CommunicationStatus(str, Enum):
    """Lifecycle of a planned communication."""

    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    #: Its window passed before it could start; it is never sent later.
    MISSED = "MISSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: Its send may have reached the contact and nobody knows whether it
    #: did: the channel takes no idempotency key (SMTP, SIP) and the send's
    #: outcome was lost (a node died mid-send, or the server stopped
    #: answering after it had the message). The platform never sends it
    #: again and keeps this status whatever the strategy returns; the
    #: session's results are ``{"OutcomeStatus": "IN_DOUBT",
    #: "InDoubtDetail": ...}``. To try once more, plan a new communication
    #: (the contact may then get the message twice).
    IN_DOUBT = "IN_DOUBT"


@dataclass
class CommunicationState:
    """``comm.status``: the status and why it was set."""

    status: CommunicationStatus = CommunicationStatus.PLANNED
    detail: Optional[str] = None
    updated_at: Optional[datetime] = None


@dataclass
class Communication:
    """One planned or past attempt to reach the contact.

    The platform starts it only between ``start_date`` and ``end_date`` (the
    campaign's default window when ``end_date`` is None); otherwise it is
    marked MISSED and never sent later.
    """

    name: str
    stage_name: str
    start_date: datetime
    end_date: Optional[datetime] = None
    status: CommunicationState = field(default_factory=CommunicationState)
    #: Set by the platform on the communication whose session just ended.
    flagged: bool = False
    #: The A/B alternative label the platform chose, if any.
    alternative: Optional[str] = None
    #: Settings for this one communication, over its stage's: any of
    #: ``start_phrase``, ``start_state``, ``template_name``, ``project_id``,
    #: ``version``, ``email_subject`` and ``email_template`` that the stage's
    #: channel takes replaces the stage's value (placeholders such as
    #: ``{{name}}`` are filled as in the stage), and ``template_variables``
    #: (a dict) gives a WhatsApp or MessageBird template's variables by name.
    #: The integration and agent channel stay the stage's.
    parameters: dict[str, Any] = field(default_factory=dict)
    #: Assigned by the platform; None for a communication planned just now.
    id: Optional[str] = None


@dataclass
class Contact:
    """A campaign subject (``object_id``) and the person to reach."""

    object_id: str
    external_id: str
    name: str
    email: str = ""
    phone: str = ""
    #: Campaign parameters: every extra column of the import file.
    parameters: dict[str, Any] = field(default_factory=dict)
    current_stage: Optional[str] = None
    #: The strategy's own data, kept between invocations.
    internal_data: dict[str, Any] = field(default_factory=dict)
    #: Results collected so far, keyed by result code. ``results["Outcome"]``
    #: is the contact's outcome in the Contacts table; without it the table
    #: shows the ``OutcomeStatus`` of the contact's latest ended session.
    results: dict[str, Any] = field(default_factory=dict)
    #: ResultFlag: True achieved, False not achieved, None undetermined.
    result_flag: Optional[bool] = None
    #: ResultDatetime: maintained by the platform when result_flag changes.
    result_datetime: Optional[datetime] = None
    communications: list[Communication] = field(default_factory=list)


class MessageRole(str, Enum):
    AGENT = "AGENT"
    CONTACT = "CONTACT"


@dataclass
class Message:
    """One message of a conversation."""

    content: str
    role: MessageRole = MessageRole.AGENT
    sent_at: Optional[datetime] = None
    communication_id: Optional[str] = None


@dataclass
class ResultField:
    """A custom campaign result field (Settings > Campaign Results)."""

    code: str
    name: str
    description: str = ""


@dataclass
class Campaign:
    """The campaign a hook runs for, passed as the ``campaign`` keyword."""

    id: str = ""
    name: str = ""
    result_fields: list[ResultField] = field(default_factory=list)
