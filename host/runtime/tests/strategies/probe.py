"""Test strategy for the sandbox, limit and isolation suites:
contact.parameters["case"] selects what it does."""

import os
import sys

CALLS = 0  # module-level state: what instance reuse does and does not share


async def run(contact, existing_contact, logger, **kwargs):
    global CALLS
    CALLS += 1
    case = contact.parameters.get("case", "ok")
    contact.internal_data["calls"] = CALLS

    if case == "loop":
        while True:
            pass
    elif case == "alloc":
        size = contact.parameters["mib"] << 20
        chunks = []
        while sum(len(c) for c in chunks) < size:
            chunks.append(bytearray(4 << 20))
        contact.internal_data["allocated_mib"] = sum(len(c) for c in chunks) >> 20
    elif case == "output":
        contact.internal_data["blob"] = "x" * contact.parameters["bytes"]
    elif case == "http":
        try:
            reply = await http.get(contact.parameters["url"], auth=contact.parameters.get("auth"), headers=contact.parameters.get("headers"))
            contact.internal_data["status"] = reply.status
            contact.internal_data["body"] = reply.text()
        except http.HttpError as error:
            contact.internal_data["error"] = f"{type(error).__name__}: {error}"
    elif case == "raise":
        amount = -5
        raise ValueError(f"amount_due must be positive, got {amount}")
    elif case == "wrong_type":
        return "done"
    elif case == "open_file":
        with open("/etc/passwd") as handle:
            contact.internal_data["leak"] = handle.read()
    elif case == "list_dir":
        contact.internal_data["leak"] = os.listdir("/")
    elif case == "environ":
        contact.internal_data["environ"] = dict(os.environ)
    elif case == "socket":
        import socket

        socket.create_connection(("127.0.0.1", 5432), timeout=1)
    elif case == "subprocess":
        import subprocess

        subprocess.run(["cat", "/etc/passwd"], check=True)
    elif case == "stdlib":
        # Imported here, at run time, not while the component was built.
        import importlib
        import statistics
        from decimal import Decimal
        from zoneinfo import ZoneInfo

        names = contact.parameters["modules"]
        for name in names:
            importlib.import_module(name)
        contact.internal_data["imported"] = names
        contact.internal_data["mean"] = statistics.mean([1, 2, 3, 4])
        contact.internal_data["total"] = str(Decimal("0.10") + Decimal("0.20"))
        noon = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
        contact.internal_data["new_york"] = noon.astimezone(ZoneInfo("America/New_York")).isoformat()
    elif case == "write_library":
        with open("/python/json/__init__.py", "a") as handle:
            handle.write("hijacked = True\n")
    elif case == "escape_library":
        with open("/python/../../etc/passwd") as handle:
            contact.internal_data["leak"] = handle.read()
    elif case == "ctypes":
        import ctypes  # noqa: F401
    elif case == "import_missing":
        import numpy  # noqa: F401
    elif case == "exit":
        sys.exit(3)
    elif case == "recursion":
        def deeper(n):
            return deeper(n + 1) + 1

        deeper(0)
    elif case == "log":
        logger.info("hello %s", contact.name)
        print("printed line")
        logger.warning("careful")
    elif case == "log_flood":
        for index in range(contact.parameters["lines"]):
            logger.info("line %d %s", index, "x" * 100)
    elif case == "now":
        contact.internal_data["now"] = datetime.now()
    elif case == "raw_socket":
        import _socket  # built into the guest's CPython, unlike `socket`

        connection = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        connection.connect(("127.0.0.1", 5432))
    elif case == "plan":
        # The import's round in the communication too, so a reader can tell
        # a contact's fields and its communications from two rounds apart.
        start = datetime(2030, 1, 1)
        contact.communications.append(
            Communication(name=f"round {contact.parameters['round']}", stage_name="First", start_date=start, end_date=start + timedelta(hours=1))
        )
    elif case == "alloc_once":
        contact.internal_data["allocated_mib"] = len(bytearray(contact.parameters["mib"] << 20)) >> 20
    return contact
