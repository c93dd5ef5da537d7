//! The analytics panel through the API: Settings > YAML Analytics (upload,
//! read, download, and every error of a bad file with its line and
//! column), the distributions by period — by stage, by status and the
//! delivery failures — and the start day the panel's default period runs
//! from.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Contact};

use crate::both_backends;
use crate::support::{repo_file, App, Background, Backend};

both_backends!(
    works_when_uploading_and_downloading_the_example_yaml,
    errors_when_the_yaml_is_invalid,
    works_when_an_empty_campaign_has_zero_rates_and_empty_buckets,
    errors_when_a_distribution_query_is_invalid,
    works_when_failed_deliveries_are_counted_by_stage_per_period,
    works_when_a_campaign_keeps_the_time_it_first_started,
);

async fn works_when_uploading_and_downloading_the_example_yaml(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.get(&format!("/campaigns/{campaign}/analytics")).await.problem(404);
    client.get(&format!("/campaigns/{campaign}/analytics/yaml")).await.problem(404);

    let yaml = repo_file("examples/analytics/debt-collection.yaml");
    let reply = client.put_raw(&format!("/campaigns/{campaign}/analytics"), "application/yaml", yaml.clone().into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["definition"]["metrics"][0]["code"], "client_satisfaction");
    assert_eq!(reply.body["definition"]["metrics"][0]["type"], "scale");

    let read = client.get(&format!("/campaigns/{campaign}/analytics")).await;
    assert_eq!(read.body["definition"], reply.body["definition"]);
    let download = client.get(&format!("/campaigns/{campaign}/analytics/yaml")).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.content_type, "application/yaml; charset=utf-8");
    assert_eq!(download.text, yaml, "the file comes back byte for byte, comments included");
}

async fn errors_when_the_yaml_is_invalid(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/analytics");
    let good = "depth_days: 30\nmetrics:\n  - code: happy\n    name: Happy\n    prompt: Is the client happy?\n    type: boolean\n";
    assert_eq!(client.put_raw(&path, "application/yaml", good.into()).await.status, 200);

    let bad = "depth_days: 400\nmetrics:\n  - code: happy\n    name: Happy\n    prompt: Is the client happy?\n    type: percent\n";
    let reply = client.put_raw(&path, "application/yaml", bad.into()).await;
    reply.problem(422);
    assert_eq!(reply.body["line"], 1);
    let errors = reply.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{}", reply.text);
    assert_eq!(errors[0]["field"], "depth_days");
    assert_eq!((errors[0]["line"].clone(), errors[0]["column"].clone()), (json!(1), json!(13)));
    assert_eq!(errors[1]["field"], "metrics[0].type");
    assert_eq!((errors[1]["line"].clone(), errors[1]["column"].clone()), (json!(6), json!(11)));
    assert!(errors[1]["message"].as_str().expect("message").contains("unknown metric type `percent`"), "{}", reply.text);

    let reply = client.put_raw(&path, "application/yaml", b"depth_days: 30\nmetrics: [\xff]\n".to_vec()).await;
    let detail = reply.problem(422);
    assert_eq!(detail, "line 2, column 11: the file is not UTF-8 text; save it as UTF-8");

    let reply = client.put_raw(&path, "application/yaml", "metrics:\n\t- code: x\n".into()).await;
    reply.problem(422);
    assert_eq!(reply.body["line"], 2, "{}", reply.text);

    // A rejected upload leaves the previous file in place.
    let download = client.get(&format!("{path}/yaml")).await;
    assert_eq!(download.text, good);
}

async fn works_when_an_empty_campaign_has_zero_rates_and_empty_buckets(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Empty").await;
    let overview = client.get(&format!("/campaigns/{campaign}/analytics/overview")).await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert_eq!((overview.body["total_contacts"].as_i64(), overview.body["completion_rate"].as_f64()), (Some(0), Some(0.0)));
    let reply = client
        .get(&format!("/campaigns/{campaign}/analytics/distribution?by=stage&period=month&from=2026-01-15&to=2026-03-02&tz=Asia/Kolkata"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let starts: Vec<&str> = reply.body["buckets"].as_array().expect("buckets").iter().map(|b| b["start"].as_str().expect("start")).collect();
    assert_eq!(starts, ["2026-01-01", "2026-02-01", "2026-03-01"]);
    assert_eq!(reply.body["tz"], "Asia/Kolkata");
}

async fn errors_when_a_distribution_query_is_invalid(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Empty").await;
    let path = format!("/campaigns/{campaign}/analytics/distribution");
    for (query, expected) in [
        ("by=channel", "by=`channel`: use by=stage, by=status or by=failure"),
        ("by=failure&period=year", "period=`year`: use day, week or month"),
        ("by=stage&period=hour", "period=`hour`: use day, week or month"),
        ("by=stage&tz=Mars/Olympus", "tz=`Mars/Olympus` is not an IANA time zone (for example Europe/Berlin or UTC)"),
    ] {
        assert_eq!(client.get(&format!("{path}?{query}")).await.problem(400), expected, "{query}");
    }
    // Each parameter is valid on its own: 422, naming the field.
    for (query, expected) in [
        ("by=stage&from=2026-03-01&to=2026-01-01", "from: 2026-03-01 is after to (2026-01-01)"),
        ("by=stage&from=2024-01-01&to=2026-01-01", "from: 2024-01-01 to 2026-01-01 is more than 400 days; choose a shorter range or a longer period"),
        ("by=failure&from=2026-03-02&to=2026-03-01", "from: 2026-03-02 is after to (2026-03-01)"),
    ] {
        assert_eq!(client.get(&format!("{path}?{query}")).await.problem(422), expected, "{query}");
    }
    let detail = client.get(&format!("{path}?by=stage&from=yesterday")).await.problem(400);
    assert!(detail.contains("from"), "{detail}");
}

fn communication(stage: &str, start: DateTime<Utc>, status: CommunicationStatus) -> Communication {
    Communication {
        id: None,
        name: "Reminder".into(),
        stage_name: stage.into(),
        start_date: start,
        end_date: None,
        status: CommunicationState { status, detail: Some("the provider refused it".into()), updated_at: None },
        flagged: false,
        alternative: None,
        parameters: Default::default(),
    }
}

fn contact(object_id: &str, communications: Vec<Communication>) -> (Contact, Option<Value>) {
    let mut contact: Contact =
        serde_json::from_value(json!({"object_id": object_id, "external_id": object_id, "name": object_id})).expect("contact");
    contact.communications = communications;
    (contact, None)
}

/// A bucket's counts, `{}` when it has none.
fn counts(reply: &Value, start: &str) -> Value {
    let buckets = reply["buckets"].as_array().expect("buckets");
    buckets.iter().find(|bucket| bucket["start"] == start).unwrap_or_else(|| panic!("no bucket {start}: {reply}"))["counts"].clone()
}

async fn works_when_failed_deliveries_are_counted_by_stage_per_period(backend: Backend) {
    // No engine: the communications keep the statuses written here.
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let other = client.campaign("Other").await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let at = |day: u32, hour: u32, minute: u32| Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).single().expect("time");
    use CommunicationStatus::{Completed, Failed, InDoubt, Missed};
    let contacts = [
        contact("A", vec![communication("Email", at(2, 10, 0), Failed), communication("SMS", at(10, 9, 0), Failed)]),
        contact("B", vec![communication("Email", at(4, 8, 0), Failed), communication("Email", at(4, 8, 10), InDoubt)]),
        // Neither counts: delivered, and never started.
        contact("C", vec![communication("Email", at(4, 9, 0), Completed), communication("SMS", at(10, 9, 0), Missed)]),
        // 23:30 UTC on Sunday 1 March is 00:30 on Monday 2 March in Berlin.
        contact("D", vec![communication("SMS", at(1, 23, 30), Failed)]),
    ];
    app.store.contacts().upsert_contacts(&tenant, &campaign, &contacts).await.expect("import");
    let elsewhere = [contact("E", vec![communication("Email", at(2, 10, 0), Failed)])];
    app.store.contacts().upsert_contacts(&tenant, &other, &elsewhere).await.expect("other import");

    let path = format!("/campaigns/{campaign}/analytics/distribution");
    let weekly = client.get(&format!("{path}?by=failure&period=week&from=2026-03-01&to=2026-03-15&tz=Europe/Berlin")).await;
    assert_eq!(weekly.status, 200, "{}", weekly.text);
    assert_eq!((weekly.body["by"].as_str(), weekly.body["period"].as_str()), (Some("failure"), Some("week")));
    let starts: Vec<&str> = weekly.body["buckets"].as_array().expect("buckets").iter().map(|b| b["start"].as_str().expect("start")).collect();
    assert_eq!(starts, ["2026-02-23", "2026-03-02", "2026-03-09"]);
    assert_eq!(counts(&weekly.body, "2026-02-23"), json!({}));
    assert_eq!(counts(&weekly.body, "2026-03-02"), json!({"Email": 2, "Email (in doubt)": 1, "SMS": 1}));
    assert_eq!(counts(&weekly.body, "2026-03-09"), json!({"SMS": 1}));

    // By day in UTC, D's failure is on the Sunday.
    let daily = client.get(&format!("{path}?by=failure&period=day&from=2026-03-01&to=2026-03-10&tz=UTC")).await;
    assert_eq!(daily.status, 200, "{}", daily.text);
    assert_eq!(daily.body["buckets"].as_array().expect("buckets").len(), 10);
    assert_eq!(counts(&daily.body, "2026-03-01"), json!({"SMS": 1}));
    assert_eq!(counts(&daily.body, "2026-03-02"), json!({"Email": 1}));
    assert_eq!(counts(&daily.body, "2026-03-03"), json!({}));
    assert_eq!(counts(&daily.body, "2026-03-04"), json!({"Email": 1, "Email (in doubt)": 1}));
    assert_eq!(counts(&daily.body, "2026-03-10"), json!({"SMS": 1}));

    // The status distribution of the same days has every status; the
    // failures are its FAILED and IN_DOUBT.
    let by_status = client.get(&format!("{path}?by=status&period=month&from=2026-03-01&to=2026-03-31&tz=UTC")).await;
    assert_eq!(counts(&by_status.body, "2026-03-01"), json!({"COMPLETED": 1, "FAILED": 4, "IN_DOUBT": 1, "MISSED": 1}));

    // A range that starts and ends inside a 15-minute slot reads the
    // communications themselves: 08:05 to 08:12 holds B's IN_DOUBT only.
    let slots = app
        .store
        .analytics()
        .communication_slots(&tenant, &campaign, stratagem_store::DistributionKey::Failure, at(4, 8, 5), at(4, 8, 12))
        .await
        .expect("slots");
    assert_eq!(slots, [(at(4, 8, 0), "Email (in doubt)".to_owned(), 1)]);
}

async fn works_when_a_campaign_keeps_the_time_it_first_started(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let id = client.ready_campaign("Collections").await;
    let path = format!("/campaigns/{id}");
    let created = client.get(&path).await;
    assert_eq!(created.body["started_at"], Value::Null, "{}", created.text);
    let configured = client.post(&format!("{path}/status"), json!({"status": "CONFIGURED"})).await;
    assert_eq!(configured.body["started_at"], Value::Null, "{}", configured.text);

    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let running = client.post(&format!("{path}/status"), json!({"status": "RUNNING"})).await;
    assert_eq!(running.status, 200, "{}", running.text);
    let after = Utc::now() + chrono::Duration::milliseconds(1);
    let started: DateTime<Utc> = running.body["started_at"].as_str().expect("started_at").parse().expect("time");
    assert!(before <= started && started <= after, "{started} is not between {before} and {after}");

    // Stopping and resuming is not a new start.
    for status in ["STOPPED", "RUNNING"] {
        let reply = client.post(&format!("{path}/status"), json!({"status": status})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let listed = client.get("/campaigns").await;
    let resumed = listed.body.as_array().expect("list").iter().find(|c| c["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(resumed["started_at"], running.body["started_at"], "{resumed}");
}
