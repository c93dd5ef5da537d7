"""Test strategy for the build sandbox: its top-level code, which runs
while the component is built, tries to see, read and change the host.
It always fails the build, with a JSON report of what each attempt did."""

import json
import os

PROBE_FILE = "stratagem_escape_probe.pth"
# The guest's preopens (componentize-py numbers the Python path), and
# host paths an attacker would try.
PATHS = ["/", ".", "/0", "/1", "/2", "/3", "/python", "/bundled", "/world",
         "/usr/lib/python3/dist-packages", "/usr/local/lib", "/etc", "/root", "/tmp", "/proc/self", "/build"]
READS = ["/etc/passwd", "/etc/shadow", "/proc/self/environ", "/root/.bash_history", "/build/out.wasm"]


def attempt(action):
    try:
        result = action()
        return {"ok": True, "result": result if isinstance(result, (list, int)) else None}
    except BaseException as error:  # noqa: BLE001 - every failure is a finding
        return {"ok": False, "error": type(error).__name__}


REPORT = {"list": {}, "read": {}, "write": {}}
for path in PATHS:
    REPORT["list"][path] = attempt(lambda: sorted(os.listdir(path))[:20])
    REPORT["write"][path] = attempt(lambda: open(os.path.join(path, PROBE_FILE), "w").write("import os\n"))
for path in READS:
    REPORT["read"][path] = attempt(lambda: len(open(path, "rb").read()))

raise RuntimeError("REPORT " + json.dumps(REPORT, sort_keys=True))


async def run(contact, existing_contact, logger, **kwargs):
    return contact
