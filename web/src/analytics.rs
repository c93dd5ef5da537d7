//! The campaign's analytics panel: metric tiles from the overview, and
//! three stacked bar charts of the distribution by period — by stage, by
//! status, and the delivery failures by stage — and the link to its Deep
//! Analysis (`crate::deep_analysis`).
//!
//! The charts show the campaign's own span by default (from the day it
//! started, or was created, to today, in the browser's time zone) in
//! buckets sized to stay readable (`Period::readable`); the user may
//! change both. Each chart is drawn at the pixel width it has (measured,
//! and again when the window is resized), so its text stays the size of
//! the page's text on a phone and on a wide screen alike.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use leptos::prelude::*;
use stratagem_types::analytics::{Distribution, Overview, Period, IN_DOUBT_SUFFIX};
use stratagem_types::{CommunicationStatus, Stage};

use crate::api;
use crate::util::ProblemView;

pub(crate) const COLORS: [&str; 8] = ["#3b6fd8", "#2e9d62", "#e08a1e", "#c2412d", "#7d52c7", "#1c9bb0", "#8a8f98", "#c7a21c"];

/// `/campaigns/:id` and `/campaigns/:id/analytics`.
#[component]
pub fn AnalyticsTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Analytics id=id.get()/> }
}

/// A day as the date inputs and the API write it.
fn iso(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// The browser's local day of `time`.
fn local_day(time: DateTime<Utc>) -> Option<NaiveDate> {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(time.timestamp_millis() as f64));
    NaiveDate::from_ymd_opt(date.get_full_year() as i32, date.get_month() + 1, date.get_date())
}

/// Today in the browser's time zone (`Utc::now` has no clock on wasm32;
/// the browser's is read).
fn today() -> NaiveDate {
    let now = DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default();
    local_day(now).unwrap_or_default()
}

#[component]
pub fn Analytics(id: String) -> impl IntoView {
    let campaign = crate::campaign::open().campaign;
    // The range and bucket size: unset until the campaign is loaded, then
    // its own span, once; from there on the user's.
    let period = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let ready = RwSignal::new(false);
    let own = id.clone();
    Effect::new(move |_| {
        if ready.get_untracked() {
            return;
        }
        let loaded = campaign.with(|reply| reply.as_ref().and_then(|r| r.as_ref().ok()).filter(|c| c.id == own).cloned());
        let Some(loaded) = loaded else { return };
        let today = today();
        let start = local_day(loaded.started_at.unwrap_or(loaded.created_at)).unwrap_or(today).min(today);
        from.set(iso(start));
        to.set(iso(today));
        period.set(Period::readable(start, today).as_str().to_owned());
        ready.set(true);
    });
    let tz = crate::util::time_zone();
    let refresh = RwSignal::new(0u32);
    let path = format!("/api/campaigns/{}/analytics/overview", api::enc(&id));
    let overview = LocalResource::new(move || {
        refresh.track();
        let path = path.clone();
        async move { api::get::<Overview>(&path).await }
    });
    // The campaign's stages, in their order, give each stage its colour.
    let stages_path = format!("/api/campaigns/{}/stages", api::enc(&id));
    let stages = LocalResource::new(move || {
        let path = stages_path.clone();
        async move { api::get::<Vec<Stage>>(&path).await }
    });
    let stage_order = Signal::derive(move || {
        stages.with(|reply| {
            let mut listed: Vec<(i64, String)> = reply
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|stages| stages.iter().map(|s| (s.position, s.definition.name.clone())).collect())
                .unwrap_or_default();
            listed.sort();
            listed.into_iter().map(|(_, name)| name).collect::<Vec<String>>()
        })
    });
    crate::util::every(5000, move || refresh.update(|n| *n += 1));
    let overview_problem = move || overview.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> });
    let deep_analysis = format!("/campaigns/{id}/analytics/deep-analysis");
    let charts = move || {
        let tz = tz.clone();
        let id = id.clone();
        ready.get().then(|| {
            view! {
                <div class="row controls">
                    <label>"Period"
                        <select id="analytics-period" prop:value=move || period.get() on:change=move |ev| period.set(event_target_value(&ev))>
                            <option value="day">"Day"</option><option value="week">"Week"</option><option value="month">"Month"</option>
                        </select>
                    </label>
                    <label>"From"<input id="analytics-from" type="date" prop:value=move || from.get() on:change=move |ev| from.set(event_target_value(&ev))/></label>
                    <label>"To"<input id="analytics-to" type="date" prop:value=move || to.get() on:change=move |ev| to.set(event_target_value(&ev))/></label>
                    <span class="muted">{tz.clone()}</span>
                </div>
                <div class="charts">
                    <DistributionChart id=id.clone() by="stage" title="Stage Distribution by Period"
                        note="Communications by the stage they were planned on, counted in the period they start in."
                        y_title="Communications" empty="No communication starts in this period."
                        period from to tz=tz.clone() refresh stage_order/>
                    <DistributionChart id=id.clone() by="status" title="Status Distribution by Period"
                        note="Communications by their status now, counted in the period they start in."
                        y_title="Communications" empty="No communication starts in this period."
                        period from to tz=tz.clone() refresh stage_order/>
                    <DistributionChart id=id.clone() by="failure" title="Delivery failures by Period"
                        note="FAILED communications by stage: not delivered (each contact's history says why). Paler, “(in doubt)”: IN_DOUBT ones, whose send's outcome was lost, so they may have reached the contact; counted because someone should check them."
                        y_title="Failed deliveries" empty="No failed deliveries in this period."
                        period from to tz=tz.clone() refresh stage_order/>
                </div>
            }
        })
    };
    view! {
        <div id="analytics">
            <div class="row">
                <h3>"Performance overview"</h3>
                <button class="link" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                <a class="link push-right" id="view-deep-analysis" href=deep_analysis>"View Deep Analysis →"</a>
            </div>
            <div id="overview-problem"><Transition fallback=|| ()>{overview_problem}</Transition></div>
            <Transition fallback=|| ()>{move || overview.get().and_then(Result::ok).map(|overview| view! { <Tiles overview/> })}</Transition>
            {charts}
        </div>
    }
}

/// The overview's tiles, its per-stage and A/B tables.
#[component]
fn Tiles(overview: Overview) -> impl IntoView {
    let rate = |r: f64| format!("{:.1} %", r * 100.0);
    let o = overview;
    let tiles = [
        ("Total contacts", o.total_contacts.to_string(), "tile-total"),
        ("Processed contacts", o.processed_contacts.to_string(), "tile-processed"),
        ("Completed", o.completed_contacts.to_string(), "tile-completed"),
        ("Successful", o.successful_contacts.to_string(), "tile-successful"),
        ("Completion rate", rate(o.completion_rate), "tile-completion"),
        ("Success rate", rate(o.success_rate), "tile-success"),
    ];
    let by_stage = o
        .by_stage
        .into_iter()
        .map(|row| view! { <tr><td>{row.stage.unwrap_or_default()}</td><td>{row.contacts}</td><td>{row.successful}</td></tr> })
        .collect_view();
    let by_alternative = o
        .by_alternative
        .into_iter()
        .map(|row| view! { <tr><td>{row.stage}</td><td>{row.label}</td><td>{row.communications}</td><td>{row.successful}</td></tr> })
        .collect_view();
    view! {
        <div class="tiles">
            {tiles.into_iter().map(|(label, value, dom_id)| view! {
                <div class="tile" id=dom_id><div class="value">{value}</div><div class="label">{label}</div></div>
            }).collect_view()}
        </div>
        <div class="two-col">
            <table class="grid"><thead><tr><th>"Stage"</th><th>"Contacts"</th><th>"Successful"</th></tr></thead><tbody>{by_stage}</tbody></table>
            <table class="grid"><thead><tr><th>"Stage"</th><th>"A/B label"</th><th>"Communications"</th><th>"Successful"</th></tr></thead><tbody>{by_alternative}</tbody></table>
        </div>
    }
}

#[component]
fn DistributionChart(
    id: String,
    by: &'static str,
    title: &'static str,
    /// What is counted, under the title.
    note: &'static str,
    /// What the y axis counts.
    y_title: &'static str,
    /// Said instead of an empty chart.
    empty: &'static str,
    period: RwSignal<String>,
    from: RwSignal<String>,
    to: RwSignal<String>,
    tz: String,
    refresh: RwSignal<u32>,
    stage_order: Signal<Vec<String>>,
) -> impl IntoView {
    let data = LocalResource::new(move || {
        refresh.track();
        let path = format!(
            "/api/campaigns/{}/analytics/distribution?by={by}&period={}&from={}&to={}&tz={}",
            api::enc(&id),
            api::enc(&period.get()),
            api::enc(&from.get()),
            api::enc(&to.get()),
            api::enc(&tz)
        );
        async move { api::get::<Distribution>(&path).await }
    });
    // The chart is drawn at the width it is shown at: measured once it is
    // in the page, and whenever the window changes size.
    let holder = NodeRef::<leptos::html::Div>::new();
    let width = RwSignal::new(0.0_f64);
    let measure = move || {
        if let Some(element) = holder.get_untracked() {
            let measured = f64::from(element.client_width());
            if measured > 0.0 && (measured - width.get_untracked()).abs() >= 1.0 {
                width.set(measured);
            }
        }
    };
    Effect::new(move |_| {
        let _mounted = holder.get();
        let _drawn = data.get();
        measure();
    });
    let resized = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resized.remove());
    let chart = move || {
        let width = width.get();
        data.get().map(|reply| match reply {
            Ok(d) => {
                let stages = stage_order.get();
                bar_chart(&d, width.max(280.0), y_title, empty, &Keys { by, stages: &stages }).into_any()
            }
            Err(problem) => view! { <ProblemView problem/> }.into_any(),
        })
    };
    view! {
        <figure class="chart" id=format!("chart-{by}")>
            <figcaption>{title}<span class="muted chart-note">{note}</span></figcaption>
            <div class="chart-body" node_ref=holder><Transition fallback=|| ()>{chart}</Transition></div>
        </figure>
    }
}

/// The keys of one chart: how each is coloured and stacked.
struct Keys<'a> {
    /// `stage`, `status` or `failure`.
    by: &'a str,
    /// The campaign's stage names, in its order.
    stages: &'a [String],
}

impl Keys<'_> {
    /// The stage a key names, and whether it counts IN_DOUBT
    /// communications (`by=failure`, drawn pale).
    fn stage<'k>(&self, key: &'k str) -> (&'k str, bool) {
        match key.strip_suffix(IN_DOUBT_SUFFIX) {
            Some(stage) if self.by == "failure" => (stage, true),
            _ => (key, false),
        }
    }

    /// A status's own colour, or a stage's by its place among the
    /// campaign's stages (a name that is no stage's, by its letters): a
    /// key keeps its colour across refreshes, and a stage across charts.
    fn colour(&self, key: &str) -> &'static str {
        if self.by == "status" {
            return match CommunicationStatus::ALL.into_iter().find(|status| status.as_str() == key) {
                Some(CommunicationStatus::Planned) => "#8fb0ea",
                Some(CommunicationStatus::InProgress) => "#3b6fd8",
                Some(CommunicationStatus::Completed) => "#2e9d62",
                Some(CommunicationStatus::Missed) => "#7d52c7",
                Some(CommunicationStatus::Failed) => "#c2412d",
                Some(CommunicationStatus::Cancelled) => "#8a8f98",
                Some(CommunicationStatus::InDoubt) => "#e08a1e",
                None => COLORS[hash(key) % COLORS.len()],
            };
        }
        let (stage, _) = self.stage(key);
        let index = self.stages.iter().position(|name| name == stage).unwrap_or_else(|| hash(stage));
        COLORS[index % COLORS.len()]
    }

    /// Where a key goes in the stack, bottom first: statuses in their
    /// life's order, stages in the campaign's (IN_DOUBT after FAILED).
    fn rank(&self, key: &str) -> (usize, String, bool) {
        if self.by == "status" {
            let place = CommunicationStatus::ALL.iter().position(|status| status.as_str() == key).unwrap_or(usize::MAX);
            return (place, key.to_owned(), false);
        }
        let (stage, pale) = self.stage(key);
        (self.stages.iter().position(|name| name == stage).unwrap_or(usize::MAX), stage.to_owned(), pale)
    }
}

fn hash(text: &str) -> usize {
    text.bytes().fold(5381_usize, |hash, byte| hash.wrapping_mul(33) ^ usize::from(byte))
}

/// A bucket's label on the x axis: `Mar 5`, the week `Mar 2–8` (or
/// `Mar 30–Apr 5`), the month `Mar`; with the year (`’26`) when the
/// chart spans more than one.
fn bucket_label(period: Period, start: NaiveDate, with_year: bool) -> String {
    let year = if with_year { format!(" ’{:02}", start.year() % 100) } else { String::new() };
    match period {
        Period::Day => format!("{}{year}", start.format("%b %-d")),
        Period::Week => {
            let end = period.last_day(start);
            let end = if end.month() == start.month() { end.format("%-d") } else { end.format("%b %-d") };
            format!("{}–{end}{year}", start.format("%b %-d"))
        }
        Period::Month => format!("{}{year}", start.format("%b")),
    }
}

/// A bucket's name in full, for its tooltip.
fn bucket_name(period: Period, start: NaiveDate) -> String {
    match period {
        Period::Day => start.format("%a %-d %b %Y").to_string(),
        Period::Week => format!("week of {} to {}", start.format("%a %-d %b"), period.last_day(start).format("%a %-d %b %Y")),
        Period::Month => start.format("%B %Y").to_string(),
    }
}

/// The y axis's step: 1, 2 or 5 times a power of ten, for about four
/// gridlines up to `max`.
fn nice_step(max: i64) -> i64 {
    let rough = (max as f64 / 4.0).max(1.0);
    let power = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|step| *step >= rough).unwrap_or(10.0 * power);
    (step.round() as i64).max(1)
}

/// Text this wide, in the chart's 11 px type.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// Stacked bars, one per bucket, one colour per key; the y axis counts
/// `y_title` with gridlines, the x axis names each bucket; every bar says
/// its total, and each segment its count where there is room; the legend
/// gives each key's total.
fn bar_chart(d: &Distribution, width: f64, y_title: &str, empty: &str, chart: &Keys) -> impl IntoView {
    let period = Period::parse(&d.period).unwrap_or(Period::Day);
    let buckets = &d.buckets;
    // Each key with its colour, whether it is pale, and its total.
    let mut keys: Vec<(String, (&'static str, bool), i64)> = Vec::new();
    for (key, n) in buckets.iter().flat_map(|bucket| bucket.counts.iter()) {
        match keys.iter_mut().find(|(known, _, _)| known == key) {
            Some(entry) => entry.2 += n,
            None => keys.push((key.clone(), (chart.colour(key), chart.stage(key).1), *n)),
        }
    }
    keys.retain(|(_, _, total)| *total != 0);
    keys.sort_by_cached_key(|(key, _, _)| chart.rank(key));
    let total: i64 = keys.iter().map(|(_, _, n)| n).sum();
    let unit = match period {
        Period::Day => "Day",
        Period::Week => "Week (Monday to Sunday)",
        Period::Month => "Month",
    };
    let years: std::collections::BTreeSet<i32> = buckets.iter().map(|bucket| bucket.start.year()).collect();
    let with_year = years.len() > 1;
    let x_title = match (with_year, years.first()) {
        (false, Some(year)) => format!("{unit}, {year} · {}", d.tz),
        _ => format!("{unit} · {}", d.tz),
    };
    let summary = format!("{total} in all, {} to {}", d.from, d.to);
    if buckets.is_empty() || keys.is_empty() {
        return view! { <p class="muted chart-empty">{empty}</p> }.into_any();
    }

    let (height, top, bottom, left, right) = (260.0, 16.0, 46.0, 50.0, 10.0);
    let plot_width = (width - left - right).max(40.0);
    let plot_height = height - top - bottom;
    let most = buckets.iter().map(|bucket| bucket.total()).max().unwrap_or(0).max(1);
    let step = nice_step(most);
    // Headroom over the tallest bar for its total.
    let ceiling = ((most as f64 * 1.15 / step as f64).ceil() as i64 * step).max(step);
    let y_of = |n: f64| top + plot_height - n / ceiling as f64 * plot_height;
    let slot = plot_width / buckets.len() as f64;
    let bar = (slot * 0.72).clamp(1.5, 64.0);

    let mut shapes = Vec::new();
    // The y axis: gridlines with their counts, and what it counts.
    let mut tick = 0;
    while tick <= ceiling {
        let y = y_of(tick as f64);
        let class = if tick == 0 { "axis-line" } else { "grid-line" };
        shapes.push(view! {
            <line x1=format!("{left:.1}") x2=format!("{:.1}", width - right) y1=format!("{y:.1}") y2=format!("{y:.1}") class=class/>
            <text x=format!("{:.1}", left - 6.0) y=format!("{:.1}", y + 4.0) class="axis y-tick" text-anchor="end">{tick.to_string()}</text>
        }.into_any());
        tick += step;
    }
    let middle = top + plot_height / 2.0;
    shapes.push(view! {
        <text class="axis-title y-title" text-anchor="middle" transform=format!("translate(13 {middle:.1}) rotate(-90)")>{y_title.to_owned()}</text>
    }.into_any());
    // The x axis: as many bucket names as fit side by side, and its unit.
    let label_width = buckets.iter().map(|bucket| text_width(&bucket_label(period, bucket.start, with_year), 11.0)).fold(0.0, f64::max) + 10.0;
    let every = ((label_width / slot).ceil() as usize).max(1);
    for (index, bucket) in buckets.iter().enumerate() {
        let x = left + index as f64 * slot + (slot - bar) / 2.0;
        let centre = x + bar / 2.0;
        let mut y = top + plot_height;
        let bucket_total = bucket.total();
        for (key, (fill, pale), _) in &keys {
            let n = bucket.counts.get(key).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = n as f64 / ceiling as f64 * plot_height;
            y -= h;
            let tip = format!("{} · {key}: {n}", bucket_name(period, bucket.start));
            let opacity = if *pale { "0.45" } else { "1" };
            shapes.push(view! {
                <rect class="segment" x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{bar:.1}") height=format!("{h:.1}") fill=*fill fill-opacity=opacity>
                    <title>{tip}</title>
                </rect>
            }.into_any());
            // The segment's count inside it, when the bar holds more than
            // one key and the segment has room for the number.
            let text = n.to_string();
            if n != bucket_total && h >= 14.0 && bar >= text_width(&text, 10.0) + 4.0 {
                let class = if *pale { "segment-value pale" } else { "segment-value" };
                shapes.push(view! {
                    <text class=class x=format!("{centre:.1}") y=format!("{:.1}", y + h / 2.0 + 3.5) text-anchor="middle">{text}</text>
                }.into_any());
            }
        }
        // The bar's total on top of it: level when it fits the slot,
        // upright (as wide as a digit is tall) when the slot is narrow.
        if bucket_total != 0 {
            let text = bucket_total.to_string();
            if slot >= text_width(&text, 11.0) + 2.0 {
                shapes.push(view! {
                    <text class="bar-total" x=format!("{centre:.1}") y=format!("{:.1}", y - 4.0) text-anchor="middle">{text}</text>
                }.into_any());
            } else {
                shapes.push(view! {
                    <text class="bar-total upright" text-anchor="start" transform=format!("translate({:.1} {:.1}) rotate(-90)", centre + 3.5, y - 3.0)>{text}</text>
                }.into_any());
            }
        }
        // Counted from the last bucket, so today's is always named; kept
        // inside the chart's edges.
        if (buckets.len() - 1 - index) % every == 0 {
            let label = bucket_label(period, bucket.start, with_year);
            let half = text_width(&label, 11.0) / 2.0;
            let x = centre.min(width - half - 1.0).max(half + 1.0);
            shapes.push(view! {
                <text x=format!("{x:.1}") y=format!("{:.1}", top + plot_height + 16.0) class="axis x-tick" text-anchor="middle">{label}</text>
            }.into_any());
        }
    }
    let x_middle = left + plot_width / 2.0;
    shapes.push(view! {
        <text class="axis-title x-title" x=format!("{x_middle:.1}") y=format!("{:.1}", height - 8.0) text-anchor="middle">{x_title}</text>
    }.into_any());
    let legend = keys
        .iter()
        .map(|(key, (fill, pale), n)| {
            let class = if *pale { "legend pale" } else { "legend" };
            view! { <span class=class><i style:background=*fill></i>{key.clone()}<b>{format!(" {n}")}</b></span> }
        })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {width:.0} {height:.0}") class="bars" role="img" aria-label=format!("{y_title} by {}", unit.to_lowercase())>
            {shapes}
        </svg>
        <div class="legends">{legend}<span class="muted legend-total">{summary}</span></div>
    }
    .into_any()
}
