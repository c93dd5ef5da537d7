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
