//! Stages tab: the list (name and description, channel, agent) and the
//! stage form, which shows exactly the settings of the chosen channel, the
//! A/B alternatives and the email template with its preview and a test
//! email to an address of the author's choice. The API
//! validates; the channel rules shared with it (`stratagem_types::stage`)
//! only decide which inputs to show.

use leptos::prelude::*;
use stratagem_types::contact::{ContactDetail, ContactPage};
use stratagem_types::stage::{AgentRule, Alternative, Channel, ChannelSettings, EmailInputType, EmailTest, EmailTestSent, RenderedEmail, Setting, ALL_SETTINGS};
use stratagem_types::{Agent, Contact, Integration, Stage, StageDefinition};

use crate::api::{self, Problem};
use crate::util::{field_errors, show_problem, ConfirmButton, ProblemView};

/// The channel of a `<select>` value.
fn channel(value: &str) -> Channel {
    Channel::ALL.into_iter().find(|c| c.as_str() == value).unwrap_or(Channel::Simulated)
}

fn channel_label(channel: Channel) -> &'static str {
    match channel {
        Channel::EmailNotification => "Email Notification",
        Channel::EmailCommunication => "Email Communication",
        Channel::Human => "Human",
        Channel::Infobip => "Infobip",
        Channel::MessageBirdWhatsapp => "MessageBird (WhatsApp)",
        Channel::MessageBirdWebhook => "MessageBird Webhook (WhatsApp)",
        Channel::Whatsapp => "WhatsApp",
        Channel::MobilePush => "Mobile Push",
        Channel::Telegram => "Telegram",
        Channel::Sip => "SIP",
        Channel::Twilio => "Twilio",
        Channel::NoCommunication => "No Communication",
        Channel::Simulated => "Simulated (no accounts)",
    }
}

fn setting_label(setting: Setting) -> &'static str {
    match setting {
        Setting::IntegrationId => "Integration",
        Setting::AgentChannel => "Agent channel",
        Setting::AgentRole => "Agent role",
        Setting::EmailSubject => "Email subject",
        Setting::EmailInputType => "Email input type",
        Setting::EmailTemplate => "Email template",
        Setting::StartPhrase => "Start phrase",
        Setting::StartState => "Start state",
        Setting::ProjectId => "Project ID",
        Setting::Version => "Version",
        Setting::TemplateName => "Template name",
    }
}


type Loaded<T> = LocalResource<Result<Vec<T>, Problem>>;

/// The rows of a list resource; none while loading or failed.
fn rows<T: Clone + 'static>(list: Loaded<T>) -> Vec<T> {
    list.get().and_then(Result::ok).unwrap_or_default()
}

/// `/campaigns/:id/stages`.
#[component]
pub fn StagesTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Stages id=id.get()/> }
}

/// A new stage: SIMULATED, nothing set.
fn blank() -> StageDefinition {
    StageDefinition {
        name: String::new(),
        description: String::new(),
        channel: Channel::Simulated,
        agent_id: None,
        settings: ChannelSettings::default(),
        alternatives: Vec::new(),
    }
}

#[component]
pub fn Stages(id: String) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let path = format!("/api/campaigns/{}/stages", api::enc(&id));
    let stages: Loaded<Stage> = LocalResource::new(move || {
        reload.track();
        let path = path.clone();
        async move { api::get(&path).await }
    });
    let agents: Loaded<Agent> = LocalResource::new(|| api::get("/api/agents"));
    let integrations: Loaded<Integration> = LocalResource::new(|| api::get("/api/integrations"));
    // The stage being edited: its id (none for a new one) and definition.
    let editing = RwSignal::new(None::<(Option<String>, StageDefinition)>);
    let problem = RwSignal::new(None::<Problem>);
    let campaign = StoredValue::new(id);
    let remove = Action::new_local(|stage_id: &String| {
        let path = format!("/api/stages/{}", api::enc(stage_id));
        async move { api::delete(&path).await }
    });
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => reload.update(|n| *n += 1),
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let load_problem = move || [stages.get().and_then(Result::err), agents.get().and_then(Result::err), integrations.get().and_then(Result::err)]
        .into_iter().flatten().next().map(|problem| view! { <crate::util::ProblemView problem/> });
    view! {
        <div id="stages">
            <div class="row">
                <h3>"Stages"</h3>
                <button id="add-stage" class="primary" on:click=move |_| editing.set(Some((None, blank())))>"+ Add Stage"</button>
            </div>
            <Suspense fallback=|| ()>{load_problem}</Suspense>
            {show_problem(problem)}
            {move || editing.get().map(|(stage_id, stage)| view! {
                <StageForm campaign=campaign.get_value() stage_id stage agents integrations
                    done=Callback::new(move |_| { editing.set(None); reload.update(|n| *n += 1); })/>
            })}
            <StageTable stages agents editing remove=Callback::new(move |id| { remove.dispatch_local(id); })/>
        </div>
    }
}

#[component]
fn StageTable(
    stages: Loaded<Stage>,
    agents: Loaded<Agent>,
    editing: RwSignal<Option<(Option<String>, StageDefinition)>>,
    remove: Callback<String>,
) -> impl IntoView {
    let agent_name = move |id: &str| {
        rows(agents).into_iter().find(|a| a.id == id).map(|a| a.definition.name).unwrap_or_else(|| id.to_owned())
    };
    let row = move |stage: Stage| {
        let d = &stage.definition;
        let agent = d.agent_id.as_deref().map(agent_name).unwrap_or_else(|| "no agent".into());
        let ab = (!d.alternatives.is_empty())
            .then(|| format!(" · A/B: {}", d.alternatives.iter().map(|a| format!("{} {}%", a.label, a.weight)).collect::<Vec<_>>().join(", ")));
        let (stage_id, for_edit) = (stage.id.clone(), (Some(stage.id.clone()), stage.definition.clone()));
        view! {
            <tr>
                <td><strong>{d.name.clone()}</strong><div class="muted">{d.description.clone()}</div></td>
                <td>{channel_label(d.channel)}<div class="muted">{agent}{ab}</div></td>
                <td class="actions">
                    <button on:click=move |_| editing.set(Some(for_edit.clone()))>"Edit"</button>
                    <ConfirmButton label="Delete" question=format!("Delete stage “{}”? Communications already planned for it fail when they come due.", d.name)
                        on_confirm=Callback::new(move |()| remove.run(stage_id.clone()))/>
                </td>
            </tr>
        }
    };
    view! {
        <table class="grid" id="stage-table">
            <thead><tr><th>"Name"</th><th>"Configs"</th><th></th></tr></thead>
            <tbody>
                <Transition fallback=|| ()>{move || rows(stages).into_iter().map(row).collect_view()}</Transition>
            </tbody>
        </table>
    }
}

/// One way the draft reaches a contact: the stage's own (`None`) or
/// alternative N's channel, agent and settings.
fn choice<R>(d: &StageDefinition, at: Option<usize>, read: impl FnOnce(Channel, Option<&str>, &ChannelSettings) -> R) -> Option<R> {
    match at {
        None => Some(read(d.channel, d.agent_id.as_deref(), &d.settings)),
        Some(i) => d.alternatives.get(i).map(|a| read(a.channel, a.agent_id.as_deref(), &a.settings)),
    }
}

fn edit_choice(draft: RwSignal<StageDefinition>, at: Option<usize>, write: impl FnOnce(&mut Channel, &mut Option<String>, &mut ChannelSettings)) {
    draft.update(|d| match at {
        None => write(&mut d.channel, &mut d.agent_id, &mut d.settings),
        Some(i) => {
            if let Some(a) = d.alternatives.get_mut(i) {
                write(&mut a.channel, &mut a.agent_id, &mut a.settings);
            }
        }
    });
}

/// Only the settings the channel takes, none left empty; no agent where
/// the channel takes none.
fn clean(channel: Channel, agent_id: &mut Option<String>, settings: &mut ChannelSettings) {
    if channel.rules().agent == AgentRule::NotUsed || agent_id.as_deref() == Some("") {
        *agent_id = None;
    }
    for setting in ALL_SETTINGS {
        if !channel.takes(setting) {
            settings.set_text(setting, None);
            if setting == Setting::EmailInputType {
                settings.email_input_type = None;
            }
        } else if settings.text(setting) == Some("") {
            settings.set_text(setting, None);
        }
    }
}

fn body(draft: &StageDefinition, ab: bool) -> StageDefinition {
    let mut stage = draft.clone();
    clean(stage.channel, &mut stage.agent_id, &mut stage.settings);
    if !ab {
        stage.alternatives.clear();
    }
    for alternative in &mut stage.alternatives {
        clean(alternative.channel, &mut alternative.agent_id, &mut alternative.settings);
    }
    stage
}

#[component]
fn StageForm(
    campaign: String,
    stage_id: Option<String>,
    stage: StageDefinition,
    agents: Loaded<Agent>,
    integrations: Loaded<Integration>,
    done: Callback<()>,
) -> impl IntoView {
    let is_new = stage_id.is_none();
    let ab = RwSignal::new(!stage.alternatives.is_empty());
    let draft = RwSignal::new(stage);
    let problem = RwSignal::new(None::<Problem>);
    let save = Action::new_local(move |stage: &StageDefinition| {
        let stage = stage.clone();
        let path = match &stage_id {
            None => format!("/api/campaigns/{}/stages", api::enc(&campaign)),
            Some(id) => format!("/api/stages/{}", api::enc(id)),
        };
        async move {
            if is_new { api::post::<Stage>(&path, &stage).await } else { api::put::<Stage>(&path, &stage).await }
        }
    });
    Effect::new(move |_| match save.value().get() {
        Some(Ok(_)) => done.run(()),
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch_local(draft.with_untracked(|d| body(d, ab.get_untracked())));
    };
    view! {
        <form class="card form" id="stage-form" on:submit=submit>
            <h4>{if is_new { "Create stage" } else { "Edit stage" }}</h4>
            <label>"Name"
                <input id="stage-name" prop:value=move || draft.with(|d| d.name.clone()) on:input=move |ev| draft.update(|d| d.name = event_target_value(&ev))/>
                {field_errors(problem, "name".into())}
            </label>
            <label>"Description"
                <textarea id="stage-description" prop:value=move || draft.with(|d| d.description.clone()) on:input=move |ev| draft.update(|d| d.description = event_target_value(&ev))></textarea>
            </label>
            <ChannelFields draft at=None agents integrations problem/>
            <Alternatives draft ab agents integrations problem/>
            <div class="row">
                <button type="submit" class="primary" id="save-stage">"Save"</button>
                <button type="button" on:click=move |_| done.run(())>"Cancel"</button>
            </div>
            {show_problem(problem)}
        </form>
    }
}

/// The A/B toggle and each alternative: label, weight, channel and its settings.
#[component]
fn Alternatives(
    draft: RwSignal<StageDefinition>,
    ab: RwSignal<bool>,
    agents: Loaded<Agent>,
    integrations: Loaded<Integration>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    let count = Memo::new(move |_| draft.with(|d| d.alternatives.len()));
    let add = move |_| draft.update(|d| d.alternatives.push(Alternative {
        label: String::new(),
        weight: 10,
        channel: Channel::Simulated,
        agent_id: None,
        settings: ChannelSettings::default(),
    }));
    view! {
        <div class="row">
            <label class="toggle"><input type="checkbox" id="ab-toggle" prop:checked=move || ab.get() on:change=move |ev| ab.set(event_target_checked(&ev))/>"A/B testing"</label>
            {move || ab.get().then(|| view! { <button type="button" id="add-alternative" on:click=add>"+ Add"</button> })}
        </div>
        {field_errors(problem, "alternatives".into())}
        {move || ab.get().then(|| (0..count.get()).map(|i| view! { <AlternativeFields draft i agents integrations problem/> }).collect_view())}
    }
}

#[component]
fn AlternativeFields(
    draft: RwSignal<StageDefinition>,
    i: usize,
    agents: Loaded<Agent>,
    integrations: Loaded<Integration>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    let prefix = format!("alternatives[{i}].");
    let read = move |f: fn(&Alternative) -> String| move || draft.with(|d| d.alternatives.get(i).map(f).unwrap_or_default());
    let write = move |f: fn(&mut Alternative, String), value: String| draft.update(|d| if let Some(a) = d.alternatives.get_mut(i) { f(a, value) });
    // The weight as typed; the draft holds the number it reads as.
    let weight = RwSignal::new(read(|a| a.weight.to_string())());
    view! {
        <fieldset class="alternative">
            <legend>{format!("Alternative {}", i + 1)}</legend>
            <div class="row">
                <label>"Label"<input prop:value=read(|a| a.label.clone()) on:input=move |ev| write(|a, v| a.label = v, event_target_value(&ev))/>
                    {field_errors(problem, format!("{prefix}label"))}</label>
                <label>"Weight (%)"<input type="number" min="1" max="100" prop:value=move || weight.get()
                    on:input=move |ev| { let typed = event_target_value(&ev); write(|a, v| a.weight = v.trim().parse().unwrap_or(0), typed.clone()); weight.set(typed); }/>
                    {field_errors(problem, format!("{prefix}weight"))}</label>
                <button type="button" class="danger" on:click=move |_| draft.update(|d| { if i < d.alternatives.len() { d.alternatives.remove(i); } })>"Remove"</button>
            </div>
            <ChannelFields draft at=Some(i) agents integrations problem/>
        </fieldset>
    }
}

/// Channel, agent and the channel's own settings, for the stage (`at`
/// None) or one of its alternatives.
#[component]
fn ChannelFields(
    draft: RwSignal<StageDefinition>,
    at: Option<usize>,
    agents: Loaded<Agent>,
    integrations: Loaded<Integration>,
    problem: RwSignal<Option<Problem>>,
) -> impl IntoView {
    let prefix = at.map(|i| format!("alternatives[{i}].")).unwrap_or_default();
    let id_prefix = at.map(|i| format!("alt{i}-")).unwrap_or_default();
    let current = Memo::new(move |_| draft.with(|d| choice(d, at, |channel, _, _| channel)).unwrap_or(Channel::Simulated));
    let (field_prefix, field_id) = (prefix.clone(), id_prefix.clone());
    view! {
        <label>"Channel"
            <select id=format!("{id_prefix}stage-channel") prop:value=move || current.get().as_str()
                on:change=move |ev| edit_choice(draft, at, |c, _, _| *c = channel(&event_target_value(&ev)))>
                {Channel::ALL.into_iter().map(|c| view! { <option value=c.as_str()>{channel_label(c)}</option> }).collect_view()}
            </select>
            {field_errors(problem, format!("{prefix}channel"))}
        </label>
        {move || {
            let channel = current.get();
            let rules = channel.rules();
            let agent = (rules.agent != AgentRule::NotUsed).then(|| view! {
                <AgentSelect draft at required=rules.agent == AgentRule::Required agents problem prefix=field_prefix.clone() id_prefix=field_id.clone()/>
            });
            let settings = rules.required.iter().map(|s| (*s, true)).chain(rules.optional.iter().map(|s| (*s, false)))
                .filter(|(s, _)| *s != Setting::EmailInputType)
                .map(|(setting, required)| view! {
                    <SettingInput draft at setting required channel integrations problem prefix=field_prefix.clone() id_prefix=field_id.clone()/>
                })
                .collect_view();
            view! { {agent} <div class="settings">{settings}</div> }
        }}
    }
}

#[component]
fn AgentSelect(
    draft: RwSignal<StageDefinition>,
    at: Option<usize>,
    required: bool,
    agents: Loaded<Agent>,
    problem: RwSignal<Option<Problem>>,
    prefix: String,
    id_prefix: String,
) -> impl IntoView {
    let star = if required { " *" } else { "" };
    let value = move || draft.with(|d| choice(d, at, |_, agent, _| agent.unwrap_or_default().to_owned()).unwrap_or_default());
    let write = move |v: String| edit_choice(draft, at, |_, agent, _| *agent = (!v.is_empty()).then_some(v));
    view! {
        <label>{format!("Agent{star}")}
            <select id=format!("{id_prefix}stage-agent") prop:value=value on:change=move |ev| write(event_target_value(&ev))>
                <option value="">"— none —"</option>
                {move || rows(agents).into_iter().map(|a| view! {
                    <option value=a.id.clone()>{format!("{} ({})", a.definition.name, a.definition.status.as_str())}</option>
                }).collect_view()}
            </select>
            {field_errors(problem, format!("{prefix}agent_id"))}
        </label>
    }
}

#[component]
fn SettingInput(
    draft: RwSignal<StageDefinition>,
    at: Option<usize>,
    setting: Setting,
    required: bool,
    channel: Channel,
    integrations: Loaded<Integration>,
    problem: RwSignal<Option<Problem>>,
    prefix: String,
    id_prefix: String,
) -> impl IntoView {
    let label = format!("{}{}", setting_label(setting), if required { " *" } else { "" });
    let name = setting.name();
    let errors = field_errors(problem, format!("{prefix}settings.{name}"));
    let dom_id = format!("{id_prefix}setting-{name}");
    let value = move || draft.with(|d| choice(d, at, |_, _, s| s.text(setting).unwrap_or_default().to_owned()).unwrap_or_default());
    let write = move |v: String| edit_choice(draft, at, |_, _, s| s.set_text(setting, Some(v)));
    match setting {
        Setting::IntegrationId => {
            let kind = channel.integration_kind();
            let options = move || rows(integrations).into_iter().filter(|i| kind.is_none_or(|k| i.kind == k))
                .map(|i| view! { <option value=i.id.clone()>{format!("{} ({})", i.name, i.kind.as_str())}</option> })
                .collect_view();
            view! {
                <label>{label}
                    <select id=dom_id prop:value=value on:change=move |ev| write(event_target_value(&ev))>
                        <option value="">"— none —"</option>
                        {options}
                    </select>
                    {errors}
                </label>
            }
            .into_any()
        }
        Setting::EmailTemplate => view! { <EmailTemplate draft at label dom_id errors=errors.into_any()/> }.into_any(),
        _ => view! {
            <label>{label}
                <input id=dom_id prop:value=value on:input=move |ev| write(event_target_value(&ev))/>
                {errors}
            </label>
        }
        .into_any(),
    }
}

/// The Default editor: formatted text edited in place (bold, italic,
/// underline, links, lists), its HTML the template. The service sanitizes
/// that HTML to what this editor makes before anything is sent.
#[component]
fn RichText(dom_id: String, initial: String, write: Callback<String>) -> impl IntoView {
    use wasm_bindgen::JsCast;
    let editor = NodeRef::<leptos::html::Div>::new();
    let save = move || {
        if let Some(element) = editor.get_untracked() {
            write.run(element.inner_html());
        }
    };
    let command = move |name: &str, value: &str| {
        let Some(document) = web_sys::window().and_then(|window| window.document()) else { return };
        if let Some(element) = editor.get_untracked() {
            let _ = element.focus();
        }
        let _ = document.unchecked_into::<web_sys::HtmlDocument>().exec_command_with_show_ui_and_value(name, false, value);
        save();
    };
    let link = move |_| {
        let address = web_sys::window().and_then(|window| window.prompt_with_message_and_default("Link address", "https://").ok().flatten());
        if let Some(address) = address.filter(|address| !address.trim().is_empty() && address.trim() != "https://") {
            command("createLink", address.trim());
        }
    };
    // A mousedown would move the focus, and the selection, off the text.
    let keep_selection = |ev: web_sys::MouseEvent| ev.prevent_default();
    view! {
        <div class="rich-toolbar" role="toolbar" aria-label="Formatting">
            <button type="button" title="Bold" id=format!("{dom_id}-bold") on:mousedown=keep_selection on:click=move |_| command("bold", "")><b>"B"</b></button>
            <button type="button" title="Italic" on:mousedown=keep_selection on:click=move |_| command("italic", "")><i>"I"</i></button>
            <button type="button" title="Underline" on:mousedown=keep_selection on:click=move |_| command("underline", "")><u>"U"</u></button>
            <button type="button" title="Link" id=format!("{dom_id}-link") on:mousedown=keep_selection on:click=link>"Link"</button>
            <button type="button" title="Bulleted list" on:mousedown=keep_selection on:click=move |_| command("insertUnorderedList", "")>"• List"</button>
            <button type="button" title="Numbered list" on:mousedown=keep_selection on:click=move |_| command("insertOrderedList", "")>"1. List"</button>
        </div>
        <div id=dom_id class="rich-text" contenteditable="true" role="textbox" aria-multiline="true" node_ref=editor
            inner_html=editable_html(&initial) on:input=move |_| save()></div>
    }
}

/// A template as the rich-text editor shows it: its HTML, or plain text
/// (no tag) as paragraphs and line breaks, the way it is sent.
fn editable_html(template: &str) -> String {
    if stratagem_types::stage::has_markup(template) {
        return template.to_owned();
    }
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    template
        .split("\n\n")
        .map(str::trim)
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| format!("<p>{}</p>", escape(paragraph).replace('\n', "<br>")))
        .collect()
}

/// The Default/HTML toggle, the template and its preview: rendered by the
/// service as the chosen contact of the campaign would get it (a sample
/// contact until one is chosen), so placeholders show real values and a
/// bad one its error. Below it, the same email sent as a test to an
/// address, through the stage's integration: "Sent to …" once the SMTP
/// server took it, else what went wrong in words.
#[component]
fn EmailTemplate(draft: RwSignal<StageDefinition>, at: Option<usize>, label: String, dom_id: String, errors: AnyView) -> impl IntoView {
    let html = Memo::new(move |_| draft.with(|d| choice(d, at, |_, _, s| s.email_input_type == Some(EmailInputType::Html)).unwrap_or(false)));
    let value = move || draft.with(|d| choice(d, at, |_, _, s| s.email_template.clone().unwrap_or_default()).unwrap_or_default());
    let subject = move || draft.with(|d| choice(d, at, |_, _, s| s.email_subject.clone().unwrap_or_default()).unwrap_or_default());
    let write = move |v: String| edit_choice(draft, at, |_, _, s| s.email_template = Some(v));
    let set_type = move |kind: EmailInputType| edit_choice(draft, at, |_, _, s| s.email_input_type = Some(kind));
    let campaign = crate::campaign::open().id;
    let contacts = LocalResource::new(move || {
        let path = format!("/api/campaigns/{}/contacts?limit=50", api::enc(&campaign.get()));
        async move { api::get::<ContactPage>(&path).await }
    });
    let chosen = RwSignal::new(String::new());
    let rendered = LocalResource::new(move || {
        let (subject, template, html, chosen, campaign) = (subject(), value(), html.get(), chosen.get(), campaign.get());
        async move {
            let contact = chosen_contact(&campaign, &chosen).await?;
            let input = if html { EmailInputType::Html } else { EmailInputType::Default };
            let body = serde_json::json!({"email_subject": subject, "email_template": template, "email_input_type": input, "contact": contact});
            api::post::<RenderedEmail>("/api/email/preview", &body).await
        }
    });
    // A test email: the draft as the preview shows it, sent by the service
    // through the stage's integration (or its agent's channel) to one address.
    let address = RwSignal::new(String::new());
    let send_test = Action::new_local(move |_: &()| {
        let (to, chosen, campaign, html) = (address.get_untracked(), chosen.get_untracked(), campaign.get_untracked(), html.get_untracked());
        let (agent_id, settings) = draft.with_untracked(|d| choice(d, at, |_, agent, s| (agent.map(str::to_owned), s.clone()))).unwrap_or_default();
        async move {
            let contact = chosen_contact(&campaign, &chosen).await?;
            let test = EmailTest {
                to,
                email_subject: settings.email_subject.unwrap_or_default(),
                email_template: settings.email_template.unwrap_or_default(),
                email_input_type: if html { EmailInputType::Html } else { EmailInputType::Default },
                contact,
                integration_id: settings.integration_id.filter(|id| !id.is_empty()),
                agent_id: agent_id.filter(|id| !id.is_empty()),
                agent_channel: settings.agent_channel.filter(|name| !name.is_empty()),
            };
            api::post::<EmailTestSent>("/api/email/test", &test).await
        }
    });
    let sending = send_test.pending();
    let test_result = move || match send_test.value().get() {
        _ if sending.get() => view! { <p class="muted">"Sending…"</p> }.into_any(),
        Some(Ok(sent)) => view! { <p class="sent">{format!("Sent to {} — “{}”", sent.to, sent.subject)}</p> }.into_any(),
        Some(Err(problem)) => view! { <ProblemView problem/> }.into_any(),
        None => ().into_any(),
    };
    // Enter in the address sends the test, not the stage form around it.
    let on_address_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" {
            ev.prevent_default();
            if !sending.get_untracked() {
                send_test.dispatch_local(());
            }
        }
    };
    let options = move || {
        let page = contacts.get().and_then(Result::ok).map(|page| page.contacts).unwrap_or_default();
        page.into_iter().map(|c| view! { <option value=c.object_id.clone()>{format!("{} ({})", c.name, c.object_id)}</option> }).collect_view()
    };
    // No inline style in the HTML: the srcdoc document inherits the UI's CSP.
    let preview = move || match rendered.get() {
        Some(Ok(email)) => view! {
            <div class="preview-subject">{email.subject}</div>
            <iframe class="preview" sandbox="" title="Email template preview" srcdoc=email.html></iframe>
        }
        .into_any(),
        Some(Err(problem)) => view! { <p class="field-error">{problem.detail}</p> }.into_any(),
        None => view! { <p class="muted">"Rendering…"</p> }.into_any(),
    };
    let preview_id = format!("{dom_id}-preview");
    view! {
        <div class="email-template">
            <div class="row">
                <span>"Email input type"</span>
                <label class="toggle"><input type="radio" id=format!("{dom_id}-default") name=format!("{dom_id}-type") prop:checked=move || !html.get() on:change=move |_| set_type(EmailInputType::Default)/>"Default"</label>
                <label class="toggle"><input type="radio" id=format!("{dom_id}-html") name=format!("{dom_id}-type") prop:checked=move || html.get() on:change=move |_| set_type(EmailInputType::Html)/>"HTML"</label>
            </div>
            <label>{label}</label>
            {
                let dom_id = dom_id.clone();
                move || if html.get() {
                    view! { <textarea id=dom_id.clone() rows="8" class="code" prop:value=value on:input=move |ev| write(event_target_value(&ev))></textarea> }.into_any()
                } else {
                    let initial = draft.with_untracked(|d| choice(d, at, |_, _, s| s.email_template.clone().unwrap_or_default()).unwrap_or_default());
                    view! { <RichText dom_id=dom_id.clone() initial write=Callback::new(write)/> }.into_any()
                }
            }
            {errors}
            <div class="row preview-label">
                <span>"Email template preview for"</span>
                <select id=format!("{dom_id}-preview-contact") on:change=move |ev| chosen.set(event_target_value(&ev))>
                    <option value="">"a sample contact"</option>
                    {options}
                </select>
            </div>
            <div id=preview_id><Transition fallback=|| ()>{preview}</Transition></div>
            <div class="row test-email">
                <label>"Send a test email to"
                    <input id=format!("{dom_id}-test-address") type="text" inputmode="email" autocomplete="email" placeholder="you@example.com"
                        prop:value=move || address.get() on:input=move |ev| address.set(event_target_value(&ev)) on:keydown=on_address_key/>
                </label>
                <button type="button" id=format!("{dom_id}-test-send") disabled=move || sending.get()
                    on:click=move |_| { send_test.dispatch_local(()); }>{move || if sending.get() { "Sending…" } else { "Send test email" }}</button>
            </div>
            <p class="muted">"As the preview shows it, through the stage's integration."</p>
            <div id=format!("{dom_id}-test-result") aria-live="polite">{test_result}</div>
        </div>
    }
}

/// The campaign's contact `object_id` as a preview or test email renders
/// for it; `None` (a sample contact) when none is chosen.
async fn chosen_contact(campaign: &str, object_id: &str) -> Result<Option<Contact>, Problem> {
    if object_id.is_empty() {
        return Ok(None);
    }
    let path = format!("/api/campaigns/{}/contacts/{}", api::enc(campaign), api::enc(object_id));
    Ok(Some(api::get::<ContactDetail>(&path).await?.contact.contact))
}
