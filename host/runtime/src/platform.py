"""The platform's own component (`wit/world.wit`, world `platform`): the
SDK's hooks, a loader that puts a strategy's sources into a fresh
instance, and the syntax check of an upload. Trusted: built once per
toolchain (`platform.rs`), with no strategy in it.

What is imported here is in the component's snapshot, so a strategy that
imports it at load time finds it ready instead of reading it from the
library: the SDK, and the standard modules strategies use most.
"""

import collections  # noqa: F401
import dataclasses  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import functools  # noqa: F401
import itertools  # noqa: F401
import math  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import warnings
import zoneinfo  # noqa: F401
from typing import Optional

from componentize_py_types import Err
from stratagem import _guest
from stratagem._guest import Hooks  # noqa: F401  (the `hooks` export)
from wit_world.exports import loader, syntax


class Loader:
    def load(self, entry: str, files: list[tuple[str, str]]) -> None:
        try:
            _guest.load(dict(files), entry)
        except BaseException as error:  # SystemExit too: it is the strategy's error
            report = _guest.error_report(error)
            raise Err(
                loader.LoadError(
                    type_name=report["type"],
                    message=report["message"],
                    traceback=report["traceback"],
                    file=report["file"],
                    line=report["line"],
                    column=report["column"],
                    source=report["source"],
                )
            ) from None


class Syntax:
    def check(self, file: str, source: str) -> Optional[syntax.LocatedError]:
        try:
            # A SyntaxWarning (an odd escape, say) is not the check's to show.
            with warnings.catch_warnings(action="ignore"):
                compile(source, file, "exec", dont_inherit=True)
        except SyntaxError as error:
            return syntax.LocatedError(
                type_name=type(error).__name__,
                message=error.msg,
                line=max(error.lineno or 1, 1),
                column=max(error.offset or 1, 1),
                source=(error.text or "").rstrip("\n") or None,
            )
        except Exception:
            # Too deeply nested to compile here (RecursionError,
            # MemoryError): not a verdict; loading the strategy decides.
            return None
        return None
