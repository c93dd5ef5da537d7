import pytest

from stratagem import Contact, http
from stratagem.testing import load_strategy, mock_http

SOURCE = '''
async def run(contact, existing_contact, logger, **kwargs):
    reply = await http.get("https://crm.example.com/balance/" + contact.object_id, headers={"x-key": "k"})
    contact.parameters["balance"] = reply.json()["balance"]
    return contact
'''


def test_works_when_a_strategy_calls_an_api(tmp_path):
    (tmp_path / "app.py").write_text(SOURCE)
    with mock_http(lambda request: http.Response(200, {}, b'{"balance": 42}')) as requests:
        result = load_strategy(tmp_path / "app.py").data_load(Contact("C-9", "U", "Ann"))
    assert result.parameters["balance"] == 42
    assert requests == [http.Request("GET", "https://crm.example.com/balance/C-9", [("x-key", "k")], None)]


def test_errors_when_the_method_is_not_supported():
    import asyncio
    with pytest.raises(http.HttpInvalidRequest, match="method 'TRACE' is not one of"):
        asyncio.run(http.fetch("https://x.io", method="TRACE"))


AUTH_SOURCE = '''
async def run(contact, existing_contact, logger, **kwargs):
    reply = await http.get("https://crm.example.com/v1/accounts/" + contact.object_id, auth="crm")
    contact.internal_data["plan"] = reply.json()["plan"]
    return contact
'''


def test_works_when_a_test_answers_a_request_that_names_an_integration(tmp_path):
    (tmp_path / "app.py").write_text(AUTH_SOURCE)
    with mock_http(lambda request: http.Response(200, {}, b'{"plan": "gold"}')) as requests:
        result = load_strategy(tmp_path / "app.py").data_load(Contact("C-9", "U", "Ann"))
    assert result.internal_data["plan"] == "gold"
    assert requests == [http.Request("GET", "https://crm.example.com/v1/accounts/C-9", [], None, "crm")]


def test_errors_when_an_integrations_credential_is_asked_for_outside_the_platform():
    import asyncio
    with pytest.raises(http.HttpDenied, match=r"auth='crm': integration credentials are added by the platform"):
        asyncio.run(http.get("https://crm.example.com/v1/accounts/1", auth="crm"))
    with pytest.raises(http.HttpInvalidRequest, match="auth must name an integration, got ''"):
        asyncio.run(http.get("https://crm.example.com/v1/accounts/1", auth=""))
