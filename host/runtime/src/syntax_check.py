"""The syntax check of `wit/syntax.wit`: the CPython that runs strategies
compiles an upload's source and runs none of it. The platform's own code,
built once per toolchain (`syntax_check.rs`)."""

import warnings
from typing import Optional

from wit_world.exports import syntax


class Syntax:
    def check(self, file: str, source: str) -> Optional[syntax.LocatedError]:
        try:
            # A SyntaxWarning (an odd escape, say) is the build's to show.
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
            # MemoryError): not a verdict; the full build decides.
            return None
        return None
