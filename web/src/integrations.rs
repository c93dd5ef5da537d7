//! Integrations section: a tenant's provider accounts (SMTP server,
//! Telegram bot, Twilio account, LLM endpoint, …). Settings are shown and
//! edited; secrets are write-only: the API names the ones that are set and
//! never sends a value, so the form only says "set" and offers to replace.
//! The API validates; the table below only decides which inputs to show.

use leptos::prelude::*;
use serde_json::{json, Map, Value};

use crate::api::{self, Problem};
use crate::util::{field_errors, items, show_problem, text};

#[derive(Clone, Copy, PartialEq)]
enum Input {
    Text,
    Port,
    Url,
    Email,
    OneOf(&'static [&'static str]),
    /// A secret too long for one line (a service-account JSON).
    Long,
}

/// (name, required, input).
type Field = (&'static str, bool, Input);

/// (kind, label, settings, secrets).
type KindRow = (&'static str, &'static str, &'static [Field], &'static [Field]);

/// Mirrors `IntegrationKind::settings()` and `secrets()` in
/// host/domain/src/integration.rs.
const KINDS: [KindRow; 9] = [
    ("SMTP", "SMTP (email)", &[("host", true, Input::Text), ("port", true, Input::Port), ("from_address", true, Input::Email), ("username", false, Input::Text), ("tls", false, Input::OneOf(&["starttls", "tls", "none"]))], &[("password", false, Input::Text)]),
    ("TELEGRAM", "Telegram", &[("bot_username", false, Input::Text), ("api_base_url", false, Input::Url)], &[("bot_token", true, Input::Text), ("webhook_secret", false, Input::Text)]),
    ("WHATSAPP_META", "WhatsApp (Meta)", &[("phone_number_id", true, Input::Text), ("business_account_id", false, Input::Text), ("template_language", false, Input::Text), ("api_base_url", false, Input::Url)], &[("access_token", true, Input::Text), ("app_secret", true, Input::Text), ("verify_token", false, Input::Text)]),
    ("MESSAGEBIRD", "MessageBird", &[("workspace_id", true, Input::Text), ("channel_id", true, Input::Text), ("template_locale", false, Input::Text), ("api_base_url", false, Input::Url)], &[("access_key", true, Input::Text), ("signing_key", false, Input::Text)]),
    ("INFOBIP", "Infobip", &[("api_base_url", true, Input::Url), ("sender", true, Input::Text), ("channel", false, Input::OneOf(&["SMS", "WHATSAPP"]))], &[("api_key", true, Input::Text), ("webhook_secret", false, Input::Text)]),
    ("TWILIO", "Twilio", &[("account_sid", true, Input::Text), ("from_number", true, Input::Text), ("api_base_url", false, Input::Url)], &[("auth_token", true, Input::Text)]),
    ("SIP", "SIP", &[("api_base_url", true, Input::Url), ("caller_id", true, Input::Text), ("trunk", false, Input::Text)], &[("api_key", true, Input::Text)]),
    ("FCM", "Firebase Cloud Messaging (push)", &[("project_id", true, Input::Text), ("api_base_url", false, Input::Url)], &[("service_account_json", true, Input::Long)]),
    ("LLM", "LLM (OpenAI-compatible)", &[("api_base_url", true, Input::Url), ("default_model", false, Input::Text)], &[("api_key", false, Input::Text)]),
];

fn kind(value: &str) -> KindRow {
    KINDS.iter().copied().find(|k| k.0 == value).unwrap_or(KINDS[0])
}

pub fn kind_label(value: &str) -> String {
    KINDS.iter().find(|k| k.0 == value).map(|k| k.1.to_owned()).unwrap_or_else(|| value.to_owned())
}

fn field_label(name: &str) -> String {
    match name {
        "api_base_url" => "API base URL".into(),
        "api_key" => "API key".into(),
        "tls" => "TLS".into(),
        "account_sid" => "Account SID".into(),
        "service_account_json" => "Service account JSON".into(),
        "phone_number_id" => "Phone number ID".into(),
        "business_account_id" => "Business account ID".into(),
        "workspace_id" => "Workspace ID".into(),
        "channel_id" => "Channel ID".into(),
        "project_id" => "Project ID".into(),
        "caller_id" => "Caller ID".into(),
        other => {
            let spaced = other.replace('_', " ");
            let mut chars = spaced.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

fn placeholder(input: Input) -> &'static str {
    match input {
        Input::Port => "587",
        Input::Url => "https://…",
        Input::Email => "name@example.com",
        _ => "",
    }
}

#[component]
pub fn Integrations() -> impl IntoView {
    let integrations = RwSignal::new(Vec::<Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let editing = RwSignal::new(None::<Value>);
    let reload = RwSignal::new(0u32);

    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get("/api/integrations").await {
                Ok(list) => {
                    integrations.set(items(&list));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    let selected = move || editing.with(|e| e.as_ref().map(|e| text(e, "id")));

    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <h3>"Integrations"</h3>
                    <button id="new-integration" class="primary" on:click=move |_| editing.set(Some(json!({"kind": "LLM", "name": "", "settings": {}, "secrets_set": []})))>"+ New"</button>
                </div>
                {show_problem(problem)}
                <ul class="items" id="integration-list">
                    {move || {
                        let list = integrations.get();
                        if list.is_empty() {
                            return view! { <li class="empty">"No integrations yet. An integration holds the account a channel or an LLM uses."</li> }.into_any();
                        }
                        list.into_iter().map(|integration| {
                            let id = text(&integration, "id");
                            let for_edit = integration.clone();
                            view! {
                                <li class:selected=move || selected().as_deref() == Some(id.as_str()) on:click=move |_| editing.set(Some(for_edit.clone()))>
                                    <span class="name">{text(&integration, "name")}</span>
                                    <span class="badge">{kind_label(&text(&integration, "kind"))}</span>
                                </li>
                            }
                        }).collect_view().into_any()
                    }}
                </ul>
            </aside>
            <section class="detail-pane">
                {move || match editing.get() {
                    Some(integration) => view! { <IntegrationForm integration
                        removed=Callback::new(move |_| { editing.set(None); reload.update(|n| *n += 1); })
                        saved=Callback::new(move |value: Value| { editing.set(Some(value)); reload.update(|n| *n += 1); })
                        cancel=Callback::new(move |_| editing.set(None))/> }.into_any(),
                    None => view! { <p class="empty">"Select an integration to edit it, or create one."</p> }.into_any(),
                }}
            </section>
        </main>
    }
}

#[component]
fn IntegrationForm(integration: Value, removed: Callback<()>, saved: Callback<Value>, cancel: Callback<()>) -> impl IntoView {
    let integration_id = text(&integration, "id");
    let is_new = integration_id.is_empty();
    let secrets_set: Vec<String> = items(&integration["secrets_set"]).iter().filter_map(|s| s.as_str().map(str::to_owned)).collect();
    let secrets_set = StoredValue::new(secrets_set);
    let saved_at = text(&integration, "updated_at");
    let draft = RwSignal::new(integration);
    // New secret values typed into this form; never filled from the API.
    let secrets = RwSignal::new(Map::<String, Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let current_kind = Memo::new(move |_| draft.with(|d| text(d, "kind")));

    let id_for_save = integration_id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let d = draft.get_untracked();
        let row = kind(&text(&d, "kind"));
        let mut settings = Map::new();
        for (name, _, input) in row.2 {
            let value = text(&d["settings"], name).trim().to_owned();
            if value.is_empty() {
                continue;
            }
            // A port is a number to the API; anything else is sent as typed, for it to reject.
            let value = match (input, value.parse::<u64>()) {
                (Input::Port, Ok(port)) => json!(port),
                _ => json!(value),
            };
            settings.insert((*name).to_owned(), value);
        }
        let secrets: Map<String, Value> = secrets.get_untracked().into_iter().filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty())).collect();
        let body = if is_new {
            json!({"kind": d["kind"], "name": d["name"], "settings": settings, "secrets": secrets})
        } else {
            json!({"name": d["name"], "settings": settings, "secrets": secrets})
        };
        let id = id_for_save.clone();
        leptos::task::spawn_local(async move {
            let reply = if is_new { api::post("/api/integrations", body).await } else { api::put(&format!("/api/integrations/{id}"), body).await };
            match reply {
                Ok(value) => saved.run(value),
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let id_for_delete = integration_id.clone();
    // A 409 names the stages and agents that still use it.
    let remove = move |_| {
        let id = id_for_delete.clone();
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/integrations/{id}")).await {
                Ok(_) => removed.run(()),
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let change_kind = move |value: String| {
        draft.update(|d| {
            d["kind"] = json!(value);
            d["settings"] = json!({});
        });
        secrets.set(Map::new());
        problem.set(None);
    };

    let setting_inputs = move || {
        let (_, _, settings, _) = kind(&current_kind.get());
        settings
            .iter()
            .map(|&(name, required, input)| {
                let dom_id = format!("integration-setting-{name}");
                let label = format!("{}{}", field_label(name), if required { " *" } else { "" });
                let value = move || draft.with(|d| text(&d["settings"], name));
                let write = move |value: String| draft.update(|d| {
                    if !d["settings"].is_object() {
                        d["settings"] = json!({});
                    }
                    d["settings"][name] = json!(value);
                });
                let errors = field_errors(problem, format!("settings.{name}"));
                match input {
                    Input::OneOf(choices) => view! {
                        <label>{label}
                            <select id=dom_id prop:value=value on:change=move |ev| write(event_target_value(&ev))>
                                <option value="">"— default —"</option>
                                {choices.iter().map(|c| view! { <option value=*c>{*c}</option> }).collect_view()}
                            </select>
                            {errors}
                        </label>
                    }
                    .into_any(),
                    _ => {
                        let kind = match input {
                            Input::Port => "number",
                            Input::Url => "url",
                            Input::Email => "email",
                            _ => "text",
                        };
                        view! {
                            <label>{label}
                                <input id=dom_id type=kind placeholder=placeholder(input) prop:value=value on:input=move |ev| write(event_target_value(&ev))/>
                                {errors}
                            </label>
                        }
                        .into_any()
                    }
                }
            })
            .collect_view()
    };

    let secret_inputs = move || {
        let (_, _, _, fields) = kind(&current_kind.get());
        fields
            .iter()
            .map(|&(name, required, input)| {
                let dom_id = format!("integration-secret-{name}");
                let is_set = secrets_set.with_value(|set| set.iter().any(|s| s == name));
                let label = format!("{}{}", field_label(name), if required && !is_set { " *" } else { "" });
                let state = if is_set {
                    view! { <span class="badge status-COMPLETED secret-state">"set"</span> }.into_any()
                } else {
                    view! { <span class="badge secret-state">"not set"</span> }.into_any()
                };
                let hint = if is_set { "set — type a new value to replace it" } else { "" };
                let value = move || secrets.with(|s| s.get(name).and_then(Value::as_str).unwrap_or_default().to_owned());
                let write = move |value: String| secrets.update(|s| {
                    s.insert(name.to_owned(), json!(value));
                });
                let input_view = if input == Input::Long {
                    view! { <textarea id=dom_id rows="4" class="code" placeholder=hint autocomplete="off" spellcheck="false" prop:value=value on:input=move |ev| write(event_target_value(&ev))></textarea> }.into_any()
                } else {
                    view! { <input id=dom_id type="password" autocomplete="new-password" placeholder=hint prop:value=value on:input=move |ev| write(event_target_value(&ev))/> }.into_any()
                };
                view! {
                    <label><span class="row">{label}" "{state}</span>
                        {input_view}
                        {field_errors(problem, format!("secrets.{name}"))}
                    </label>
                }
            })
            .collect_view()
    };

    view! {
        <form class="card form" id="integration-form" on:submit=save autocomplete="off">
            <h3>{if is_new { "New integration".to_owned() } else { format!("Edit integration · {}", kind_label(&current_kind.get_untracked())) }}</h3>
            {(!is_new && !saved_at.is_empty()).then(|| view! { <p class="muted" id="integration-saved">{format!("Last saved {}", crate::util::short_time(&saved_at))}</p> })}
            <div class="row">
                <label>"Kind"
                    <select id="integration-kind" disabled=!is_new prop:value=move || current_kind.get() on:change=move |ev| change_kind(event_target_value(&ev))>
                        {KINDS.iter().map(|k| view! { <option value=k.0>{k.1}</option> }).collect_view()}
                    </select>
                    {field_errors(problem, "kind".into())}
                </label>
                <label>"Name"
                    <input id="integration-name" prop:value=move || draft.with(|d| text(d, "name")) on:input=move |ev| draft.update(|d| d["name"] = json!(event_target_value(&ev)))/>
                    {field_errors(problem, "name".into())}
                </label>
            </div>
            <fieldset>
                <legend>"Settings"</legend>
                {setting_inputs}
            </fieldset>
            <fieldset id="integration-secrets">
                <legend>"Secrets"</legend>
                <p class="muted">"Write-only: stored encrypted and never shown again. Leave a field empty to keep what is set."</p>
                {secret_inputs}
            </fieldset>
            <div class="row">
                <button type="submit" class="primary" id="save-integration">"Save"</button>
                <button type="button" on:click=move |_| cancel.run(())>"Close"</button>
                {(!is_new).then(|| view! { <button type="button" class="danger" id="delete-integration" on:click=remove>"Delete"</button> })}
            </div>
            {show_problem(problem)}
        </form>
    }
}
