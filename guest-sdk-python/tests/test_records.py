"""`stratagem._records` is the plain-CPython twin of `wit/types.wit`: the
same records with the same fields in the same order and types, the same
enums with the same cases, and a class per variant case, named as
componentize-py names it, holding its payload as `value`. A field added to
the contract but not here would
pass `stratagem.testing` and fail on the platform, so this test reads the
WIT itself and compares."""

import dataclasses
import enum
import importlib.util
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIT = ROOT / "wit" / "types.wit"


def load_records():
    """This tree's `_records.py`, whichever checkout the installed package points at."""
    spec = importlib.util.spec_from_file_location("_records_under_test", ROOT / "guest-sdk-python" / "src" / "stratagem" / "_records.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


_records = load_records()

# Built only inside the sandbox, from componentize-py's own bindings, to
# report a failure (`_guest.py`); `stratagem.testing` never converts them.
SANDBOX_ONLY_VARIANTS = {"strategy-error"}


def tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    return re.findall(r"[A-Za-z_][A-Za-z0-9_-]*|[{}()<>,:;=@.]|\d+", text)


class Parser:
    """The subset of WIT `types.wit` uses: type aliases, records, enums,
    variants, and the option/list/tuple/result type constructors."""

    def __init__(self, text: str):
        self.tokens = tokens(text)
        self.at = 0

    def next(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, token: str) -> None:
        got = self.next()
        assert got == token, f"expected {token!r}, got {got!r} at token {self.at}"

    def type(self):
        name = self.next()
        if name in ("option", "list", "tuple", "result"):
            self.expect("<")
            arguments = [self.type()]
            while self.tokens[self.at] == ",":
                self.next()
                arguments.append(self.type())
            self.expect(">")
            return (name, *arguments)
        return name

    def interface(self) -> dict[str, tuple]:
        """`interface types { ... }`, as name -> (kind, body)."""
        while self.next() != "interface" or self.tokens[self.at] != "types":
            pass
        self.next()
        self.expect("{")
        items: dict[str, tuple] = {}
        while (kind := self.next()) != "}":
            name = self.next()
            if kind == "type":
                self.expect("=")
                items[name] = ("alias", self.type())
                self.expect(";")
                continue
            self.expect("{")
            body: list = []
            while self.tokens[self.at] != "}":
                case = self.next()
                if kind == "record":
                    self.expect(":")
                    body.append((case, self.type()))
                elif kind == "variant" and self.tokens[self.at] == "(":
                    self.next()
                    body.append((case, self.type()))
                    self.expect(")")
                else:
                    assert kind in ("enum", "variant", "flags"), f"{kind} {name} is not read by this test"
                    body.append((case, None))
                if self.tokens[self.at] == ",":
                    self.next()
            self.expect("}")
            items[name] = (kind, body)
        return items


def wit_items() -> dict[str, tuple]:
    return Parser(WIT.read_text()).interface()


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def referenced(wit_type) -> set[str]:
    if isinstance(wit_type, tuple):
        return set().union(*(referenced(argument) for argument in wit_type[1:]))
    return {wit_type} if wit_type else set()


def mirrored(items: dict[str, tuple]) -> set[str]:
    """The records, enums and variants the SDK converts: all but those
    only a sandbox-only variant reaches."""

    def reach(roots: set[str]) -> set[str]:
        seen: set[str] = set()
        while roots:
            name = roots.pop()
            if name in seen or name not in items:
                continue
            seen.add(name)
            kind, body = items[name]
            roots |= referenced(body) if kind == "alias" else set().union(*(referenced(t) for _, t in body))
        return seen

    converted = {name for name, (kind, _) in items.items() if kind in ("record", "enum", "variant")}
    others = converted - SANDBOX_ONLY_VARIANTS
    only_sandbox = reach(set(SANDBOX_ONLY_VARIANTS)) - reach(others - reach(set(SANDBOX_ONLY_VARIANTS)))
    return converted - only_sandbox


def case_class(variant: str, case: str) -> str:
    """componentize-py's class for a variant's case, e.g. `ReturnedCommunication_Kept`."""
    return f"{pascal(variant)}_{pascal(case)}"


def twin_names(items: dict[str, tuple], name: str) -> set[str]:
    kind, body = items[name]
    return {case_class(name, case) for case, _ in body} if kind == "variant" else {pascal(name)}


def python_type(items: dict[str, tuple], wit_type):
    """The annotation `_records.py` must give a field of this WIT type."""
    if isinstance(wit_type, tuple):
        constructor, *arguments = wit_type
        if constructor == "option":
            return typing.Optional[python_type(items, arguments[0])]
        if constructor == "list":
            return typing.List[python_type(items, arguments[0])]
        raise AssertionError(f"{constructor}<…> has no Python twin in this test yet")
    primitive = {"string": str, "bool": bool, "char": str, "f32": float, "f64": float}
    if wit_type in primitive:
        return primitive[wit_type]
    if re.fullmatch(r"[su](8|16|32|64)", wit_type):
        return int
    kind, body = items[wit_type]
    if kind == "alias":
        return python_type(items, body)
    if kind == "variant":
        return typing.Union[tuple(getattr(_records, case_class(wit_type, case)) for case, _ in body)]
    return getattr(_records, pascal(wit_type))


def differences(items: dict[str, tuple]) -> list[str]:
    found = []
    expected_names = set().union(*(twin_names(items, name) for name in mirrored(items)))
    own = {
        name
        for name, value in vars(_records).items()
        if isinstance(value, type) and value.__module__ == _records.__name__
    }
    for name in sorted(expected_names - own):
        found.append(f"{name} is in wit/types.wit but not in _records.py")
    for name in sorted(own - expected_names):
        found.append(f"{name} is in _records.py but not a record, enum or variant case of wit/types.wit")
    hints = {}
    for wit_name in sorted(mirrored(items)):
        kind, body = items[wit_name]
        if kind == "variant":
            for case, payload in body:
                twin = getattr(_records, case_class(wit_name, case), None)
                if twin is None:
                    continue
                assert dataclasses.is_dataclass(twin), f"{twin.__name__} is a dataclass"
                expected = [] if payload is None else [("value", python_type(items, payload))]
                hints = typing.get_type_hints(twin)
                actual = [(field.name, hints[field.name]) for field in dataclasses.fields(twin)]
                if actual != expected:
                    found.append(f"variant case {twin.__name__}: {actual} != wit {expected}")
            continue
        twin = getattr(_records, pascal(wit_name), None)
        if twin is None:
            continue
        if kind == "enum":
            assert issubclass(twin, enum.Enum), f"{twin.__name__} is an Enum"
            expected = [(case.replace("-", "_").upper(), index) for index, (case, _) in enumerate(body)]
            actual = [(member.name, member.value) for member in twin]
            if actual != expected:
                found.append(f"enum {twin.__name__}: {actual} != wit {expected}")
            continue
        assert dataclasses.is_dataclass(twin), f"{twin.__name__} is a dataclass"
        hints = typing.get_type_hints(twin)
        expected = [(field.replace("-", "_"), python_type(items, wit_type)) for field, wit_type in body]
        actual = [(field.name, hints[field.name]) for field in dataclasses.fields(twin)]
        if actual != expected:
            found.append(f"record {twin.__name__}: {actual} != wit {expected}")
    return found


def test_works_when_records_py_is_types_wit():
    assert differences(wit_items()) == []


def test_works_when_the_parser_reads_every_record_and_enum():
    items = wit_items()
    kinds = {name: kind for name, (kind, _) in items.items()}
    assert kinds["contact"] == "record" and kinds["communication-status"] == "enum"
    assert kinds["strategy-error"] == "variant" and kinds["json"] == "alias"
    assert dict(items["contact"][1])["communications"] == ("list", "communication")
    assert "frame" not in mirrored(items) and "python-exception" not in mirrored(items)
    assert {"contact", "communication", "message", "campaign", "message-role"} <= mirrored(items)
    assert kinds["instant"] == "alias" and python_type(items, "instant") is int


def test_works_when_a_changed_contract_is_caught():
    items = wit_items()
    kind, body = items["contact"]
    items["contact"] = (kind, body + [("nickname", ("option", "string"))])
    kind, body = items["message-role"]
    items["message-role"] = (kind, body[:1])
    items["greeting"] = ("record", [("text", "string")])
    found = differences(items)
    assert any(line.startswith("record Contact:") for line in found), found
    assert any(line.startswith("enum MessageRole:") for line in found), found
    assert "Greeting is in wit/types.wit but not in _records.py" in found, found
