//! Contacts tab: upload a CSV or JSON Lines file and follow the import
//! job to its report, a dry run over such a file (`src/dry_run.rs`),
//! download the contacts, and the paged table whose communication count
//! opens the contact's history: its 360 Results, the communications and
//! the transcript of each conversation with its Deep Analysis values.

use leptos::prelude::*;
use stratagem_types::contact::{ContactDetail, ContactPage, ContactSummary, ResultEntry, SessionRecord};
use stratagem_types::deep_analysis::SessionValue;
use stratagem_types::import::{ImportJob, RejectedRow};
use stratagem_types::{Communication, MessageRole};
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{short_time, show_problem, shown, ProblemView};

const PAGE: i64 = 20;

type Page = LocalResource<Result<ContactPage, Problem>>;

/// `/campaigns/:id/contacts, with a contact's history below at `/campaigns/:id/contacts/:object_id``.
#[component]
pub fn ContactsTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Contacts id=id.get()/> }
}

#[component]
pub fn Contacts(id: String) -> impl IntoView {
    let campaign = StoredValue::new(id);
    let offset = RwSignal::new(0i64);
    let search = RwSignal::new(String::new());
    let page: Page = LocalResource::new(move || {
        let path = format!("/api/campaigns/{}/contacts?limit={PAGE}&offset={}&q={}", campaign.get_value(), offset.get(), api::enc(&search.get()));
        async move { api::get(&path).await }
    });
    crate::util::every(4000, move || page.refetch());
    let total = Memo::new(move |_| page.with(|p| p.as_ref().and_then(|p| p.as_ref().ok()).map(|p| p.total).unwrap_or(0)));
    view! {
        <div id="contacts">
            <Import campaign=campaign.get_value() on_done=Callback::new(move |_| page.refetch())/>
            <crate::dry_run::DryRun campaign=campaign.get_value()/>
            <Toolbar campaign=campaign.get_value() search offset/>
            <Transition fallback=|| ()>{move || page.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> })}</Transition>
            <ContactTable campaign=campaign.get_value() page/>
            <Pager offset total/>
            <leptos_router::components::Outlet/>
        </div>
    }
}

/// How long typing pauses before the contacts are searched.
const SEARCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// The title, the search box and the downloads: the contacts file, which
/// imports into another campaign as the same contacts, and the report of
/// where each one stands.
#[component]
fn Toolbar(campaign: String, search: RwSignal<String>, offset: RwSignal<i64>) -> impl IntoView {
    let download = Action::new_local(move |&(content, format): &(&'static str, &'static str)| {
        let id = campaign.clone();
        let (route, name) = match content {
            "report" => ("report", "contact-report"),
            _ => ("export", "contacts"),
        };
        let (path, file_name) = (format!("/api/campaigns/{id}/contacts/{route}?format={format}"), format!("{name}-{id}.{format}"));
        async move { api::download(&path, &file_name).await }
    });
    let problem = move || download.value().get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> });
    // Searched as it is typed, once typing pauses: not a request a key.
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let typed = move |text: String| {
        if let Some(handle) = pending.get_value() {
            handle.clear();
        }
        let search_now = move || {
            offset.set(0);
            search.set(text);
        };
        pending.set_value(set_timeout_with_handle(search_now, SEARCH_PAUSE).ok());
    };
    view! {
        <div class="row">
            <h3>"Contacts"</h3>
            <input id="contact-search" type="search" placeholder="Search name, email, phone, id" prop:value=move || search.get()
                on:input=move |ev| typed(event_target_value(&ev)) on:change=move |ev| typed(event_target_value(&ev))/>
            <span class="muted">"Contacts file (re-importable):"</span>
            <button id="download-csv" title="The imported fields and parameters; imports into any campaign as the same contacts"
                on:click=move |_| { download.dispatch_local(("contacts", "csv")); }>"CSV"</button>
            <button id="download-jsonl" title="The imported fields and parameters, with their JSON types"
                on:click=move |_| { download.dispatch_local(("contacts", "jsonl")); }>"JSON Lines"</button>
            <span class="muted">"State report:"</span>
            <button id="download-report-csv" title="Stage, communications sent and planned, outcome and results of each contact"
                on:click=move |_| { download.dispatch_local(("report", "csv")); }>"CSV"</button>
            <button id="download-report-jsonl" title="Each contact whole: stage, internal data, results and every communication"
                on:click=move |_| { download.dispatch_local(("report", "jsonl")); }>"JSON Lines"</button>
        </div>
        {problem}
    }
}

/// The page's contacts; the communication count opens the history.
#[component]
fn ContactTable(campaign: String, page: Page) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let row = move |contact: ContactSummary| {
        let object_id = contact.object_id.clone();
        let href = format!("/campaigns/{campaign}/contacts/{}", api::enc(&object_id));
        let navigate = navigate.clone();
        let outcome = match (contact.outcome.filter(|o| !o.is_empty()), contact.result_flag) {
            (Some(o), _) => o,
            (_, Some(true)) => "Success".to_owned(),
            (_, Some(false)) => "Negative".to_owned(),
            _ => "—".to_owned(),
        };
        view! {
            <tr>
                <td>{contact.name}<div class="muted">{object_id}</div></td>
                <td>{contact.email}</td>
                <td>{contact.phone}</td>
                <td class="stage">{contact.current_stage.unwrap_or_default()}</td>
                <td><button class="link count" title="Sent · planned" on:click=move |_| navigate(&href, Default::default())>
                    {format!("{} sent · {} planned", contact.sent_count, contact.planned_count)}
                </button></td>
                <td class="outcome">{outcome}</td>
            </tr>
        }
    };
    view! {
        <div class="scroll-x">
        <table class="grid" id="contact-table">
            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Phone"</th><th>"Current stage"</th><th>"Communications"</th><th>"Outcome"</th></tr></thead>
            <tbody>
                <Transition fallback=|| ()>
                    {move || page.get().and_then(Result::ok).map(|p| p.contacts.into_iter().map(row.clone()).collect_view())}
                </Transition>
            </tbody>
        </table>
        </div>
    }
}

#[component]
fn Pager(offset: RwSignal<i64>, total: Memo<i64>) -> impl IntoView {
    view! {
        <div class="row pager">
            <button disabled=move || offset.get() == 0 on:click=move |_| offset.update(|o| *o = (*o - PAGE).max(0))>"‹ Previous"</button>
            <span id="contact-range">{move || {
                let t = total.get();
                if t == 0 { "No contacts".to_owned() } else { format!("{}–{} of {t}", offset.get() + 1, (offset.get() + PAGE).min(t)) }
            }}</span>
            <button disabled=move || { offset.get() + PAGE >= total.get() } on:click=move |_| offset.update(|o| *o += PAGE)>"Next ›"</button>
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
    let job = RwSignal::new(None::<ImportJob>);
    let problem = RwSignal::new(None::<Problem>);
    let upload = Action::new_local(move |file: &web_sys::File| {
        let path = format!("/api/campaigns/{campaign}/imports?file_name={}", api::enc(&file.name()));
        let body = Body::Raw(JsValue::from(file.clone()), file_type(file));
        async move { api::call::<ImportJob>("POST", &path, body).await }
    });
    let follow = Action::new_local(|id: &String| {
        let path = format!("/api/imports/{}", api::enc(id));
        async move { api::get::<ImportJob>(&path).await }
    });
    Effect::new(move |_| match upload.value().get() {
        Some(Ok(value)) => {
            problem.set(None);
            job.set(Some(value));
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    Effect::new(move |_| match follow.value().get() {
        Some(Ok(value)) => {
            let finished = !value.status.is_active();
            job.set(Some(value));
            if finished {
                on_done.run(());
            }
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    crate::util::every(700, move || {
        if let Some(id) = job.with_untracked(|j| j.as_ref().filter(|j| j.status.is_active()).map(|j| j.id.clone())) {
            follow.dispatch_local(id);
        }
    });
    let choose = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        job.set(None);
        upload.dispatch_local(file);
    };
    view! {
        <div class="card" id="import">
            <div class="row">
                <h4>"Upload new contacts"</h4>
                <input id="contacts-file" type="file" accept=".csv,.jsonl,.json,.ndjson,text/csv,application/x-ndjson" on:change=choose/>
            </div>
            {show_problem(problem)}
            {move || job.get().map(|job| view! { <ImportReport job/> })}
        </div>
    }
}

/// An import job's progress, counts, rejected rows and strategy errors.
#[component]
fn ImportReport(job: ImportJob) -> impl IntoView {
    let (processed, total) = (job.processed_rows, job.total_rows);
    let percent = if total > 0 { processed * 100 / total } else { 100 };
    let status = job.status.as_str();
    let rejected = job.report.rejected.iter().map(|r| view! { <li>{rejected_at(r)} {r.reason.clone()}</li> }).collect_view();
    let failures = job
        .report
        .strategy_errors
        .iter()
        .map(|f| {
            let log = f.invocation_id.clone().map(|id| view! { <crate::invocations::InvocationLog id/> });
            view! { <li>{format!("line {} ({}): ", f.line, f.object_id)}<pre>{f.message.clone()}</pre>{log}</li> }
        })
        .collect_view();
    view! {
        <div id="import-report" class=format!("report import-{status}")>
            <div>{format!("{} · {status}", job.file_name.clone().unwrap_or_default())}</div>
            {job.queue_position.map(|position| view! { <p id="import-queued" class="notice">{queued(position)}</p> })}
            {job.waiting_for.clone().map(|why| view! { <p id="import-waiting" class="notice">"Waiting: " {why}</p> })}
            {job.detail.clone().map(|detail| view! { <p id="import-detail" class="error">{detail}</p> })}
            <progress max="100" value=percent.to_string()></progress>
            <span>{format!(" {processed} / {total} rows")}</span>
            <div class="counts">
                <span id="import-accepted">{format!("Accepted: {}", job.accepted)}</span>
                <span id="import-updated">{format!("Updated: {}", job.updated)}</span>
                <span id="import-rejected">{format!("Rejected: {}", job.rejected)}</span>
            </div>
            <ul class="rejected">{rejected}</ul>
            <ul class="strategy-errors">{failures}</ul>
        </div>
    }
}

/// A queued import's place, in words.
fn queued(position: u32) -> String {
    match position {
        1 => "Queued: this import starts next, as soon as one running on the server ends.".to_owned(),
        n => format!("Queued: {} imports start before this one.", n - 1),
    }
}

/// Where a rejected row is, unless its reason names its line already.
fn rejected_at(row: &RejectedRow) -> String {
    match row.column {
        _ if row.reason.starts_with("line ") => String::new(),
        Some(c) => format!("line {}, column {c}: ", row.line),
        None => format!("line {}: ", row.line),
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
    let path = format!("/api/campaigns/{campaign}/contacts/{}", api::enc(&object_id));
    let contact = LocalResource::new(move || {
        let path = path.clone();
        async move { api::get::<ContactDetail>(&path).await }
    });
    // Opened below the table: brought into view once loaded.
    let card = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if contact.with(Option::is_some) {
            if let Some(card) = card.get_untracked() {
                card.scroll_into_view();
            }
        }
    });
    let campaign = StoredValue::new(campaign);
    view! {
        <div class="card" id="history" node_ref=card>
            <div class="row">
                <h4>{format!("Communication history · {object_id}")}</h4>
                <button class="link" on:click=move |_| close.run(())>"Close"</button>
            </div>
            <Suspense fallback=|| ()>
                {move || contact.get().map(|reply| match reply {
                    Ok(detail) => view! { <ContactHistory campaign=campaign.get_value() detail/> }.into_any(),
                    Err(problem) => view! { <ProblemView problem/> }.into_any(),
                })}
            </Suspense>
        </div>
    }
}

/// A contact's results, communications, last error, conversations and
/// strategy runs.
#[component]
fn ContactHistory(campaign: String, detail: ContactDetail) -> impl IntoView {
    let ContactDetail { contact: stored, sessions, result_view, invocations } = detail;
    let last_error = stored.last_error_message().map(str::to_owned);
    let contact = stored.contact;
    // Conversations: the sessions of two-way channels, with their messages.
    let transcripts = sessions
        .into_iter()
        .filter(|s| !s.messages.is_empty())
        .map(|session| {
            let communication = contact.communications.iter().find(|m| m.id.as_deref() == Some(session.communication_id.as_str())).cloned();
            view! { <Transcript campaign=campaign.clone() session communication/> }
        })
        .collect_view();
    view! {
        <p>{format!("{} · stage {}", contact.name, contact.current_stage.clone().unwrap_or_default())}</p>
        {results_view(result_view)}
        <h4>"Communications"</h4>
        {communications_table(&contact.communications)}
        {last_error.map(|message| view! { <div class="problem"><strong>"Last strategy error: "</strong><pre>{message}</pre></div> })}
        {transcripts}
        <h4>"Strategy runs"</h4>
        <crate::invocations::InvocationList invocations/>
    }
}

fn communications_table(communications: &[Communication]) -> impl IntoView {
    let rows = communications
        .iter()
        .map(|m| {
            let status = m.status.status.as_str();
            view! {
                <tr class=format!("comm status-{status}")>
                    <td>{m.name.clone()}</td>
                    <td>{m.stage_name.clone()}</td>
                    <td>{short_time(m.start_date)} " → " {m.end_date.map(short_time).unwrap_or_default()}</td>
                    <td><span class=format!("badge status-{status}")>{status}</span><div class="muted">{m.status.detail.clone().unwrap_or_default()}</div></td>
                    <td>{m.alternative.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid"><thead><tr><th>"Name"</th><th>"Stage"</th><th>"Window"</th><th>"Status"</th><th>"A/B"</th></tr></thead><tbody>{rows}</tbody></table>
    }
}

/// 360 View > Results: ResultFlag, ResultDatetime and each campaign result
/// field, with its description as the hint; "—" until filled.
fn results_view(entries: Vec<ResultEntry>) -> impl IntoView {
    let rows = entries
        .into_iter()
        .map(|entry| {
            let value = match entry.value.as_str() {
                Some(stamp) if entry.code == "ResultDatetime" => short_time(stamp),
                _ => shown(&entry.value),
            };
            let hint = entry.description.clone();
            view! {
                <tr title=hint>
                    <td><strong>{entry.name}</strong>" "<code class="muted">{entry.code}</code><div class="muted">{entry.description}</div></td>
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
fn Transcript(campaign: String, session: SessionRecord, communication: Option<Communication>) -> impl IntoView {
    let title = communication.map(|c| [c.name, c.stage_name]).into_iter().flatten().filter(|t| !t.is_empty()).collect::<Vec<_>>();
    let title = if title.is_empty() { "Conversation".to_owned() } else { format!("Conversation · {}", title.join(" · ")) };
    let messages = session
        .messages
        .iter()
        .map(|message| {
            let (role, who) = match message.role {
                MessageRole::Contact => ("CONTACT", "Contact"),
                MessageRole::Agent => ("AGENT", "Agent"),
            };
            view! {
                <li class=format!("message role-{role}")>
                    <div class="bubble">{message.content.clone()}</div>
                    <div class="muted">{format!("{who} · {}", short_time(message.sent_at))}</div>
                </li>
            }
        })
        .collect_view();
    let results = session
        .session_results
        .filter(|r| !r.is_empty())
        .map(|r| r.iter().map(|(k, v)| format!("{k}: {}", shown(v))).collect::<Vec<_>>().join(" · "));
    let (channel, alternative) = (session.channel.filter(|c| !c.is_empty()), session.alternative.filter(|a| !a.is_empty()));
    let dom_id = format!("session-{}", session.communication_id);
    view! {
        <section class="transcript" id=dom_id>
            <div class="row">
                <h4>{title}</h4>
                {channel.map(|channel| view! { <span class="badge">{channel}</span> })}
                {alternative.map(|alternative| view! { <span class="muted">{format!("A/B {alternative}")}</span> })}
            </div>
            <ol class="messages">{messages}</ol>
            {results.map(|r| view! { <p class="muted">"Session results: " {r}</p> })}
            <SessionAnalysis campaign communication_id=session.communication_id/>
        </section>
    }
}

/// The Deep Analysis values of one session, when it has any.
#[component]
fn SessionAnalysis(campaign: String, communication_id: String) -> impl IntoView {
    let path = format!("/api/campaigns/{campaign}/analysis/sessions/{}", api::enc(&communication_id));
    let values = LocalResource::new(move || {
        let path = path.clone();
        async move { api::get::<Vec<SessionValue>>(&path).await }
    });
    let row = |v: SessionValue| {
        view! {
            <tr>
                <td><code>{v.metric}</code></td>
                <td class="result-value">{shown(&v.value)}
                    {v.error.filter(|e| !e.is_empty()).map(|error| view! { <div class="field-error">{error}</div> })}</td>
                <td class="muted">{short_time(v.computed_at)}</td>
            </tr>
        }
    };
    let table = move |list: Vec<SessionValue>| {
        (!list.is_empty()).then(|| view! {
            <table class="grid session-analysis">
                <thead><tr><th>"Deep Analysis"</th><th>"Value"</th><th>"Computed"</th></tr></thead>
                <tbody>{list.into_iter().map(row).collect_view()}</tbody>
            </table>
        })
    };
    view! {
        <Suspense fallback=|| ()>
            {move || values.get().map(|reply| match reply {
                Ok(list) => table(list).into_any(),
                Err(problem) => view! { <ProblemView problem/> }.into_any(),
            })}
        </Suspense>
    }
}
