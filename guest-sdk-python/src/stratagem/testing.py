"""Run a strategy file in plain CPython the way the platform runs it.

    from stratagem.testing import load_strategy
    from stratagem import Contact

    strategy = load_strategy("data_load.py")
    contact = strategy.data_load(Contact("C-1", "U-1", "Ann"))
    assert contact.current_stage == "First Contact"

The strategy gets the same prelude, its result the same validation, and
the returned contact is a copy made by the same encoding the platform
stores, so a value that cannot be stored fails here too. Exceptions raised
by the strategy propagate unchanged, for pytest to show.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from . import _records, _runner, _wire, http
from .models import Campaign, Contact, Message


class Strategy:
    def __init__(self, files: dict[str, str], entry: str):
        self.files = files
        self.namespace = _runner.load(files, entry)
        self.logger = logging.getLogger("strategy")

    def _call(self, hook: str, contact: Contact, argument: Any, campaign: Optional[Campaign]) -> Any:
        # Inputs cross the boundary too: give the strategy its own copies.
        received, origin = _wire.contact_to_wire(_records, contact, "contact"), _wire.Origin()
        result = _runner.call(
            self.namespace, hook, _wire.contact_from_wire(received, origin), argument, campaign or Campaign(), self.logger
        )
        wire = _wire.result_to_wire(_records, _runner.HOOKS[hook][0], result, hook == "contact_answer", origin)
        return None if wire is None else _wire.returned_from_wire(wire, received)

    def data_load(
        self, contact: Contact, existing: Optional[Contact] = None, campaign: Optional[Campaign] = None
    ) -> Contact:
        if existing is not None:
            existing = _wire.contact_from_wire(_wire.contact_to_wire(_records, existing, "existing"))
        return self._call("data_load", contact, existing, campaign)

    def aggregation(
        self, contact: Contact, session_results: Optional[dict] = None, campaign: Optional[Campaign] = None
    ) -> Contact:
        return self._call("aggregation", contact, session_results, campaign)

    def contact_answer(
        self, contact: Contact, message: Message, campaign: Optional[Campaign] = None
    ) -> Optional[Contact]:
        return self._call("contact_answer", contact, message, campaign)


def load_strategy(path: str | Path) -> Strategy:
    """Load a strategy file, or a directory whose entry is ``main.py``."""
    path = Path(path)
    if path.is_dir():
        files = {
            p.relative_to(path).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(path.rglob("*.py"))
            if "__pycache__" not in p.parts
        }
        return Strategy(files, "main.py")
    return Strategy({path.name: path.read_text(encoding="utf-8")}, path.name)


@contextlib.contextmanager
def mock_http(handler: Callable[[http.Request], http.Response]) -> Iterator[list[http.Request]]:
    """Answer the strategy's HTTP requests with ``handler``; yields the list
    of requests made, for assertions."""
    seen: list[http.Request] = []
    previous = http.transport

    def transport(request: http.Request) -> http.Response:
        seen.append(request)
        return handler(request)

    http.transport = transport
    try:
        yield seen
    finally:
        http.transport = previous
