//! The sidebar lists of campaigns, agents and integrations: each entry
//! links to its page and stays selected on that page and its sub-pages.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};

use crate::api::Problem;
use crate::util::ProblemView;

/// One entry: the page it opens, its name and its badge.
#[derive(Clone)]
pub struct Item {
    pub href: String,
    pub name: String,
    pub badge: String,
    /// Added to `badge`, e.g. `status-RUNNING`.
    pub badge_class: Option<String>,
}

pub type Items = LocalResource<Result<Vec<Item>, Problem>>;

/// `items` as `<ul class="items" id=…>`; `empty` says what to do when
/// there are none, and a failed load shows its problem.
#[component]
pub fn ItemList(id: &'static str, items: Items, #[prop(into)] empty: Signal<String>) -> impl IntoView {
    let location = use_location();
    let navigate = use_navigate();
    let row = move |Item { href, name, badge, badge_class }: Item| {
        let navigate = navigate.clone();
        let page = href.clone();
        let selected = move || location.pathname.with(|path| *path == page || path.starts_with(&format!("{page}/")));
        let class = badge_class.map_or_else(|| "badge".to_owned(), |extra| format!("badge {extra}"));
        view! {
            <li class:selected=selected on:click=move |_| navigate(&href, Default::default())>
                <span class="name">{name}</span>
                <span class=class>{badge}</span>
            </li>
        }
    };
    let rows = move |list: Vec<Item>| match list.is_empty() {
        true => view! { <li class="empty">{empty.get_untracked()}</li> }.into_any(),
        false => list.into_iter().map(row.clone()).collect_view().into_any(),
    };
    view! {
        <ul class="items" id=id>
            <Transition fallback=|| view! { <li class="empty">"Loading…"</li> }>
                {move || items.get().map(|reply| match reply {
                    Ok(list) => rows(list),
                    Err(problem) => view! { <li><ProblemView problem/></li> }.into_any(),
                })}
            </Transition>
        </ul>
    }
}
