//! Strategies tab: the list (name, type, build status), upload of a .py
//! file or pasted code, and the code view/editor with Python highlighting.
//! Builds run in the background: the tab polls until ready or failed, and
//! a failed build marks its error line.

use leptos::prelude::*;
use serde_json::json;
use stratagem_types::strategy::{BuildError, BuildPhase, BuildStatus, StrategyView};

use crate::api::{self, Problem};
use crate::util::{show_problem, ConfirmButton, ProblemView};

fn building(strategy: &StrategyView) -> bool {
    strategy.latest.status == BuildStatus::Building
}

/// The status as shown. A build says where it is — waiting for a slot,
/// building the Python, compiling — and how long since the upload; the
/// list and the editor poll while it builds, which moves the clock.
fn build_label(strategy: &StrategyView) -> String {
    let latest = &strategy.latest;
    let waited = (js_sys::Date::now() - latest.created_at.timestamp_millis() as f64).max(0.0) / 1000.0;
    let elapsed = match waited as u64 {
        seconds @ 0..60 => format!("{seconds} s"),
        seconds => format!("{} min {:02} s", seconds / 60, seconds % 60),
    };
    match (latest.phase, latest.queue_position) {
        (Some(BuildPhase::Queued), Some(position)) => format!("queued, {position} in line · {elapsed}"),
        (Some(BuildPhase::Queued), None) => format!("queued · {elapsed}"),
        (Some(BuildPhase::Building), _) => format!("building Python · {elapsed}"),
        (Some(BuildPhase::Compiling), _) => format!("compiling · {elapsed}"),
        (None, _) => latest.status.as_str().to_owned(),
    }
}

/// `/campaigns/:id/strategies`.
#[component]
pub fn StrategiesTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Strategies id=id.get()/> }
}

type List = LocalResource<Result<Vec<StrategyView>, Problem>>;

#[component]
pub fn Strategies(id: String) -> impl IntoView {
    let path = format!("/api/campaigns/{}/strategies", api::enc(&id));
    let strategies: List = LocalResource::new(move || {
        let path = path.clone();
        async move { api::get(&path).await }
    });
    let open = RwSignal::new(None::<String>);
    let problem = RwSignal::new(None::<Problem>);
    // Poll while any build is running.
    crate::util::every(1000, move || {
        if strategies.with_untracked(|list| list.as_ref().and_then(|l| l.as_ref().ok()).is_some_and(|l| l.iter().any(building))) {
            strategies.refetch();
        }
    });
    let remove = Action::new_local(|strategy_id: &String| {
        let path = format!("/api/strategies/{}", api::enc(strategy_id));
        async move { api::delete(&path).await }
    });
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => {
            open.set(None);
            strategies.refetch();
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    view! {
        <div id="strategies">
            <h3>"Strategies"</h3>
            <Transition fallback=|| ()>{move || strategies.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> })}</Transition>
            {show_problem(problem)}
            <StrategyTable strategies open remove=Callback::new(move |id| { remove.dispatch_local(id); })/>
            {move || open.get().map(|strategy_id| view! { <StrategyEditor strategy_id on_saved=Callback::new(move |_| strategies.refetch())/> })}
            <Upload campaign=id on_uploaded=Callback::new(move |strategy_id| { open.set(Some(strategy_id)); strategies.refetch(); })/>
        </div>
    }
}

#[component]
fn StrategyTable(strategies: List, open: RwSignal<Option<String>>, remove: Callback<String>) -> impl IntoView {
    let row = move |strategy: StrategyView| {
        let status = strategy.latest.status.as_str();
        let (view_id, delete_id) = (strategy.id.clone(), strategy.id.clone());
        let active = strategy.active_version.map(|v| format!("v{v}")).unwrap_or_else(|| "none".into());
        view! {
            <tr>
                <td>{strategy.name.clone()}</td>
                <td>{strategy.kind.as_str()}</td>
                <td><span class=format!("badge build-{status}")>{format!("{} (v{})", build_label(&strategy), strategy.latest.version)}</span></td>
                <td>{active}</td>
                <td class="actions">
                    <button on:click=move |_| open.set(Some(view_id.clone()))>"View / Edit"</button>
                    <ConfirmButton label="Delete" question=format!("Delete strategy “{}” and all its versions?", strategy.name)
                        on_confirm=Callback::new(move |()| remove.run(delete_id.clone()))/>
                </td>
            </tr>
        }
    };
    view! {
        <table class="grid" id="strategy-table">
            <thead><tr><th>"Name"</th><th>"Type"</th><th>"Build"</th><th>"Active version"</th><th></th></tr></thead>
            <tbody>
                <Transition fallback=|| ()>
                    {move || strategies.get().and_then(Result::ok).unwrap_or_default().into_iter().map(row).collect_view()}
                </Transition>
            </tbody>
        </table>
    }
}

/// What an upload sends: a name, a type and one Python file.
#[derive(Clone)]
struct NewStrategy {
    name: String,
    kind: String,
    file_name: String,
    source: String,
}

#[component]
fn Upload(campaign: String, on_uploaded: Callback<String>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("DATA_LOAD".to_owned());
    let file_name = RwSignal::new("strategy.py".to_owned());
    let source = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let path = format!("/api/campaigns/{}/strategies", api::enc(&campaign));
    let upload = Action::new_local(move |new: &NewStrategy| {
        let body = json!({"name": new.name, "type": new.kind, "file_name": new.file_name, "source": new.source});
        let path = path.clone();
        async move { api::post::<StrategyView>(&path, &body).await }
    });
    Effect::new(move |_| match upload.value().get() {
        Some(Ok(strategy)) => {
            problem.set(None);
            name.set(String::new());
            source.set(String::new());
            file_name.set("strategy.py".into());
            on_uploaded.run(strategy.id);
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let choose_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        let chosen = file.name();
        leptos::task::spawn_local(async move {
            match api::file_text(&file).await {
                Ok(code) => {
                    if name.get_untracked().is_empty() {
                        name.set(chosen.trim_end_matches(".py").to_owned());
                    }
                    file_name.set(chosen);
                    source.set(code);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let [name, kind, file_name, source] = [name, kind, file_name, source].map(|s| s.get_untracked());
        upload.dispatch_local(NewStrategy { name, kind, file_name, source });
    };
    view! {
        <form class="card form" id="strategy-upload" on:submit=submit>
            <h4>"Upload a strategy"</h4>
            <div class="row">
                <label>"Name"<input id="strategy-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label>"Type"
                    <select id="strategy-type" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="DATA_LOAD">"DATA_LOAD"</option>
                        <option value="AGGREGATION">"AGGREGATION"</option>
                        <option value="CONTACT_ANSWER">"CONTACT_ANSWER"</option>
                    </select>
                </label>
                <label>".py file"<input id="strategy-file" type="file" accept=".py,text/x-python" on:change=choose_file/></label>
            </div>
            <label>"…or paste the code (" {move || file_name.get()} ")"
                <textarea id="strategy-source" class="code" rows="8" prop:value=move || source.get() on:input=move |ev| source.set(event_target_value(&ev))></textarea>
            </label>
            <button type="submit" class="primary" id="upload-strategy">"Upload"</button>
            {show_problem(problem)}
        </form>
    }
}

/// One strategy's latest version: its build and its code, editable; polled
/// while it builds. `on_saved` runs after a save and when a build ends.
#[component]
fn StrategyEditor(strategy_id: String, on_saved: Callback<()>) -> impl IntoView {
    let strategy = RwSignal::new(None::<StrategyView>);
    let code = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let path = format!("/api/strategies/{}", api::enc(&strategy_id));
    let loaded = LocalResource::new({
        let path = path.clone();
        move || {
            let path = path.clone();
            async move { api::get::<StrategyView>(&path).await }
        }
    });
    crate::util::every(1000, move || {
        if strategy.with_untracked(|s| s.as_ref().is_some_and(building)) {
            loaded.refetch();
        }
    });
    let save = Action::new_local(move |body: &serde_json::Value| {
        let (path, body) = (path.clone(), body.clone());
        async move { api::put::<StrategyView>(&path, &body).await }
    });
    // The first answer brings the code; a build that ended tells the list.
    Effect::new(move |_| match loaded.get() {
        Some(Ok(value)) => {
            if strategy.with_untracked(|s| s.as_ref().is_some_and(building)) && !building(&value) {
                on_saved.run(());
            }
            if strategy.with_untracked(Option::is_none) {
                code.set(value.latest.sources.get(&value.latest.entry).cloned().unwrap_or_default());
                file.set(value.latest.entry.clone());
            }
            strategy.set(Some(value));
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    Effect::new(move |_| match save.value().get() {
        Some(Ok(value)) => {
            strategy.set(Some(value));
            problem.set(None);
            on_saved.run(());
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let on_save = move |_| {
        save.dispatch_local(json!({"source": code.get_untracked(), "file_name": file.get_untracked()}));
    };
    // The version that runs: its recent invocations below the editor.
    let active = Memo::new(move |_| strategy.with(|s| s.as_ref().and_then(|s| Some((s.id.clone(), s.active_version?)))));
    view! {
        <div class="card" id="strategy-editor">
            {move || strategy.get().map(|strategy| view! { <BuildHeader strategy/> })}
            <div class="muted">{move || file.get()}</div>
            <CodeEditor code strategy/>
            <div class="row">
                <button class="primary" id="save-strategy" on:click=on_save>"Save as new version"</button>
            </div>
            {show_problem(problem)}
        </div>
        {move || active.get().map(|(strategy_id, version)| view! { <crate::invocations::VersionInvocationsCard strategy_id version/> })}
    }
}

/// The strategy's name, type, version and build status, and its build
/// error with where it is.
#[component]
fn BuildHeader(strategy: StrategyView) -> impl IntoView {
    let status = strategy.latest.status.as_str();
    let error = strategy.latest.error.clone().map(|error: BuildError| {
        let place = match error.python.as_ref().and_then(|p| Some((p.file.clone()?, p.line?, p.column))) {
            Some((file, line, column)) => format!("{file}, line {line}{}: ", column.map(|c| format!(", column {c}")).unwrap_or_default()),
            None => String::new(),
        };
        // A Python error's detail starts with its place already.
        let place = if error.detail.starts_with(&place) { String::new() } else { place };
        view! { <div class="problem" id="build-error"><strong>"Build failed: "</strong>{place}<pre>{error.detail}</pre></div> }
    });
    view! {
        <div class="row">
            <h4>{format!("{} · {} · v{}", strategy.name, strategy.kind.as_str(), strategy.latest.version)}</h4>
            <span id="strategy-build-status" class=format!("badge build-{status}")>{build_label(&strategy)}</span>
        </div>
        {error}
    }
}

/// The code under its highlighting, the build error's line marked when it
/// is in this file.
#[component]
fn CodeEditor(code: RwSignal<String>, strategy: RwSignal<Option<StrategyView>>) -> impl IntoView {
    let error_line = Memo::new(move |_| {
        strategy.with(|s| {
            let latest = &s.as_ref()?.latest;
            let python = latest.error.as_ref()?.python.as_ref()?;
            let same_file = python.file.as_ref().is_none_or(|f| *f == latest.entry);
            python.line.map(u64::from).filter(|_| same_file)
        })
    });
    let highlighted = move || crate::python::highlight(&code.get(), error_line.get());
    let lines = move || code.with(|c| c.split('\n').count());
    view! {
        <div class="code-editor">
            <div class="layer">
                <pre class="highlight" aria-hidden="true" inner_html=highlighted></pre>
                <textarea id="strategy-code" spellcheck="false" wrap="off" rows=move || lines().to_string()
                    prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))></textarea>
            </div>
        </div>
    }
}
