//! Integrations section (`/integrations`, `/integrations/new`,
//! `/integrations/:integration_id`): a tenant's provider accounts (SMTP
//! server, Telegram bot, Twilio account, LLM endpoint, …). Settings are shown and
//! edited; secrets are write-only: the API names the ones that are set and
//! never sends a value, so the form only says "set" and offers to replace.
//! The API validates; the kinds' settings and secrets shared with it
//! (`stratagem_types::integration`) only decide which inputs to show.

use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde_json::Value;
use stratagem_types::integration::{FieldKind, Integration, IntegrationKind, IntegrationUpdate, NewIntegration};
use stratagem_types::JsonMap;

use crate::api::{self, Problem};
use crate::item_list::{Item, ItemList, Items};
use crate::util::{field_errors, show_problem, ConfirmButton, ProblemView};

fn kind_label(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Smtp => "SMTP (email)",
        IntegrationKind::Telegram => "Telegram",
        IntegrationKind::WhatsappMeta => "WhatsApp (Meta)",
        IntegrationKind::MessageBird => "MessageBird",
        IntegrationKind::Infobip => "Infobip",
        IntegrationKind::Twilio => "Twilio",
        IntegrationKind::Sip => "SIP",
        IntegrationKind::Fcm => "Firebase Cloud Messaging (push)",
        IntegrationKind::Llm => "LLM (OpenAI-compatible)",
        IntegrationKind::HttpApi => "External API (for strategies' http calls)",
    }
}

/// A secret too long for one line gets a text area.
fn is_long(name: &str) -> bool {
    name == "service_account_json"
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
        "base_url" => "Base URL".into(),
        "header_value" => "Header value (e.g. Bearer sk_live_…)".into(),
        other => {
            let spaced = other.replace('_', " ");
            let mut chars = spaced.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

fn placeholder(input: FieldKind) -> &'static str {
    match input {
        FieldKind::Port => "587",
        FieldKind::Url => "https://…",
        FieldKind::Email => "name@example.com",
        FieldKind::HeaderName => "Authorization",
        _ => "",
    }
}


/// Bumped when an integration is saved or deleted.
#[derive(Clone, Copy)]
struct Reload(RwSignal<u32>);

#[component]
pub fn Integrations() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    provide_context(Reload(reload));
    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <h3>"Integrations"</h3>
                    <a id="new-integration" class="button primary" href="/integrations/new">"+ New"</a>
                </div>
                <IntegrationList reload/>
            </aside>
            <section class="detail-pane">
                <Outlet/>
            </section>
        </main>
    }
}

#[component]
pub fn NoneSelected() -> impl IntoView {
    view! { <p class="empty">"Select an integration to edit it, or create one."</p> }
}

#[component]
fn IntegrationList(reload: RwSignal<u32>) -> impl IntoView {
    let integrations: Items = LocalResource::new(move || {
        reload.track();
        async move {
            let integrations = api::get::<Vec<Integration>>("/api/integrations").await?;
            Ok(integrations
                .into_iter()
                .map(|integration| Item {
                    href: format!("/integrations/{}", integration.id),
                    badge: kind_label(integration.kind).to_owned(),
                    badge_class: None,
                    name: integration.name,
                })
                .collect())
        }
    });
    let empty = "No integrations yet. An integration holds the account a channel or an LLM uses.";
    view! { <ItemList id="integration-list" items=integrations empty/> }
}

/// `/integrations/new`.
#[component]
pub fn NewIntegration() -> impl IntoView {
    view! { <IntegrationForm existing=None/> }
}

/// `/integrations/:integration_id`: the integration as the service has it.
#[component]
pub fn EditIntegration() -> impl IntoView {
    let params = use_params_map();
    let integration = LocalResource::new(move || {
        let id = params.with(|p| p.get("integration_id").unwrap_or_default());
        async move { api::get::<Integration>(&format!("/api/integrations/{}", api::enc(&id))).await }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || integration.get().map(|reply| match reply {
                Ok(integration) => view! { <IntegrationForm existing=Some(integration)/> }.into_any(),
                Err(problem) => view! { <ProblemView problem/> }.into_any(),
            })}
        </Suspense>
    }
}

/// A setting's value as its input shows it.
fn shown_setting(settings: &JsonMap, name: &str) -> String {
    match settings.get(name) {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The settings the kind takes, none blank; a port is a number to the API,
/// anything else is sent as typed, for it to reject.
fn settings_body(kind: IntegrationKind, draft: &JsonMap) -> JsonMap {
    let mut settings = JsonMap::new();
    for field in kind.settings() {
        let value = shown_setting(draft, field.name).trim().to_owned();
        if value.is_empty() {
            continue;
        }
        let value = match (field.value, value.parse::<u64>()) {
            (FieldKind::Port, Ok(port)) => Value::from(port),
            _ => Value::from(value),
        };
        settings.insert(field.name.to_owned(), value);
    }
    settings
}

/// What a save sends: a new integration, or the changes of one.
#[derive(Clone)]
enum Save {
    Create(NewIntegration),
    Update(String, IntegrationUpdate),
}

async fn send(save: Save) -> Result<Integration, Problem> {
    match save {
        Save::Create(body) => api::post("/api/integrations", &body).await,
        Save::Update(id, body) => api::put(&format!("/api/integrations/{}", api::enc(&id)), &body).await,
    }
}

#[component]
fn IntegrationForm(existing: Option<Integration>) -> impl IntoView {
    let is_new = existing.is_none();
    let id = StoredValue::new(existing.as_ref().map(|i| i.id.clone()));
    let kind = RwSignal::new(existing.as_ref().map_or(IntegrationKind::Llm, |i| i.kind));
    let name = RwSignal::new(existing.as_ref().map(|i| i.name.clone()).unwrap_or_default());
    let settings = RwSignal::new(existing.as_ref().map(|i| i.settings.clone()).unwrap_or_default());
    // New secret values typed into this form; never filled from the API.
    let secrets = RwSignal::new(JsonMap::new());
    // The last saved state: which secrets are set, and when.
    let saved = RwSignal::new(existing);
    let problem = RwSignal::new(None::<Problem>);
    let Reload(reload) = expect_context();
    let navigate = use_navigate();
    let save = Action::new_local(|save: &Save| send(save.clone()));
    // A 409 names the stages and agents that still use it.
    let remove = Action::new_local(move |_: &()| {
        let path = format!("/api/integrations/{}", api::enc(&id.get_value().unwrap_or_default()));
        async move { api::delete(&path).await }
    });
    let to_list = navigate.clone();
    Effect::new(move |_| match save.value().get() {
        Some(Ok(integration)) => {
            problem.set(None);
            secrets.set(JsonMap::new());
            reload.update(|n| *n += 1);
            let id = integration.id.clone();
            saved.set(Some(integration));
            // A new one gets its own URL, where the form shows it saved.
            if is_new {
                navigate(&format!("/integrations/{id}"), Default::default());
            }
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => {
            reload.update(|n| *n += 1);
            to_list("/integrations", Default::default());
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let kind = kind.get_untracked();
        let settings = settings.with_untracked(|draft| settings_body(kind, draft));
        let secrets: JsonMap = secrets.get_untracked().into_iter().filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty())).collect();
        let name = name.get_untracked();
        save.dispatch_local(match id.get_value() {
            None => Save::Create(NewIntegration { kind, name, settings, secrets }),
            Some(id) => Save::Update(id, IntegrationUpdate { name, settings, secrets }),
        });
    };
    let close = use_navigate();
    let saved_at = move || saved.with(|s| s.as_ref().map(|i| format!("Last saved {}", i.updated_at.format("%Y-%m-%d %H:%M"))));
    view! {
        <form class="card form" id="integration-form" on:submit=submit autocomplete="off">
            <h3>{if is_new { "New integration".to_owned() } else { format!("Edit integration · {}", kind_label(kind.get_untracked())) }}</h3>
            {(!is_new).then(|| view! { <p class="muted" id="integration-saved">{saved_at}</p> })}
            {move || saved.with(|s| s.as_ref().and_then(|i| i.webhook_url.clone())).map(|url| view! {
                <p id="integration-webhook">"Replies and delivery reports reach us at this webhook URL; register it in the provider's console: "<code>{url}</code></p>
            })}
            <KindAndName is_new kind name settings secrets problem/>
            <fieldset>
                <legend>"Settings"</legend>
                <SettingInputs kind settings problem/>
            </fieldset>
            <fieldset id="integration-secrets">
                <legend>"Secrets"</legend>
                <p class="muted">"Write-only: stored encrypted and never shown again. Leave a field empty to keep what is set."</p>
                <SecretInputs kind secrets saved problem/>
            </fieldset>
            <div class="row">
                <button type="submit" class="primary" id="save-integration">"Save"</button>
                <button type="button" on:click=move |_| close("/integrations", Default::default())>"Close"</button>
                {(!is_new).then(|| view! {
                    <ConfirmButton label="Delete" question=format!("Delete integration “{}” and its saved secrets?", name.get_untracked())
                        on_confirm=Callback::new(move |()| { remove.dispatch_local(()); })/>
                })}
            </div>
            {show_problem(problem)}
        </form>
    }
}

#[component]
fn KindAndName(
    is_new: bool,
    kind: RwSignal<IntegrationKind>,
    name: RwSignal<String>,
    settings: RwSignal<JsonMap>,
    secrets: RwSignal<JsonMap>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    let change_kind = move |value: String| {
        kind.set(IntegrationKind::parse(&value).unwrap_or(IntegrationKind::Smtp));
        settings.set(JsonMap::new());
        secrets.set(JsonMap::new());
        problem.set(None);
    };
    view! {
        <div class="row">
            <label>"Kind"
                <select id="integration-kind" disabled=!is_new prop:value=move || kind.get().as_str() on:change=move |ev| change_kind(event_target_value(&ev))>
                    {IntegrationKind::ALL.into_iter().map(|k| view! { <option value=k.as_str()>{kind_label(k)}</option> }).collect_view()}
                </select>
                {field_errors(problem, "kind".into())}
            </label>
            <label>"Name"
                <input id="integration-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                {field_errors(problem, "name".into())}
            </label>
        </div>
    }
}

/// The kind's readable settings, required ones starred.
#[component]
fn SettingInputs(kind: RwSignal<IntegrationKind>, settings: RwSignal<JsonMap>, problem: RwSignal<Option<Problem>>) -> impl IntoView {
    move || {
        kind.get()
            .settings()
            .iter()
            .map(|field| {
                let name = field.name;
                let dom_id = format!("integration-setting-{name}");
                let label = format!("{}{}", field_label(name), if field.required { " *" } else { "" });
                let value = move || settings.with(|s| shown_setting(s, name));
                let write = move |value: String| settings.update(|s| {
                    s.insert(name.to_owned(), Value::from(value));
                });
                let errors = field_errors(problem, format!("settings.{name}"));
                let input = match field.value {
                    FieldKind::OneOf(choices) => view! {
                        <select id=dom_id prop:value=value on:change=move |ev| write(event_target_value(&ev))>
                            <option value="">"— default —"</option>
                            {choices.iter().map(|c| view! { <option value=*c>{*c}</option> }).collect_view()}
                        </select>
                    }
                    .into_any(),
                    other => {
                        let kind = match other {
                            FieldKind::Port => "number",
                            FieldKind::Url => "url",
                            FieldKind::Email => "email",
                            _ => "text",
                        };
                        view! { <input id=dom_id type=kind placeholder=placeholder(other) prop:value=value on:input=move |ev| write(event_target_value(&ev))/> }.into_any()
                    }
                };
                view! { <label>{label}{input}{errors}</label> }
            })
            .collect_view()
    }
}

/// The kind's write-only secrets: whether each is set, never its value.
#[component]
fn SecretInputs(
    kind: RwSignal<IntegrationKind>,
    secrets: RwSignal<JsonMap>,
    saved: RwSignal<Option<Integration>>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    move || {
        kind.get()
            .secrets()
            .iter()
            .map(|field| {
                let name = field.name;
                let dom_id = format!("integration-secret-{name}");
                let is_set = saved.with(|s| s.as_ref().is_some_and(|i| i.secrets_set.iter().any(|s| s == name)));
                let label = format!("{}{}", field_label(name), if field.required && !is_set { " *" } else { "" });
                let state = if is_set {
                    view! { <span class="badge status-COMPLETED secret-state">"set"</span> }.into_any()
                } else {
                    view! { <span class="badge secret-state">"not set"</span> }.into_any()
                };
                let hint = if is_set { "set — type a new value to replace it" } else { "" };
                let value = move || secrets.with(|s| s.get(name).and_then(Value::as_str).unwrap_or_default().to_owned());
                let write = move |value: String| secrets.update(|s| {
                    s.insert(name.to_owned(), Value::from(value));
                });
                let input = if is_long(name) {
                    view! { <textarea id=dom_id rows="4" class="code" placeholder=hint autocomplete="off" spellcheck="false" prop:value=value on:input=move |ev| write(event_target_value(&ev))></textarea> }.into_any()
                } else {
                    view! { <input id=dom_id type="password" autocomplete="new-password" placeholder=hint prop:value=value on:input=move |ev| write(event_target_value(&ev))/> }.into_any()
                };
                view! {
                    <label><span class="row">{label}" "{state}</span>
                        {input}
                        {field_errors(problem, format!("secrets.{name}"))}
                    </label>
                }
            })
            .collect_view()
    }
}
