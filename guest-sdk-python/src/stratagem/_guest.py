"""The sandbox side of the WIT contract: the ``Hooks`` export that
componentize-py wires to ``wit/hooks.wit``.

This module is imported once, when the component is built; the strategy's
top-level code runs then too, and the resulting interpreter state is what
every invocation starts from. Errors at that point are build errors and are
reported to the builder on stderr as one ``STRATAGEM-BUILD-ERROR`` JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import stratagem_user_sources as sources
from componentize_py_types import Err
from wit_world.imports import clock as wit_clock  # noqa: F401  (keeps the import in the world)
from wit_world.imports import http as wit_http
from wit_world.imports import log as wit_log
from wit_world.imports import types as wit

from . import _runner, _wire, http
from .codec import InvalidResult, loads

_LEVELS = [
    (logging.CRITICAL, wit_log.Level.CRITICAL),
    (logging.ERROR, wit_log.Level.ERROR),
    (logging.WARNING, wit_log.Level.WARNING),
    (logging.INFO, wit_log.Level.INFO),
]

# Host imports cannot be called while the component is being built.
_serving = False


def _level(number: int) -> Any:
    for threshold, level in _LEVELS:
        if number >= threshold:
            return level
    return wit_log.Level.DEBUG


class _HostHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception as error:  # a bad format string must not kill the strategy
            message = f"{record.msg!r} (unformattable: {error})"
        if _serving:
            wit_log.emit(_level(record.levelno), record.name, message)
        else:
            sys.__stderr__.write(message + "\n")


class _LogStream:
    """``print()`` goes to the invocation's log, a line at a time."""

    def __init__(self, level: Any, name: str):
        self.level, self.name, self.pending = level, name, ""

    def write(self, text: str) -> int:
        if not _serving:
            return sys.__stderr__.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            wit_log.emit(self.level, self.name, line)
        return len(text)

    def flush(self) -> None:
        if _serving and self.pending:
            wit_log.emit(self.level, self.name, self.pending)
            self.pending = ""


_HTTP_ERRORS = {
    wit_http.HttpError_Denied: lambda v: http.HttpDenied(f"request denied: {v}"),
    wit_http.HttpError_InvalidRequest: lambda v: http.HttpInvalidRequest(v),
    wit_http.HttpError_Timeout: lambda v: http.HttpTimeout(f"no response within {v} ms"),
    wit_http.HttpError_TooLarge: lambda v: http.HttpTooLarge(f"response body larger than {v} bytes"),
    wit_http.HttpError_Transport: lambda v: http.HttpTransportError(v),
}


def _host_transport(request: http.Request) -> http.Response:
    outgoing = wit_http.Request(request.method, request.url, request.headers, request.body)
    try:
        if request.auth is None:
            reply = wit_http.fetch(outgoing)
        else:
            reply = wit_http.fetch_with_auth(outgoing, request.auth)
    except Err as error:
        raise _HTTP_ERRORS[type(error.value)](error.value.value) from None
    return http.Response(reply.status, {k.lower(): v for k, v in reply.headers}, reply.body)


def _report_build_error(error: BaseException) -> None:
    report: dict[str, Any] = {
        "type": _runner.exception_type_name(error),
        "message": str(error),
        "traceback": _runner.format_exception(error, sources.FILES),
    }
    if isinstance(error, SyntaxError):
        report.update(
            message=error.msg,
            file=error.filename,
            line=error.lineno,
            column=error.offset,
            source=(error.text or "").rstrip("\n") or None,
        )
    else:
        frames = _runner.exception_frames(error, sources.FILES)
        if frames:
            report.update(file=frames[-1][0], line=frames[-1][1], source=frames[-1][3])
    sys.__stderr__.write("STRATAGEM-BUILD-ERROR: " + json.dumps(report) + "\n")
    sys.__stderr__.flush()


http.transport = _host_transport
_stdout = sys.stdout = _LogStream(wit_log.Level.INFO, "stdout")
_stderr = sys.stderr = _LogStream(wit_log.Level.WARNING, "stderr")
logger = logging.getLogger("strategy")
logger.setLevel(logging.DEBUG)
logger.addHandler(_HostHandler())
logger.propagate = False

try:
    _namespace = _runner.load(sources.FILES, sources.ENTRY)
except BaseException as error:
    _report_build_error(error)
    raise


def _exception(error: BaseException) -> Any:
    return wit.StrategyError_Exception(
        wit.PythonException(
            type_name=_runner.exception_type_name(error),
            message=str(error),
            traceback=[
                wit.Frame(file=f, line=line, function=fn, source=src)
                for f, line, fn, src in _runner.exception_frames(error, sources.FILES)
            ],
        )
    )


def _invoke(hook: str, campaign: Any, contact: Any, argument: Any) -> Any:
    global _serving
    _serving = True
    function = _runner.HOOKS[hook][0]
    try:
        result = _runner.call(
            _namespace,
            hook,
            _wire.contact_from_wire(contact),
            argument,
            _wire.campaign_from_wire(campaign),
            logger,
        )
        return _wire.result_to_wire(wit, function, result, hook == "contact_answer")
    except _runner.MissingHook as error:
        raise Err(wit.StrategyError_MissingHook(str(error))) from None
    except InvalidResult as error:
        raise Err(wit.StrategyError_InvalidResult(str(error))) from None
    except BaseException as error:  # SystemExit too: the strategy cannot end the sandbox
        raise Err(_exception(error)) from None
    finally:
        # Our streams, even if the strategy replaced sys.stdout; checked
        # inline because most invocations print nothing.
        for stream in (_stdout, _stderr):
            if stream.pending:
                stream.flush()


class Hooks:
    def data_load(self, campaign: Any, contact: Any, existing: Any) -> Any:
        previous = None if existing is None else _wire.contact_from_wire(existing)
        return _invoke("data_load", campaign, contact, previous)

    def aggregation(self, campaign: Any, contact: Any, session_results: Any) -> Any:
        results = None if session_results is None else loads(session_results)
        return _invoke("aggregation", campaign, contact, results)

    def contact_answer(self, campaign: Any, contact: Any, message: Any) -> Any:
        return _invoke("contact_answer", campaign, contact, _wire.message_from_wire(message))
