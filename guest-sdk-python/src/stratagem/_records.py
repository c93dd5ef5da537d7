"""Plain-CPython twins of the WIT records in ``wit/types.wit``.

Inside the sandbox componentize-py generates these types; outside it,
``stratagem.testing`` uses these so that the same conversion and validation
code (``stratagem._wire``) runs in a user's pytest suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import List, Optional, Union


class CommunicationStatus(Enum):
    PLANNED = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    MISSED = 3
    FAILED = 4
    CANCELLED = 5
    IN_DOUBT = 6


@dataclass
class CommunicationState:
    status: CommunicationStatus
    detail: Optional[str]
    updated_at: Optional[int]


@dataclass
class Communication:
    id: Optional[str]
    name: str
    stage_name: str
    start_date: int
    end_date: Optional[int]
    status: CommunicationState
    flagged: bool
    alternative: Optional[str]
    parameters: str


@dataclass
class Contact:
    object_id: str
    external_id: str
    name: str
    email: str
    phone: str
    parameters: str
    current_stage: Optional[str]
    internal_data: str
    results: str
    result_flag: Optional[bool]
    result_datetime: Optional[int]
    communications: List[Communication]


@dataclass
class ReturnedCommunication_Kept:
    value: int


@dataclass
class ReturnedCommunication_Changed:
    value: Communication


ReturnedCommunication = Union[ReturnedCommunication_Kept, ReturnedCommunication_Changed]


@dataclass
class ReturnedContact:
    object_id: str
    external_id: str
    name: str
    email: str
    phone: str
    parameters: str
    current_stage: Optional[str]
    internal_data: str
    results: str
    result_flag: Optional[bool]
    result_datetime: Optional[int]
    communications: List[ReturnedCommunication]


class MessageRole(Enum):
    AGENT = 0
    CONTACT = 1


@dataclass
class Message:
    role: MessageRole
    content: str
    sent_at: int
    communication_id: Optional[str]


@dataclass
class ResultField:
    code: str
    name: str
    description: str


@dataclass
class Campaign:
    id: str
    name: str
    result_fields: List[ResultField]
