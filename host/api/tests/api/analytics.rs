//! Settings > YAML Analytics through the API: upload, read, download, and
//! every error of a bad file with its line and column.

use serde_json::json;

use crate::both_backends;
use crate::support::{repo_file, App, Backend};

both_backends!(
    works_when_uploading_and_downloading_the_example_yaml,
    errors_when_the_yaml_is_invalid,
    works_when_an_empty_campaign_has_zero_rates_and_empty_buckets,
    errors_when_a_distribution_query_is_invalid,
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
        ("by=channel", "by=`channel`: use by=stage or by=status"),
        ("by=stage&period=hour", "period=`hour`: use day, week or month"),
        ("by=stage&tz=Mars/Olympus", "tz=`Mars/Olympus` is not an IANA time zone (for example Europe/Berlin or UTC)"),
    ] {
        assert_eq!(client.get(&format!("{path}?{query}")).await.problem(400), expected, "{query}");
    }
    // Each parameter is valid on its own: 422, naming the field.
    for (query, expected) in [
        ("by=stage&from=2026-03-01&to=2026-01-01", "from: 2026-03-01 is after to (2026-01-01)"),
        ("by=stage&from=2024-01-01&to=2026-01-01", "from: 2024-01-01 to 2026-01-01 is more than 400 days; choose a shorter range or a longer period"),
    ] {
        assert_eq!(client.get(&format!("{path}?{query}")).await.problem(422), expected, "{query}");
    }
    let detail = client.get(&format!("{path}?by=stage&from=yesterday")).await.problem(400);
    assert!(detail.contains("from"), "{detail}");
}
