//! Twilio Programmable Voice: the agent's words are spoken on a call.
//!
//! The first message places the call,
//! `POST {base}/2010-04-01/Accounts/{account_sid}/Calls.json`
//! (form: `To`, `From` = `from_number`, `Twiml`, `StatusCallback` =
//! this integration's webhook URL, `StatusCallbackEvent=completed`), with
//! basic auth `account_sid:auth_token` and the idempotency key in
//! `I-Twilio-Idempotency-Token`. The TwiML says the text inside a speech
//! `<Gather>` whose action is the webhook URL with `turn={idempotency
//! key}`, so what the contact says comes back as a message that names the
//! turn it answers.
//!
//! A call is its own conversation: the address of a call is its `CallSid`
//! (what inbound events name), and a reply to it updates the live call,
//! `POST …/Calls/{CallSid}.json` with new TwiML. While the agent thinks,
//! the webhook's answer keeps the line open with a `<Pause>`.
//!
//! Webhooks are form posts signed in `X-Twilio-Signature`: base64 of
//! HMAC-SHA1(auth token, full URL + each POST parameter's name and value,
//! sorted by name) — [`twilio_signature`]. `SpeechResult` becomes a
//! message; a final `CallStatus` (`completed`, `busy`, `no-answer`,
//! `failed`, `canceled`) a status of the call.

use base64::Engine as _;

use super::{
    answer_field, base_url, contact_phone, query_pairs, required_secret, required_setting, same, send, webhook_secret,
    Account, CallOutcome, DeliverFuture, Delivered, InboundEvent, Outbound, Provider, WebhookError,
    WebhookReply, WebhookRequest,
};

const NAME: &str = "Twilio";

pub struct Twilio;

/// Twilio's request signature: base64 HMAC-SHA1 of the URL followed by the
/// POST parameters' names and values, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    base64::engine::general_purpose::STANDARD.encode(super::hmac(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes(), data.as_bytes()))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// Says `text` and listens for the answer, which Twilio posts to the
/// webhook URL naming this turn.
fn say_and_listen(webhook_url: &str, turn: &str, text: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("turn", turn).finish();
    let action = format!("{webhook_url}?{query}");
    format!(
        "<Response><Gather input=\"speech\" speechTimeout=\"auto\" method=\"POST\" action=\"{}\"><Say>{}</Say></Gather></Response>",
        xml_escape(&action),
        xml_escape(text)
    )
}

impl Provider for Twilio {
    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let sid = required_setting(account, "account_sid")?;
            let token = required_secret(account, "auth_token")?;
            let calls = format!("{}/2010-04-01/Accounts/{sid}/Calls", base_url(account, "https://api.twilio.com"));
            let twiml = say_and_listen(outbound.webhook_url, outbound.idempotency_key, outbound.text);
            let (url, form) = match outbound.address.filter(|call| !call.trim().is_empty()) {
                Some(call) => (format!("{calls}/{call}.json"), vec![("Twiml", twiml)]),
                None => {
                    let form = vec![
                        ("To", contact_phone(outbound)?.to_owned()),
                        ("From", required_setting(account, "from_number")?.to_owned()),
                        ("Twiml", twiml),
                        ("StatusCallback", outbound.webhook_url.to_owned()),
                        ("StatusCallbackEvent", "completed".to_owned()),
                        ("StatusCallbackMethod", "POST".to_owned()),
                    ];
                    (format!("{calls}.json"), form)
                }
            };
            let request = http
                .post(url)
                .basic_auth(sid, Some(token))
                .header("I-Twilio-Idempotency-Token", outbound.idempotency_key)
                .form(&form);
            let answer = send(NAME, request).await?;
            let call = answer_field(NAME, &answer, "/sid")?;
            Ok(Delivered { provider_ref: call.clone(), address: call })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let token = webhook_secret(account, "auth_token", NAME)?;
        let params: Vec<(String, String)> = url::form_urlencoded::parse(request.body).into_owned().collect();
        let Some(signature) = request.header("X-Twilio-Signature") else {
            return Err(WebhookError::Unauthorized("Twilio webhook without the X-Twilio-Signature header".into()));
        };
        if !same(twilio_signature(token, request.url, &params).as_bytes(), signature.trim().as_bytes()) {
            return Err(WebhookError::Unauthorized(
                "Twilio webhook with a wrong X-Twilio-Signature (is STRATAGEM_PUBLIC_URL the URL Twilio calls?)".into(),
            ));
        }
        let get = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let Some(call) = get("CallSid") else {
            return Err(WebhookError::Malformed("a Twilio voice webhook has a CallSid".into()));
        };
        let mut events = Vec::new();
        if let Some(speech) = get("SpeechResult").filter(|speech| !speech.trim().is_empty()) {
            let turn = query_pairs(request.url).into_iter().find(|(name, _)| name == "turn").map(|(_, turn)| turn);
            // Without a turn (a Gather not placed by this service) the
            // words themselves tell one answer from another.
            let turn = turn.unwrap_or_else(|| hex::encode(&ring::digest::digest(&ring::digest::SHA256, speech.as_bytes()).as_ref()[..8]));
            events.push(InboundEvent::Message { address: call.to_owned(), text: speech.to_owned(), provider_message_id: format!("{call}:{turn}") });
        }
        let outcome = match get("CallStatus") {
            Some("completed") => Some(CallOutcome::Answered),
            Some("busy") => Some(CallOutcome::Busy),
            Some("no-answer") => Some(CallOutcome::NoAnswer),
            Some(status @ ("failed" | "canceled")) => Some(CallOutcome::Failed(status.to_owned())),
            _ => None,
        };
        if let Some(outcome) = outcome {
            events.push(InboundEvent::Status { provider_ref: call.to_owned(), outcome });
        }
        Ok(events)
    }

    /// Twilio reads the answer to a `<Gather>` action as the call's next
    /// TwiML: hold the line until the agent's reply replaces it.
    fn reply(&self, _accepted: usize) -> WebhookReply {
        WebhookReply { content_type: "text/xml", body: "<Response><Pause length=\"60\"/></Response>".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_signing_twilios_documented_example() {
        // From Twilio's "Webhooks security" page and its helper libraries.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &reversed), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn works_when_twiml_escapes_the_agents_words() {
        let webhook_url = crate::OutboundConfig::DEFAULT.webhook_url("int_1");
        let twiml = say_and_listen(&webhook_url, "com 1&2", "Pay <now> & \"save\"");
        assert!(twiml.contains("<Say>Pay &lt;now&gt; &amp; &quot;save&quot;</Say>"), "{twiml}");
        assert!(twiml.contains("/webhooks/int_1?turn=com+1%262\""), "{twiml}");
    }
}
