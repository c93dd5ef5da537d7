//! Stages tab: the list (name and description, channel, agent) and the
//! stage form, which shows exactly the settings of the chosen channel, the
//! A/B alternatives and the email template with its preview. The API
//! validates; the table below only decides which inputs to show.

use leptos::prelude::*;
use serde_json::{json, Map, Value};

use crate::api::{self, Problem};
use crate::util::{field_errors, items, show_problem, text};

#[derive(Clone, Copy, PartialEq)]
enum Agent {
    Required,
    Optional,
    NotUsed,
}

/// (value, label, agent, required settings, optional settings).
type ChannelRow = (&'static str, &'static str, Agent, &'static [&'static str], &'static [&'static str]);

/// Mirrors `Channel::rules()` in host/domain/src/stage.rs.
const CHANNELS: [ChannelRow; 13] = [
    ("EMAIL_NOTIFICATION", "Email Notification", Agent::Optional, &["integration_id", "email_subject", "email_template"], &["email_input_type"]),
    ("EMAIL_COMMUNICATION", "Email Communication", Agent::Required, &["email_subject", "email_template"], &["integration_id", "agent_channel", "email_input_type"]),
    ("HUMAN", "Human", Agent::Optional, &[], &["agent_role"]),
    ("INFOBIP", "Infobip", Agent::Required, &[], &["integration_id", "agent_channel", "start_phrase"]),
    ("MESSAGEBIRD_WHATSAPP", "MessageBird (WhatsApp)", Agent::Required, &["project_id", "version", "start_state"], &["integration_id"]),
    ("MESSAGEBIRD_WEBHOOK", "MessageBird Webhook (WhatsApp)", Agent::Required, &[], &["integration_id", "agent_channel"]),
    ("WHATSAPP", "WhatsApp", Agent::Optional, &["start_state", "template_name"], &["integration_id"]),
    ("MOBILE_PUSH", "Mobile Push", Agent::Optional, &[], &[]),
    ("TELEGRAM", "Telegram", Agent::Required, &[], &["integration_id", "agent_channel", "start_phrase"]),
    ("SIP", "SIP", Agent::Required, &[], &["integration_id"]),
    ("TWILIO", "Twilio", Agent::Required, &["start_state"], &["integration_id"]),
    ("NO_COMMUNICATION", "No Communication", Agent::NotUsed, &[], &[]),
    ("SIMULATED", "Simulated (no accounts)", Agent::Optional, &[], &[]),
];

fn channel(value: &str) -> ChannelRow {
    CHANNELS.iter().copied().find(|c| c.0 == value).unwrap_or(CHANNELS[12])
}

fn channel_label(value: &str) -> String {
    CHANNELS.iter().find(|c| c.0 == value).map(|c| c.1.to_owned()).unwrap_or_else(|| value.to_owned())
}

/// Integration kind whose integrations a channel's `integration_id` lists.
fn integration_kind(channel: &str) -> Option<&'static str> {
    Some(match channel {
        "EMAIL_NOTIFICATION" | "EMAIL_COMMUNICATION" => "SMTP",
        "INFOBIP" => "INFOBIP",
        "MESSAGEBIRD_WHATSAPP" | "MESSAGEBIRD_WEBHOOK" => "MESSAGEBIRD",
        "WHATSAPP" => "WHATSAPP_META",
        "MOBILE_PUSH" => "FCM",
        "TELEGRAM" => "TELEGRAM",
        "SIP" => "SIP",
        "TWILIO" => "TWILIO",
        _ => return None,
    })
}

fn setting_label(setting: &str) -> &'static str {
    match setting {
        "integration_id" => "Integration",
        "agent_channel" => "Agent channel",
        "agent_role" => "Agent role",
        "email_subject" => "Email subject",
        "email_input_type" => "Email input type",
        "email_template" => "Email template",
        "start_phrase" => "Start phrase",
        "start_state" => "Start state",
        "project_id" => "Project ID",
        "version" => "Version",
        "template_name" => "Template name",
        _ => "Setting",
    }
}

#[component]
pub fn Stages(id: String) -> impl IntoView {
    let stages = RwSignal::new(Vec::<Value>::new());
    let agents = RwSignal::new(Vec::<Value>::new());
    let integrations = RwSignal::new(Vec::<Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let editing = RwSignal::new(None::<Value>);
    let reload = RwSignal::new(0u32);
    let campaign = StoredValue::new(id);

    Effect::new(move |_| {
        reload.track();
        let id = campaign.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns/{id}/stages")).await {
                Ok(list) => stages.set(items(&list)),
                Err(error) => problem.set(Some(error)),
            }
            match api::get("/api/agents").await {
                Ok(list) => agents.set(items(&list)),
                Err(error) => problem.set(Some(error)),
            }
            match api::get("/api/integrations").await {
                Ok(list) => integrations.set(items(&list)),
                Err(error) => problem.set(Some(error)),
            }
        });
    });

    let agent_name = move |id: &str| {
        agents.with(|list| list.iter().find(|a| text(a, "id") == id).map(|a| text(a, "name"))).unwrap_or_else(|| id.to_owned())
    };
    let remove = move |stage_id: String| {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/stages/{stage_id}")).await {
                Ok(_) => reload.update(|n| *n += 1),
                Err(error) => problem.set(Some(error)),
            }
        });
    };

    view! {
        <div id="stages">
            <div class="row">
                <h3>"Stages"</h3>
                <button id="add-stage" class="primary" on:click=move |_| editing.set(Some(json!({"name": "", "description": "", "channel": "SIMULATED", "settings": {}, "alternatives": []})))>"+ Add Stage"</button>
            </div>
            {show_problem(problem)}
            {move || editing.get().map(|stage| view! {
                <StageForm campaign=campaign.get_value() stage agents integrations
                    done=Callback::new(move |_| { editing.set(None); reload.update(|n| *n += 1); })/>
            })}
            <table class="grid" id="stage-table">
                <thead><tr><th>"Name"</th><th>"Configs"</th><th></th></tr></thead>
                <tbody>
                    {move || stages.get().into_iter().map(|stage| {
                        let agent = stage["agent_id"].as_str().map(agent_name).unwrap_or_else(|| "no agent".into());
                        let alternatives = items(&stage["alternatives"]);
                        let ab = (!alternatives.is_empty()).then(|| format!(" · A/B: {}", alternatives.iter().map(|a| format!("{} {}%", text(a, "label"), text(a, "weight"))).collect::<Vec<_>>().join(", ")));
                        let stage_id = text(&stage, "id");
                        let for_edit = stage.clone();
                        view! {
                            <tr>
                                <td><strong>{text(&stage, "name")}</strong><div class="muted">{text(&stage, "description")}</div></td>
                                <td>{channel_label(&text(&stage, "channel"))}<div class="muted">{agent}{ab}</div></td>
                                <td class="actions">
                                    <button on:click=move |_| editing.set(Some(for_edit.clone()))>"Edit"</button>
                                    <button class="danger" on:click=move |_| remove(stage_id.clone())>"Delete"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// One choice of the draft: the stage itself (`None`) or alternative N.
fn pick(d: &Value, at: Option<usize>) -> &Value {
    match at {
        None => d,
        Some(i) => &d["alternatives"][i],
    }
}

fn set_in(draft: RwSignal<Value>, at: Option<usize>, key: &str, value: Value) {
    draft.update(|d| {
        let target = match at {
            None => d,
            Some(i) => &mut d["alternatives"][i],
        };
        target[key] = value;
    });
}

fn set_setting(draft: RwSignal<Value>, at: Option<usize>, key: &str, value: Value) {
    draft.update(|d| {
        let target = match at {
            None => d,
            Some(i) => &mut d["alternatives"][i],
        };
        if !target["settings"].is_object() {
            target["settings"] = json!({});
        }
        target["settings"][key] = value;
    });
}

/// Only the settings the channel takes, and none left blank.
fn clean(choice: &Value) -> Value {
    let (_, _, agent, required, optional) = channel(choice["channel"].as_str().unwrap_or(""));
    let mut settings = Map::new();
    if let Some(given) = choice["settings"].as_object() {
        for (key, value) in given {
            let shown = required.contains(&key.as_str()) || optional.contains(&key.as_str());
            let blank = value.is_null() || value.as_str().is_some_and(|s| s.is_empty());
            if shown && !blank {
                settings.insert(key.clone(), value.clone());
            }
        }
    }
    let agent_id = match (agent, choice["agent_id"].as_str()) {
        (Agent::NotUsed, _) | (_, None | Some("")) => Value::Null,
        (_, Some(id)) => json!(id),
    };
    json!({"channel": choice["channel"], "agent_id": agent_id, "settings": settings})
}

fn body(draft: &Value) -> Value {
    let mut stage = clean(draft);
    stage["name"] = draft["name"].clone();
    stage["description"] = draft["description"].clone();
    stage["alternatives"] = Value::Array(
        items(&draft["alternatives"])
            .iter()
            .map(|alt| {
                let mut out = clean(alt);
                out["label"] = alt["label"].clone();
                out["weight"] = json!(alt["weight"].as_u64().or_else(|| alt["weight"].as_str().and_then(|s| s.parse().ok())).unwrap_or(0));
                out
            })
            .collect(),
    );
    stage
}

#[component]
fn StageForm(
    campaign: String,
    stage: Value,
    agents: RwSignal<Vec<Value>>,
    integrations: RwSignal<Vec<Value>>,
    done: Callback<()>,
) -> impl IntoView {
    let stage_id = text(&stage, "id");
    let is_new = stage_id.is_empty();
    let draft = RwSignal::new(stage);
    let problem = RwSignal::new(None::<Problem>);
    let alternative_count = Memo::new(move |_| draft.with(|d| d["alternatives"].as_array().map_or(0, Vec::len)));
    let ab = RwSignal::new(alternative_count.get_untracked() > 0);

    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut payload = draft.with_untracked(body);
        if !ab.get_untracked() {
            payload["alternatives"] = json!([]);
        }
        let (campaign, stage_id) = (campaign.clone(), stage_id.clone());
        leptos::task::spawn_local(async move {
            let reply = if is_new {
                api::post(&format!("/api/campaigns/{campaign}/stages"), payload).await
            } else {
                api::put(&format!("/api/stages/{stage_id}"), payload).await
            };
            match reply {
                Ok(_) => done.run(()),
                Err(error) => problem.set(Some(error)),
            }
        });
    };

    view! {
        <form class="card form" id="stage-form" on:submit=save>
            <h4>{if is_new { "Create stage" } else { "Edit stage" }}</h4>
            <label>"Name"
                <input id="stage-name" prop:value=move || draft.with(|d| text(d, "name")) on:input=move |ev| set_in(draft, None, "name", json!(event_target_value(&ev)))/>
                {field_errors(problem, "name".into())}
            </label>
            <label>"Description"
                <textarea id="stage-description" prop:value=move || draft.with(|d| text(d, "description")) on:input=move |ev| set_in(draft, None, "description", json!(event_target_value(&ev)))></textarea>
            </label>
            <ChannelFields draft at=None agents integrations problem/>
            <div class="row">
                <label class="toggle"><input type="checkbox" id="ab-toggle" prop:checked=move || ab.get() on:change=move |ev| ab.set(event_target_checked(&ev))/>"A/B testing"</label>
                {move || ab.get().then(|| view! {
                    <button type="button" id="add-alternative" on:click=move |_| draft.update(|d| {
                        if !d["alternatives"].is_array() { d["alternatives"] = json!([]); }
                        if let Some(list) = d["alternatives"].as_array_mut() {
                            list.push(json!({"label": "", "weight": 10, "channel": "SIMULATED", "settings": {}}));
                        }
                    })>"+ Add"</button>
                })}
            </div>
            {field_errors(problem, "alternatives".into())}
            {move || ab.get().then(|| (0..alternative_count.get()).map(|i| {
                let prefix = format!("alternatives[{i}].");
                view! {
                    <fieldset class="alternative">
                        <legend>{format!("Alternative {}", i + 1)}</legend>
                        <div class="row">
                            <label>"Label"<input prop:value=move || draft.with(|d| text(&d["alternatives"][i], "label")) on:input=move |ev| set_in(draft, Some(i), "label", json!(event_target_value(&ev)))/>
                                {field_errors(problem, format!("{prefix}label"))}</label>
                            <label>"Weight (%)"<input type="number" min="1" max="100" prop:value=move || draft.with(|d| text(&d["alternatives"][i], "weight")) on:input=move |ev| set_in(draft, Some(i), "weight", json!(event_target_value(&ev)))/>
                                {field_errors(problem, format!("{prefix}weight"))}</label>
                            <button type="button" class="danger" on:click=move |_| draft.update(|d| { if let Some(list) = d["alternatives"].as_array_mut() { if i < list.len() { list.remove(i); } } })>"Remove"</button>
                        </div>
                        <ChannelFields draft at=Some(i) agents integrations problem/>
                    </fieldset>
                }
            }).collect_view())}
            <div class="row">
                <button type="submit" class="primary" id="save-stage">"Save"</button>
                <button type="button" on:click=move |_| done.run(())>"Cancel"</button>
            </div>
            {show_problem(problem)}
        </form>
    }
}

/// Channel, agent and the channel's own settings, for the stage (`at`
/// None) or one of its alternatives.
#[component]
fn ChannelFields(
    draft: RwSignal<Value>,
    at: Option<usize>,
    agents: RwSignal<Vec<Value>>,
    integrations: RwSignal<Vec<Value>>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    let prefix = at.map(|i| format!("alternatives[{i}].")).unwrap_or_default();
    let current = Memo::new(move |_| draft.with(|d| text(pick(d, at), "channel")));
    let id_prefix = at.map(|i| format!("alt{i}-")).unwrap_or_default();
    let prefix_for_fields = prefix.clone();
    let id_for_fields = id_prefix.clone();
    view! {
        <label>"Channel"
            <select id=format!("{id_prefix}stage-channel") prop:value=move || current.get() on:change=move |ev| set_in(draft, at, "channel", json!(event_target_value(&ev)))>
                {CHANNELS.iter().map(|c| view! { <option value=c.0>{c.1}</option> }).collect_view()}
            </select>
            {field_errors(problem, format!("{prefix}channel"))}
        </label>
        {move || {
            let (value, _, agent, required, optional) = channel(&current.get());
            let prefix = prefix_for_fields.clone();
            let agent_field = (agent != Agent::NotUsed).then(|| {
                let star = if agent == Agent::Required { " *" } else { "" };
                view! {
                    <label>{format!("Agent{star}")}
                        <select id=format!("{id_for_fields}stage-agent") prop:value=move || draft.with(|d| text(pick(d, at), "agent_id"))
                            on:change=move |ev| { let v = event_target_value(&ev); set_in(draft, at, "agent_id", if v.is_empty() { Value::Null } else { json!(v) }); }>
                            <option value="">"— none —"</option>
                            {move || agents.get().into_iter().map(|a| view! { <option value=text(&a, "id")>{format!("{} ({})", text(&a, "name"), text(&a, "status"))}</option> }).collect_view()}
                        </select>
                        {field_errors(problem, format!("{prefix}agent_id"))}
                    </label>
                }
            });
            let settings = required.iter().map(|s| (*s, true)).chain(optional.iter().map(|s| (*s, false)))
                .filter(|(s, _)| *s != "email_input_type")
                .map(|(setting, required)| setting_input(draft, at, setting, required, value, integrations, problem, &prefix, &id_for_fields))
                .collect_view();
            view! { {agent_field} <div class="settings">{settings}</div> }
        }}
    }
}

#[allow(clippy::too_many_arguments)]
fn setting_input(
    draft: RwSignal<Value>,
    at: Option<usize>,
    setting: &'static str,
    required: bool,
    channel_value: &'static str,
    integrations: RwSignal<Vec<Value>>,
    problem: RwSignal<Option<Problem>>,
    prefix: &str,
    id_prefix: &str,
) -> AnyView {
    let label = format!("{}{}", setting_label(setting), if required { " *" } else { "" });
    let errors = field_errors(problem, format!("{prefix}settings.{setting}"));
    let dom_id = format!("{id_prefix}setting-{setting}");
    let value = move || draft.with(|d| text(&pick(d, at)["settings"], setting));
    let write = move |v: String| set_setting(draft, at, setting, json!(v));
    match setting {
        "integration_id" => {
            let kind = integration_kind(channel_value);
            view! {
                <label>{label}
                    <select id=dom_id prop:value=value on:change=move |ev| write(event_target_value(&ev))>
                        <option value="">"— none —"</option>
                        {move || integrations.get().into_iter().filter(|i| kind.is_none_or(|k| text(i, "kind") == k))
                            .map(|i| view! { <option value=text(&i, "id")>{format!("{} ({})", text(&i, "name"), text(&i, "kind"))}</option> }).collect_view()}
                    </select>
                    {errors}
                </label>
            }
            .into_any()
        }
        "email_template" => {
            let html = Memo::new(move |_| draft.with(|d| text(&pick(d, at)["settings"], "email_input_type") == "HTML"));
            let preview = move || {
                let template = value();
                if html.get() {
                    template
                } else {
                    let escaped = template.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "<br>");
                    // No inline style: the srcdoc document inherits the UI's CSP.
                    format!("<div>{escaped}</div>")
                }
            };
            view! {
                <div class="email-template">
                    <div class="row">
                        <span>"Email input type"</span>
                        <label class="toggle"><input type="radio" id=format!("{dom_id}-default") name=format!("{dom_id}-type") prop:checked=move || !html.get() on:change=move |_| set_setting(draft, at, "email_input_type", json!("DEFAULT"))/>"Default"</label>
                        <label class="toggle"><input type="radio" id=format!("{dom_id}-html") name=format!("{dom_id}-type") prop:checked=move || html.get() on:change=move |_| set_setting(draft, at, "email_input_type", json!("HTML"))/>"HTML"</label>
                    </div>
                    <label>{label}
                        <textarea id=dom_id rows="8" class:code=move || html.get() prop:value=value on:input=move |ev| write(event_target_value(&ev))></textarea>
                        {errors}
                    </label>
                    <div class="preview-label">"Email template preview"</div>
                    <iframe class="preview" sandbox="" title="Email template preview" srcdoc=preview></iframe>
                </div>
            }
            .into_any()
        }
        _ => view! {
            <label>{label}
                <input id=dom_id prop:value=value on:input=move |ev| write(event_target_value(&ev))/>
                {errors}
            </label>
        }
        .into_any(),
    }
}
