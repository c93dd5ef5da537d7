"""Outbound HTTP for strategies.

    response = await http.get("https://api.example.com/balance/123")
    balance = response.json()["balance"]

On the platform only hosts on the campaign's HTTP allowlist can be reached
(none unless set: Settings > External APIs, or the campaign's
``http_allowlist`` in the API; ``--allow-host`` for ``stratagem strategy
run``), each request has a timeout, and responses larger than
the cap are refused; each refusal raises a specific ``HttpError`` subclass.
In plain CPython (unit tests) requests go out through ``urllib`` unless a
test replaces the transport with ``stratagem.testing.mock_http``.

An API that needs a key is called without the key ever being in the
strategy: ``auth=`` names an integration of kind HTTP_API (its base URL,
header and secret value are set under Integrations), and the platform adds
its header to requests under that base URL:

    response = await http.get("https://crm.example.com/v1/accounts/42", auth="crm")
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class HttpError(Exception):
    """Base class of every failure of an outbound request."""


class HttpDenied(HttpError):
    """The host is not on the allowlist, or the URL is not http(s)."""


class HttpInvalidRequest(HttpError):
    """The method, URL or a header is malformed."""


class HttpTimeout(HttpError):
    """No complete response within the timeout."""


class HttpTooLarge(HttpError):
    """The response body exceeded the size cap."""


class HttpTransportError(HttpError):
    """Connection, TLS or protocol failure."""


@dataclass
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Optional[bytes] = None
    #: The integration whose credential the platform adds (``auth=``).
    auth: Optional[str] = None


@dataclass
class Response:
    status: int
    #: Header names are lower case.
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)


def _urllib_transport(request: Request) -> Response:
    import urllib.error
    import urllib.request

    if request.auth is not None:
        raise HttpDenied(
            f"auth={request.auth!r}: integration credentials are added by the platform, "
            "not in plain Python; answer the request with stratagem.testing.mock_http in tests"
        )

    outgoing = urllib.request.Request(
        request.url, data=request.body, method=request.method, headers=dict(request.headers)
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=10) as reply:
            return Response(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as reply:
        return Response(reply.code, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except TimeoutError as error:
        raise HttpTimeout(str(error)) from None
    except OSError as error:
        raise HttpTransportError(str(error)) from None


#: Replaced by the sandbox adapter with the host import.
transport: Callable[[Request], Response] = _urllib_transport


async def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Optional[dict[str, str]] = None,
    body: Optional[bytes | str] = None,
    json: Any = None,
    auth: Optional[str] = None,
) -> Response:
    """Send one request and return the whole response (any status code).
    ``auth`` names the HTTP_API integration whose credential the platform
    adds."""
    method = method.upper()
    if method not in METHODS:
        raise HttpInvalidRequest(f"method {method!r} is not one of {', '.join(METHODS)}")
    header_list = [(str(k), str(v)) for k, v in (headers or {}).items()]
    if json is not None:
        if body is not None:
            raise HttpInvalidRequest("pass either body= or json=, not both")
        body = _json.dumps(json).encode()
        header_list.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    if auth is not None and (not isinstance(auth, str) or not auth.strip()):
        raise HttpInvalidRequest(f"auth must name an integration, got {auth!r}")
    return transport(Request(method, url, header_list, body, auth))


async def get(url: str, **kwargs: Any) -> Response:
    return await fetch(url, method="GET", **kwargs)


async def post(url: str, **kwargs: Any) -> Response:
    return await fetch(url, method="POST", **kwargs)
