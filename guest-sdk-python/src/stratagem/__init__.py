"""Stratagem strategy SDK.

Inside the platform a strategy needs no imports: ``Contact``,
``Communication``, ``CommunicationStatus``, ``Message``, ``datetime`` and
``timedelta`` are already defined for it. Importing them from here is the
same thing, and what editors and type checkers want::

    from stratagem import Contact, Communication, CommunicationStatus, datetime, timedelta

``stratagem.testing`` runs a strategy file in plain CPython the way the
platform does, for unit tests.
"""

from datetime import date, datetime, timedelta, timezone

from . import http
from .codec import InvalidResult
from .models import (
    Campaign,
    Communication,
    CommunicationState,
    CommunicationStatus,
    Contact,
    Message,
    MessageRole,
    ResultField,
)

__all__ = [
    "Campaign",
    "Communication",
    "CommunicationState",
    "CommunicationStatus",
    "Contact",
    "InvalidResult",
    "Message",
    "MessageRole",
    "ResultField",
    "date",
    "datetime",
    "http",
    "timedelta",
    "timezone",
]
