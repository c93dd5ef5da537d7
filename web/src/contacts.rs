//! Contacts tab: upload a CSV or JSON Lines file and follow the import
//! job to its report, a dry run over such a file (`src/dry_run.rs`),
//! download the contacts, and the paged table whose communication count
//! opens the contact's history: its 360 Results, the communications and
//! the transcript of each conversation with its Deep Analysis values.

use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{int, items, short_time, show_problem, shown, text};

const PAGE: i64 = 20;

/// `/campaigns/:id/contacts, with a contact's history below at `/campaigns/:id/contacts/:object_id``.
#[component]
pub fn ContactsTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Contacts id=id.get()/> }
}

#[component]
pub fn Contacts(id: String) -> impl IntoView {
    let campaign = StoredValue::new(id);
    let page = RwSignal::new(None::<Value>);
    let offset = RwSignal::new(0i64);
    let search = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let reload = RwSignal::new(0u32);
    let navigate = leptos_router::hooks::use_navigate();
    let open = move |object_id: &str| navigate(&format!("/campaigns/{}/contacts/{}", campaign.get_value(), api::enc(object_id)), Default::default());

    Effect::new(move |_| {
        reload.track();
        let id = campaign.get_value();
        let path = format!("/api/campaigns/{id}/contacts?limit={PAGE}&offset={}&q={}", offset.get(), api::enc(&search.get()));
        leptos::task::spawn_local(async move {
            match api::get(&path).await {
                Ok(value) => {
                    page.set(Some(value));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    crate::util::every(4000, move || reload.update(|n| *n += 1));

    let total = move || page.with(|p| p.as_ref().map(|p| int(p, "total")).unwrap_or(0));
    let download_problem = RwSignal::new(None::<Problem>);
    let download = move |format: &'static str| {
        let id = campaign.get_value();
        leptos::task::spawn_local(async move {
            let result = api::download(&format!("/api/campaigns/{id}/contacts/export?format={format}"), &format!("contacts-{id}.{format}")).await;
            download_problem.set(result.err());
        });
    };

    view! {
        <div id="contacts">
            <Import campaign=campaign.get_value() on_done=Callback::new(move |_| reload.update(|n| *n += 1))/>
            <crate::dry_run::DryRun campaign=campaign.get_value()/>
            <div class="row">
                <h3>"Contacts"</h3>
                <input type="search" placeholder="Search name, email, phone, id" prop:value=move || search.get()
                    on:change=move |ev| { offset.set(0); search.set(event_target_value(&ev)); }/>
                <button id="download-csv" on:click=move |_| download("csv")>"Download CSV"</button>
                <button id="download-jsonl" on:click=move |_| download("jsonl")>"Download JSONL"</button>
            </div>
            {show_problem(download_problem)}
            {show_problem(problem)}
            <div class="scroll-x">
            <table class="grid" id="contact-table">
                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Phone"</th><th>"Current stage"</th><th>"Communications"</th><th>"Outcome"</th></tr></thead>
                <tbody>
                    {move || page.get().map(|p| items(&p["contacts"]).into_iter().map(|contact| {
                        let object_id = text(&contact, "object_id");
                        let open = open.clone();
                        let outcome = match (text(&contact, "outcome"), contact["result_flag"].as_bool()) {
                            (o, _) if !o.is_empty() => o,
                            (_, Some(true)) => "Success".to_owned(),
                            (_, Some(false)) => "Negative".to_owned(),
                            _ => "—".to_owned(),
                        };
                        view! {
                            <tr>
                                <td>{text(&contact, "name")}<div class="muted">{object_id.clone()}</div></td>
                                <td>{text(&contact, "email")}</td>
                                <td>{text(&contact, "phone")}</td>
                                <td class="stage">{text(&contact, "current_stage")}</td>
                                <td><button class="link count" on:click=move |_| open(&object_id)>{int(&contact, "communication_count")}</button></td>
                                <td class="outcome">{outcome}</td>
                            </tr>
                        }
                    }).collect_view())}
                </tbody>
            </table>
            </div>
            <div class="row pager">
                <button disabled=move || offset.get() == 0 on:click=move |_| offset.update(|o| *o = (*o - PAGE).max(0))>"‹ Previous"</button>
                <span id="contact-range">{move || {
                    let t = total();
                    if t == 0 { "No contacts".to_owned() } else { format!("{}–{} of {t}", offset.get() + 1, (offset.get() + PAGE).min(t)) }
                }}</span>
                <button disabled=move || { offset.get() + PAGE >= total() } on:click=move |_| offset.update(|o| *o += PAGE)>"Next ›"</button>
            </div>
            <leptos_router::components::Outlet/>
        </div>
    }
}

/// The content type a contact file is sent with: its extension decides;
/// otherwise the browser's type, or CSV.
pub fn file_type(file: &web_sys::File) -> String {
    let lower = file.name().to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".json") || lower.ends_with(".ndjson") {
        "application/x-ndjson".to_owned()
    } else if lower.ends_with(".csv") || file.type_().is_empty() {
        "text/csv".to_owned()
    } else {
        file.type_()
    }
}

#[component]
fn Import(campaign: String, on_done: Callback<()>) -> impl IntoView {
    let job = RwSignal::new(None::<Value>);
    let problem = RwSignal::new(None::<Problem>);
    let choose = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        let name = file.name();
        let content_type = file_type(&file);
        let path = format!("/api/campaigns/{campaign}/imports?file_name={}", api::enc(&name));
        input.set_value("");
        job.set(None);
        leptos::task::spawn_local(async move {
            match api::call("POST", &path, Body::Raw(JsValue::from(file), content_type)).await {
                Ok(value) => {
                    problem.set(None);
                    job.set(Some(value));
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    crate::util::every(700, move || {
        let Some(id) = job.with_untracked(|j| j.as_ref().filter(|j| text(j, "status") == "running").map(|j| text(j, "id"))) else { return };
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/imports/{id}")).await {
                Ok(value) => {
                    let finished = text(&value, "status") != "running";
                    job.set(Some(value));
                    if finished {
                        on_done.run(());
                    }
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    view! {
        <div class="card" id="import">
            <div class="row">
                <h4>"Upload new contacts"</h4>
                <input id="contacts-file" type="file" accept=".csv,.jsonl,.json,.ndjson,text/csv,application/x-ndjson" on:change=choose/>
            </div>
            {show_problem(problem)}
            {move || job.get().map(|j| {
                let (processed, total) = (int(&j, "processed_rows"), int(&j, "total_rows"));
                let percent = if total > 0 { processed * 100 / total } else { 100 };
                let rejected = items(&j["report"]["rejected"]).into_iter().map(|r| {
                    let reason = text(&r, "reason");
                    // The reason often names its line already.
                    let at = match r["column"].as_u64() {
                        _ if reason.starts_with("line ") => String::new(),
                        Some(c) => format!("line {}, column {c}: ", text(&r, "line")),
                        None => format!("line {}: ", text(&r, "line")),
                    };
                    view! { <li>{at} {reason}</li> }
                }).collect_view();
                let failures = items(&j["report"]["strategy_errors"]).into_iter().map(|f| view! {
                    <li>{format!("line {} ({}): ", text(&f, "line"), text(&f, "object_id"))}<pre>{text(&f, "message")}</pre></li>
                }).collect_view();
                view! {
                    <div id="import-report" class=format!("report import-{}", text(&j, "status"))>
                        <div>{format!("{} · {}", text(&j, "file_name"), text(&j, "status"))}</div>
                        <progress max="100" value=percent.to_string()></progress>
                        <span>{format!(" {processed} / {total} rows")}</span>
                        <div class="counts">
                            <span id="import-accepted">{format!("Accepted: {}", int(&j, "accepted"))}</span>
                            <span id="import-updated">{format!("Updated: {}", int(&j, "updated"))}</span>
                            <span id="import-rejected">{format!("Rejected: {}", int(&j, "rejected"))}</span>
                        </div>
                        <ul class="rejected">{rejected}</ul>
                        <ul class="strategy-errors">{failures}</ul>
                    </div>
                }
            })}
        </div>
    }
}

/// `/campaigns/:id/contacts/:object_id`: below the table.
#[component]
pub fn HistoryRoute() -> impl IntoView {
    let campaign = crate::campaign::open().id;
    let params = leptos_router::hooks::use_params_map();
    let navigate = leptos_router::hooks::use_navigate();
    move || {
        let object_id = params.with(|p| p.get("object_id").unwrap_or_default());
        let navigate = navigate.clone();
        let close = Callback::new(move |_| navigate(&format!("/campaigns/{}/contacts", campaign.get_untracked()), Default::default()));
        view! { <History campaign=campaign.get() object_id close/> }
    }
}

#[component]
fn History(campaign: String, object_id: String, close: Callback<()>) -> impl IntoView {
    let contact = RwSignal::new(None::<Value>);
    let problem = RwSignal::new(None::<Problem>);
    let path = format!("/api/campaigns/{campaign}/contacts/{}", api::enc(&object_id));
    let campaign = StoredValue::new(campaign);
    leptos::task::spawn_local(async move {
        match api::get(&path).await {
            Ok(value) => contact.set(Some(value)),
            Err(error) => problem.set(Some(error)),
        }
    });
    // Opened below the table: brought into view once loaded.
    let card = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if contact.with(Option::is_some) || problem.with(Option::is_some) {
            if let Some(card) = card.get_untracked() {
                card.scroll_into_view();
            }
        }
    });
    view! {
        <div class="card" id="history" node_ref=card>
            <div class="row">
                <h4>{format!("Communication history · {object_id}")}</h4>
                <button class="link" on:click=move |_| close.run(())>"Close"</button>
            </div>
            {show_problem(problem)}
            {move || contact.get().map(|c| {
                let communications = items(&c["communications"]);
                let rows = communications.iter().map(|m| {
                    let status = text(&m["status"], "status");
                    view! {
                        <tr class=format!("comm status-{status}")>
                            <td>{text(m, "name")}</td>
                            <td>{text(m, "stage_name")}</td>
                            <td>{short_time(&text(m, "start_date"))} " → " {short_time(&text(m, "end_date"))}</td>
                            <td><span class=format!("badge status-{status}")>{status.clone()}</span><div class="muted">{text(&m["status"], "detail")}</div></td>
                            <td>{text(m, "alternative")}</td>
                        </tr>
                    }
                }).collect_view();
                // Conversations: the sessions of two-way channels, with their messages.
                let transcripts = items(&c["sessions"]).into_iter().filter(|s| !items(&s["messages"]).is_empty()).map(|session| {
                    let id = text(&session, "communication_id");
                    let communication = communications.iter().find(|m| text(m, "id") == id).cloned().unwrap_or_default();
                    view! { <Transcript campaign=campaign.get_value() session communication/> }
                }).collect_view();
                view! {
                    <p>{format!("{} · stage {}", text(&c, "name"), text(&c, "current_stage"))}</p>
                    {results_view(items(&c["result_view"]))}
                    <h4>"Communications"</h4>
                    <table class="grid"><thead><tr><th>"Name"</th><th>"Stage"</th><th>"Window"</th><th>"Status"</th><th>"A/B"</th></tr></thead><tbody>{rows}</tbody></table>
                    {(!c["last_error"].is_null()).then(|| view! { <div class="problem"><strong>"Last strategy error: "</strong><pre>{text(&c["last_error"], "message")}</pre></div> })}
                    {transcripts}
                }
            })}
        </div>
    }
}

/// 360 View > Results: ResultFlag, ResultDatetime and each campaign result
/// field, with its description as the hint; "—" until filled.
fn results_view(entries: Vec<Value>) -> impl IntoView {
    let rows = entries
        .into_iter()
        .map(|entry| {
            let code = text(&entry, "code");
            let value = match entry["value"].as_str() {
                Some(stamp) if code == "ResultDatetime" => short_time(stamp),
                _ => shown(&entry["value"]),
            };
            let description = text(&entry, "description");
            let hint = description.clone();
            view! {
                <tr title=hint>
                    <td><strong>{text(&entry, "name")}</strong>" "<code class="muted">{code}</code><div class="muted">{description}</div></td>
                    <td class="result-value">{value}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="contact-results">
            <h4>"Results"</h4>
            <table class="grid"><thead><tr><th>"Field"</th><th>"Value"</th></tr></thead><tbody>{rows}</tbody></table>
        </section>
    }
}

/// One conversation: agent and contact messages as bubbles with their
/// times, the session's results and its Deep Analysis values, if any.
#[component]
fn Transcript(campaign: String, session: Value, communication: Value) -> impl IntoView {
    let communication_id = text(&session, "communication_id");
    let analysis = RwSignal::new(Vec::<Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let path = format!("/api/campaigns/{campaign}/analysis/sessions/{}", api::enc(&communication_id));
    leptos::task::spawn_local(async move {
        match api::get(&path).await {
            Ok(values) => analysis.set(items(&values)),
            Err(error) => problem.set(Some(error)),
        }
    });
    let title = [text(&communication, "name"), text(&communication, "stage_name")].into_iter().filter(|t| !t.is_empty()).collect::<Vec<_>>();
    let title = if title.is_empty() { "Conversation".to_owned() } else { format!("Conversation · {}", title.join(" · ")) };
    let channel = text(&session, "channel");
    let alternative = text(&session, "alternative");
    let messages = items(&session["messages"])
        .into_iter()
        .map(|message| {
            let role = text(&message, "role");
            let who = if role == "CONTACT" { "Contact" } else { "Agent" };
            view! {
                <li class=format!("message role-{role}")>
                    <div class="bubble">{text(&message, "content")}</div>
                    <div class="muted">{format!("{who} · {}", short_time(&text(&message, "sent_at")))}</div>
                </li>
            }
        })
        .collect_view();
    let results = session["session_results"]
        .as_object()
        .filter(|r| !r.is_empty())
        .map(|r| r.iter().map(|(k, v)| format!("{k}: {}", shown(v))).collect::<Vec<_>>().join(" · "));
    view! {
        <section class="transcript" id=format!("session-{communication_id}")>
            <div class="row">
                <h4>{title}</h4>
                {(!channel.is_empty()).then(|| view! { <span class="badge">{channel}</span> })}
                {(!alternative.is_empty()).then(|| view! { <span class="muted">{format!("A/B {alternative}")}</span> })}
            </div>
            <ol class="messages">{messages}</ol>
            {results.map(|r| view! { <p class="muted">"Session results: " {r}</p> })}
            {move || (!analysis.with(Vec::is_empty)).then(|| {
                let rows = analysis.get().into_iter().map(|v| {
                    let error = text(&v, "error");
                    view! {
                        <tr>
                            <td><code>{text(&v, "metric")}</code></td>
                            <td class="result-value">{shown(&v["value"])}
                                {(!error.is_empty()).then(|| view! { <div class="field-error">{error}</div> })}</td>
                            <td class="muted">{short_time(&text(&v, "computed_at"))}</td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <table class="grid session-analysis">
                        <thead><tr><th>"Deep Analysis"</th><th>"Value"</th><th>"Computed"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
            })}
            {show_problem(problem)}
        </section>
    }
}
