//! The campaign's analytics panel: metric tiles from the overview and two
//! bar charts of the distribution by period (by stage and by status), and
//! the link to its Deep Analysis (`crate::deep_analysis`).

use leptos::prelude::*;
use stratagem_types::analytics::{Bucket, Distribution, Overview};

use crate::api;
use crate::util::ProblemView;

pub(crate) const COLORS: [&str; 8] = ["#3b6fd8", "#2e9d62", "#e08a1e", "#c2412d", "#7d52c7", "#1c9bb0", "#8a8f98", "#c7a21c"];

/// `/campaigns/:id` and `/campaigns/:id/analytics`.
#[component]
pub fn AnalyticsTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Analytics id=id.get()/> }
}

#[component]
pub fn Analytics(id: String) -> impl IntoView {
    let period = RwSignal::new("day".to_owned());
    let from = RwSignal::new(crate::util::local_date(29));
    let to = RwSignal::new(crate::util::local_date(0));
    let tz = crate::util::time_zone();
    let refresh = RwSignal::new(0u32);
    let path = format!("/api/campaigns/{}/analytics/overview", api::enc(&id));
    let overview = LocalResource::new(move || {
        refresh.track();
        let path = path.clone();
        async move { api::get::<Overview>(&path).await }
    });
    crate::util::every(5000, move || refresh.update(|n| *n += 1));
    let overview_problem = move || overview.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> });
    view! {
        <div id="analytics">
            <div class="row">
                <h3>"Performance overview"</h3>
                <button class="link" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                <a class="link push-right" id="view-deep-analysis" href=format!("/campaigns/{id}/analytics/deep-analysis")>"View Deep Analysis →"</a>
            </div>
            <div id="overview-problem"><Transition fallback=|| ()>{overview_problem}</Transition></div>
            <Transition fallback=|| ()>{move || overview.get().and_then(Result::ok).map(|overview| view! { <Tiles overview/> })}</Transition>
            <div class="row controls">
                <label>"Period"
                    <select prop:value=move || period.get() on:change=move |ev| period.set(event_target_value(&ev))>
                        <option value="day">"Day"</option><option value="week">"Week"</option><option value="month">"Month"</option>
                    </select>
                </label>
                <label>"From"<input type="date" prop:value=move || from.get() on:change=move |ev| from.set(event_target_value(&ev))/></label>
                <label>"To"<input type="date" prop:value=move || to.get() on:change=move |ev| to.set(event_target_value(&ev))/></label>
                <span class="muted">{tz.clone()}</span>
            </div>
            <div class="two-col">
                <DistributionChart id=id.clone() by="stage" title="Stage Distribution by Period" period from to tz=tz.clone() refresh/>
                <DistributionChart id=id.clone() by="status" title="Status Distribution by Period" period from to tz=tz.clone() refresh/>
            </div>
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
    period: RwSignal<String>,
    from: RwSignal<String>,
    to: RwSignal<String>,
    tz: String,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let data = LocalResource::new(move || {
        refresh.track();
        let path = format!(
            "/api/campaigns/{id}/analytics/distribution?by={by}&period={}&from={}&to={}&tz={}",
            api::enc(&period.get()),
            api::enc(&from.get()),
            api::enc(&to.get()),
            api::enc(&tz)
        );
        async move { api::get::<Distribution>(&path).await }
    });
    view! {
        <figure class="chart" id=format!("chart-{by}")>
            <figcaption>{title}</figcaption>
            <Transition fallback=|| ()>
                {move || data.get().map(|reply| match reply {
                    Ok(d) => bar_chart(&d.buckets).into_any(),
                    Err(problem) => view! { <ProblemView problem/> }.into_any(),
                })}
            </Transition>
        </figure>
    }
}

/// Stacked bars, one per bucket, one colour per key, with a legend.
fn bar_chart(buckets: &[Bucket]) -> impl IntoView {
    let mut keys: Vec<String> = Vec::new();
    for key in buckets.iter().flat_map(|bucket| bucket.counts.keys()) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    if buckets.is_empty() || keys.is_empty() {
        return view! { <p class="muted">"No data in this period."</p> }.into_any();
    }
    let max = buckets.iter().map(Bucket::total).max().unwrap_or(1).max(1) as f64;
    let (width, height, bottom, left) = (600.0, 220.0, 30.0, 34.0);
    let slot = (width - left) / buckets.len() as f64;
    let bar = (slot * 0.7).max(2.0);
    let mut shapes = Vec::new();
    for (index, bucket) in buckets.iter().enumerate() {
        let x = left + index as f64 * slot + (slot - bar) / 2.0;
        let mut y = height - bottom;
        for (k, key) in keys.iter().enumerate() {
            let n = bucket.counts.get(key).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = n as f64 / max * (height - bottom - 10.0);
            y -= h;
            let tip = format!("{} · {key}: {n}", bucket.start);
            shapes.push(view! {
                <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{bar:.1}") height=format!("{h:.1}") fill=COLORS[k % COLORS.len()]>
                    <title>{tip}</title>
                </rect>
            }.into_any());
        }
        let every = (buckets.len() / 8).max(1);
        if index % every == 0 {
            let label = bucket.start.to_string().get(5..).unwrap_or_default().to_owned();
            shapes.push(view! { <text x=format!("{:.1}", x + bar / 2.0) y=format!("{:.1}", height - 12.0) class="axis" text-anchor="middle">{label}</text> }.into_any());
        }
    }
    let legend = keys
        .iter()
        .enumerate()
        .map(|(k, key)| view! { <span class="legend"><i style:background=COLORS[k % COLORS.len()]></i>{key.clone()}</span> })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {width} {height}") class="bars" role="img">
            <line x1=left.to_string() y1=(height - bottom).to_string() x2=width.to_string() y2=(height - bottom).to_string() class="axis-line"/>
            <text x="2" y="14" class="axis">{format!("{max}")}</text>
            {shapes}
        </svg>
        <div class="legends">{legend}</div>
    }
    .into_any()
}
