"""Copies the interpreter's library out of componentize-py (trusted: the
platform's own code, built as a strategy once per toolchain).

componentize-py runs a strategy's top level while it builds the component,
with its standard library at /python and the build's Python path (`-p py`)
writable at /0. This copies the standard library with compiled .pyc files
(their paths as the guest sees them, /python/…) to /0/library/lib, and the
`tzdata` package of the toolchain's environment, when it has one, to
/0/library/site-packages: what guests read at run time.
"""

import compileall
import os
import py_compile
import shutil

OUT = "/0/library"
# Nothing a strategy can use: the test suite, GUI toolkits, pip's bootstrap.
SKIPPED = shutil.ignore_patterns("__pycache__", "test", "idlelib", "tkinter", "turtledemo", "ensurepip")

shutil.copytree("/python", OUT + "/lib", ignore=SKIPPED)
# Unchecked: the files never change, so an import reads its .pyc without
# comparing it with its source.
compileall.compile_dir(
    OUT + "/lib",
    ddir="/python",
    quiet=2,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
os.makedirs(OUT + "/site-packages")
try:
    import tzdata
except ImportError:
    pass
else:
    shutil.copytree(os.path.dirname(tzdata.__file__), OUT + "/site-packages/tzdata", ignore=SKIPPED)
