"""Loading a strategy and calling its hooks; shared by the sandbox adapter
and ``stratagem.testing`` so both behave the same way.

A strategy is one file (the entry) plus, optionally, sibling modules it
imports. The names the specification's snippets use without importing them
(``Contact``, ``Communication``, ``datetime``, ...) are placed in the entry
module's globals: the prelude.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import linecache
import sys
import traceback
from datetime import date, datetime, timedelta, timezone
from types import CoroutineType
from typing import Any, Callable, Optional

from . import http
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

PRELUDE: dict[str, Any] = {
    "Contact": Contact,
    "Communication": Communication,
    "CommunicationState": CommunicationState,
    "CommunicationStatus": CommunicationStatus,
    "Message": Message,
    "MessageRole": MessageRole,
    "Campaign": Campaign,
    "ResultField": ResultField,
    "datetime": datetime,
    "timedelta": timedelta,
    "date": date,
    "timezone": timezone,
    "http": http,
}

#: hook -> (Python function name, the signature to tell the user about)
HOOKS = {
    "data_load": ("run", "async def run(contact, existing_contact, logger, **kwargs)"),
    "aggregation": ("run", "async def run(contact, session_results, logger, **kwargs)"),
    "contact_answer": ("on_agent_answer", "async def on_agent_answer(contact, message, **kwargs)"),
}


class MissingHook(Exception):
    """The strategy does not define the function a hook needs."""


class _SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the strategy's sibling modules from memory: the sandbox has no
    filesystem, and at build time only these sources are bundled."""

    def __init__(self, files: dict[str, str]):
        self.files = files

    def find_spec(self, fullname, path=None, target=None):
        for filename in (fullname.replace(".", "/") + ".py", fullname.replace(".", "/") + "/__init__.py"):
            if filename in self.files:
                is_package = filename.endswith("/__init__.py")
                return importlib.util.spec_from_loader(
                    fullname, self, origin=filename, is_package=is_package
                )
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename = module.__spec__.origin
        module.__file__ = filename
        module.__dict__.update(PRELUDE)
        exec(compile(self.files[filename], filename, "exec"), module.__dict__)


def load(files: dict[str, str], entry: str) -> dict[str, Any]:
    """Execute the entry file and return its globals.

    Sources are registered with ``linecache`` so tracebacks show the user's
    own lines even where there is no filesystem to read them from.
    """
    for filename, source in files.items():
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if len(files) > 1:
        sys.meta_path.insert(0, _SourceFinder(files))
    namespace: dict[str, Any] = {"__name__": "strategy", "__file__": entry, **PRELUDE}
    exec(compile(files[entry], entry, "exec"), namespace)
    return namespace


def drive(awaitable: Any) -> Any:
    """Run a coroutine to completion. Strategies may await ``stratagem.http``
    calls (which complete immediately from the strategy's point of view) and
    ``asyncio.sleep(0)``; waiting on anything else cannot make progress."""
    if not isinstance(awaitable, CoroutineType):
        return awaitable
    try:
        while True:
            yielded = awaitable.send(None)
            if yielded is not None:
                awaitable.close()
                raise RuntimeError(
                    f"the strategy awaited {yielded!r}, which the platform cannot wait for; "
                    "await only stratagem.http calls"
                )
    except StopIteration as done:
        return done.value
    except RuntimeError as error:
        if error.args == ("no running event loop",):
            # asyncio.sleep(), gather() and friends need an event loop the
            # sandbox does not run; say so at the user's own line.
            error.args = ("asyncio is not available to strategies: await only stratagem.http calls",)
        raise


def call(
    namespace: dict[str, Any],
    hook: str,
    contact: Contact,
    argument: Any,
    campaign: Campaign,
    logger: Any,
) -> Any:
    """Call the hook's Python function; return what it returned."""
    name, signature = HOOKS[hook]
    function: Optional[Callable[..., Any]] = namespace.get(name)
    if not callable(function):
        raise MissingHook(f"the strategy defines no `{signature}`")
    if hook == "contact_answer":
        return drive(function(contact, argument, logger=logger, campaign=campaign))
    return drive(function(contact, argument, logger, campaign=campaign))


MAX_REPEATED_FRAMES = 3


def exception_frames(error: BaseException, files: dict[str, str]) -> list[tuple[str, int, str, Optional[str]]]:
    """(file, line, function, source) frames, innermost last.

    Frames in the strategy's own files are kept; platform frames are dropped
    unless the error arose there (then the innermost one is kept so it is
    not empty). Like CPython, a frame repeated by recursion is shown three
    times and then counted. Source lines come from the strategy's files, not
    linecache, whose lookup differs between Python versions.
    """
    frames = traceback.extract_tb(error.__traceback__, limit=None)
    own = [f for f in frames if f.filename in files] or frames[-1:]
    result: list[tuple[str, int, str, Optional[str]]] = []
    repeated = 0
    for frame in own:
        lineno = frame.lineno or 0
        key = (frame.filename, lineno, frame.name)
        if result and result[-1][:3] == key:
            repeated += 1
            if repeated >= MAX_REPEATED_FRAMES:
                continue
        elif repeated >= MAX_REPEATED_FRAMES:
            result.append(_repeat_marker(repeated))
            repeated = 0
        else:
            repeated = 0
        lines = files[frame.filename].splitlines() if frame.filename in files else []
        source = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else frame.line
        result.append((frame.filename, lineno, frame.name, source or None))
    if repeated >= MAX_REPEATED_FRAMES:
        result.append(_repeat_marker(repeated))
    return result


def _repeat_marker(repeated: int) -> tuple[str, int, str, Optional[str]]:
    more = repeated - MAX_REPEATED_FRAMES + 1
    return ("...", 0, f"[previous frame repeated {more} more times]", None)


def exception_type_name(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "strategy") else f"{module}.{kind.__qualname__}"


def format_exception(error: BaseException, files: dict[str, str]) -> str:
    lines = ["Traceback (most recent call last):"]
    for filename, line, function, source in exception_frames(error, files):
        if filename == "...":
            lines.append(f"  {function}")
            continue
        lines.append(f'  File "{filename}", line {line}, in {function}')
        if source:
            lines.append(f"    {source}")
    lines.append(f"{exception_type_name(error)}: {error}")
    return "\n".join(lines)
