use serde_json::json;

use crate::both_backends;
use crate::support::{App, Background, Backend, Client, Tuning};

both_backends!(
    works_when_the_spec_csv_is_imported_through_the_data_load_strategy,
    works_when_a_reimport_updates_the_existing_contacts,
    works_when_jsonl_is_imported_without_a_strategy,
    errors_with_line_and_column_when_the_file_cannot_be_read,
    works_when_bad_rows_are_reported_and_good_rows_imported,
    works_when_strategy_failures_are_reported_with_the_traceback,
    works_when_the_list_filters_and_pages,
    works_when_the_list_agrees_with_its_total_during_an_import,
    works_when_the_export_escapes_formulas,
    works_when_a_downloaded_contacts_file_imports_as_the_same_contacts,
    works_when_a_dead_nodes_import_is_interrupted_with_exact_counts,
    works_when_import_batches_commit_in_the_files_order,
);

const SPEC_CSV: &str = "Object_id,External_ID,Name,Email,Phone,add_param1,add_param2\n\
123,123,John Doe,john@example.com,+1234567890,12,\"Additional data\"\n\
456,456,Jane Smith,jane@example.com,+0987654321,34,\"More data\"\n";

/// A CSV of contacts `C-00000`, … for `indexes`, in that order, each with
/// the `extra` columns' values.
fn people_csv(indexes: impl IntoIterator<Item = usize>, extra: &[(&str, &str)]) -> String {
    let names: String = extra.iter().map(|(name, _)| format!(",{name}")).collect();
    let values: String = extra.iter().map(|(_, value)| format!(",{value}")).collect();
    let mut csv = format!("object_id,external_id,name,email,phone{names}\n");
    for index in indexes {
        csv.push_str(&format!("C-{index:05},U-{index},Person {index},p{index}@x.io,+{index}{values}\n"));
    }
    csv
}

async fn import(client: &Client, campaign: &str, content_type: &str, body: &str) -> serde_json::Value {
    let reply = client.upload(&format!("/campaigns/{campaign}/imports?file_name=contacts"), content_type, body.as_bytes().to_vec()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    client.wait_for_import(reply.body["id"].as_str().expect("id")).await
}

async fn works_when_the_spec_csv_is_imported_through_the_data_load_strategy(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    let job = import(&client, &campaign, "text/csv", SPEC_CSV).await;
    assert_eq!((job["status"].as_str(), job["accepted"].as_i64(), job["rejected"].as_i64()), (Some("done"), Some(2), Some(0)), "{job}");
    assert_eq!(job["processed_rows"], job["total_rows"]);

    let contact = client.get(&format!("/campaigns/{campaign}/contacts/123")).await;
    assert_eq!(contact.body["current_stage"], "First Contact");
    assert_eq!(contact.body["parameters"], json!({"add_param1": "12", "add_param2": "Additional data"}));
    let comm = &contact.body["communications"][0];
    assert_eq!((comm["name"].as_str(), comm["status"]["status"].as_str()), (Some("Initial Message"), Some("PLANNED")));
    assert!(comm["id"].as_str().expect("id").starts_with("com_"));
}

async fn works_when_a_reimport_updates_the_existing_contacts(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "examples/debt-collection/data_load.py").await;
    let first = "object_id,external_id,name,email,phone,amount_due\nC-1,U-1,Ann,ann@x.io,+1,100\n";
    assert_eq!(import(&client, &campaign, "text/csv", first).await["accepted"], 1);
    let second = "object_id,external_id,name,email,phone,amount_due\nC-1,U-1,Ann,ann@x.io,+1,80\nC-2,U-2,Bob,bob@x.io,+2,10\n";
    let job = import(&client, &campaign, "text/csv", second).await;
    assert_eq!((job["accepted"].as_i64(), job["updated"].as_i64()), (Some(1), Some(1)));
    let ann = client.get(&format!("/campaigns/{campaign}/contacts/C-1")).await;
    assert_eq!(ann.body["parameters"]["amount_due"], "80", "the strategy merged the new parameters");
    assert_eq!(ann.body["communications"].as_array().expect("comms").len(), 1, "nothing planned twice: {}", ann.text);
}

async fn works_when_jsonl_is_imported_without_a_strategy(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let jsonl = "{\"Object_id\": \"123\", \"External_ID\": \"123\", \"Name\": \"John Doe\", \"Email\": \"john@example.com\", \"Phone\": \"+1234567890\", \"amount\": 12.5}\n";
    let job = import(&client, &campaign, "application/x-ndjson", jsonl).await;
    assert_eq!(job["accepted"], 1, "{job}");
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/123")).await;
    assert_eq!((contact.body["current_stage"].clone(), contact.body["parameters"]["amount"].clone()), (json!(null), json!(12.5)));

    // Text that is syntax to the database's batch statements stays text.
    let tricky = json!({
        "Object_id": "{7,\"8\"}", "External_ID": "NULL", "Name": "Ann \"A\\B\" {C}, D\nE ü 😀", "Email": "{a,b}@x.io", "Phone": "\\",
        "note": "}{\",\\"
    });
    let job = import(&client, &campaign, "application/x-ndjson", &format!("{tricky}\n")).await;
    assert_eq!(job["accepted"], 1, "{job}");
    // The object id `{7,"8"}`, percent-encoded.
    let stored = client.get(&format!("/campaigns/{campaign}/contacts/%7B7%2C%228%22%7D")).await.body;
    let fields = ["object_id", "external_id", "name", "email", "phone"].map(|field| stored[field].clone());
    assert_eq!(fields, [&tricky["Object_id"], &tricky["External_ID"], &tricky["Name"], &tricky["Email"], &tricky["Phone"]].map(Clone::clone), "{stored}");
    assert_eq!(stored["parameters"]["note"], tricky["note"], "{stored}");
}

async fn errors_with_line_and_column_when_the_file_cannot_be_read(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/imports");
    let missing = client.upload(&path, "text/csv", b"Object_id,Name,Email\n1,Ann,a@x.io\n".to_vec()).await;
    assert!(missing.problem(422).contains("external_id"), "{}", missing.text);
    let not_utf8 = client.upload(&path, "text/csv", b"object_id,external_id,name,email,phone\n1,2,Jos\xe9,a@x.io,+1\n".to_vec()).await;
    not_utf8.problem(422);
    assert_eq!((not_utf8.body["line"].as_u64(), not_utf8.body["column"].as_u64()), (Some(2), Some(8)));
    client.upload(&path, "text/csv", Vec::new()).await.problem(422);
    let total = client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"].clone();
    assert_eq!(total, 0, "nothing half-written");
}

async fn works_when_bad_rows_are_reported_and_good_rows_imported(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let csv = "object_id;external_id;name;email;phone\r\n1;U1;Ann;a@x.io;+1\r\n2;U2;Bob\r\n;U3;Cy;c@x.io;+3\r\n4;U4;\"Dee\nDee\";d@x.io;+4\r\n";
    let job = import(&client, &campaign, "text/csv", csv).await;
    assert_eq!((job["accepted"].as_i64(), job["rejected"].as_i64()), (Some(2), Some(2)), "{job}");
    let lines: Vec<u64> = job["report"]["rejected"].as_array().expect("rejected").iter().map(|r| r["line"].as_u64().expect("line")).collect();
    assert_eq!(lines, [3, 4]);
    assert!(job["report"]["rejected"][0]["reason"].as_str().expect("reason").contains("expected 5 fields"), "{job}");
    let dee = client.get(&format!("/campaigns/{campaign}/contacts/4")).await;
    assert_eq!(dee.body["name"], "Dee\nDee");
}

async fn works_when_strategy_failures_are_reported_with_the_traceback(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "host/runtime/tests/strategies/probe.py").await;
    let csv = "object_id,external_id,name,email,phone,case\nok-1,U,Ann,a@x.io,+1,ok\nbad-1,U,Bob,b@x.io,+2,raise\n";
    let job = import(&client, &campaign, "text/csv", csv).await;
    assert_eq!((job["accepted"].as_i64(), job["rejected"].as_i64()), (Some(2), Some(0)), "{job}");
    let failure = &job["report"]["strategy_errors"][0];
    assert_eq!((failure["line"].as_u64(), failure["object_id"].as_str()), (Some(3), Some("bad-1")));
    assert!(failure["message"].as_str().expect("message").contains("File \"probe.py\", line 36, in run"), "{failure}");
    let bob = client.get(&format!("/campaigns/{campaign}/contacts/bad-1")).await;
    assert_eq!(bob.body["current_stage"], json!(null), "the failed strategy's output was not stored");
    assert_eq!(bob.body["last_error"]["error"]["kind"], "exception");
    assert_eq!(bob.body["last_error"]["input"]["object_id"], "bad-1");
}

async fn works_when_the_list_filters_and_pages(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    import(&client, &campaign, "text/csv", &people_csv(0..30, &[])).await;
    let page = client.get(&format!("/campaigns/{campaign}/contacts?limit=10&offset=20")).await;
    assert_eq!(page.body["total"], 30);
    let ids: Vec<&str> = page.body["contacts"].as_array().expect("page").iter().map(|c| c["object_id"].as_str().expect("id")).collect();
    assert_eq!(ids.first().copied(), Some("C-00020"));
    assert_eq!(ids.len(), 10);
    let search = client.get(&format!("/campaigns/{campaign}/contacts?q=p7@x")).await;
    assert_eq!(search.body["total"], 1);
    client.get(&format!("/campaigns/{campaign}/contacts?limit=0")).await.problem(400);
}

/// Each page is read with its total in one snapshot. Read apart, a batch
/// the import committed between the count and the rows made the page
/// longer than the total it claimed.
async fn works_when_the_list_agrees_with_its_total_during_an_import(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let csv = people_csv(0..10_000, &[]);
    let reply = client.upload(&format!("/campaigns/{campaign}/imports?file_name=contacts"), "text/csv", csv.into_bytes()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = reply.body["id"].as_str().expect("id").to_owned();
    // Pages end near the growing end of the list, where a stale total shows.
    let (mut pages_read, mut last_total) = (0, 0_i64);
    loop {
        let running = client.get(&format!("/imports/{job}")).await.body["status"] == "running";
        let offset = (last_total - 500).max(0);
        let page = client.get(&format!("/campaigns/{campaign}/contacts?limit=1000&offset={offset}")).await;
        let listed = page.body["contacts"].as_array().expect("contacts").len() as i64;
        let total = page.body["total"].as_i64().expect("total");
        assert_eq!(listed, (total - offset).clamp(0, 1000), "page {pages_read} at offset {offset}: {total} in total");
        (pages_read, last_total) = (pages_read + 1, total);
        if !running {
            break;
        }
    }
    assert_eq!(client.wait_for_import(&job).await["accepted"], 10_000);
}

async fn works_when_the_export_escapes_formulas(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    import(&client, &campaign, "text/csv", "object_id,external_id,name,email,phone\n1,U1,=HYPERLINK(\"x\"),a@x.io,+1\n").await;
    let export = client.get(&format!("/campaigns/{campaign}/contacts/export")).await;
    assert_eq!(export.status, 200);
    assert!(export.content_type.starts_with("text/csv"));
    assert!(export.text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{}", export.text);
    let jsonl = client.get(&format!("/campaigns/{campaign}/contacts/export?format=jsonl")).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(jsonl.text.trim()).expect("one line")["name"], "=HYPERLINK(\"x\")");
}

/// The contacts of a campaign as an import left them (required fields and
/// parameters), by object_id, from the state report.
async fn imported_fields(client: &Client, campaign: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let report = client.get(&format!("/campaigns/{campaign}/contacts/report?format=jsonl")).await;
    assert_eq!(report.status, 200, "{}", report.text);
    report
        .text
        .lines()
        .map(|line| {
            let contact: serde_json::Value = serde_json::from_str(line).expect("json line");
            let fields = json!([contact["object_id"], contact["external_id"], contact["name"], contact["email"], contact["phone"], contact["parameters"]]);
            (contact["object_id"].as_str().expect("object_id").to_owned(), fields)
        })
        .collect()
}

/// Both contacts files import into a new campaign as the same contacts:
/// phone numbers as they were, values with their types, a formula kept as
/// text and guarded in the file, and no state turned into parameters. The
/// state is the report's.
async fn works_when_a_downloaded_contacts_file_imports_as_the_same_contacts(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let source = client.campaign("Collections").await;
    client.strategy(&source, "DATA_LOAD", "examples/spec/data_load.py").await;
    let file = [
        json!({"object_id": "1", "external_id": "U1", "name": "=HYPERLINK(\"x\")", "email": "a@x.io", "phone": "+1 (555) 123-4567",
               "score": 12, "vip": true, "note": "-5", "tags": ["a", "=b"], "region": "north", "Balance": 10.5}),
        json!({"object_id": "2", "external_id": "U2", "name": "Bob", "email": "b@x.io", "phone": "+4915112345678",
               "score": "12", "vip": false, "note": "'=kept", "tags": null, "Balance": -3}),
    ]
    .iter()
    .map(|contact| format!("{contact}\n"))
    .collect::<String>();
    assert_eq!(import(&client, &source, "application/x-ndjson", &file).await["accepted"], 2);
    let expected = imported_fields(&client, &source).await;
    assert_eq!(expected["1"][5], json!({"score": 12, "vip": true, "note": "-5", "tags": ["a", "=b"], "region": "north", "Balance": 10.5}));

    let csv = client.get(&format!("/campaigns/{source}/contacts/export")).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "object_id,external_id,name,email,phone,Balance:json,note,region:json,score:json,tags:json,vip:json");
    assert_eq!(lines[1], r#"1,U1,"'=HYPERLINK(""x"")",a@x.io,+1 (555) 123-4567,10.5,-5,"""north""",12,"[""a"",""=b""]",true"#);
    assert_eq!(lines[2], r#"2,U2,Bob,b@x.io,+4915112345678,-3,''=kept,,"""12""",null,false"#);
    let jsonl = client.get(&format!("/campaigns/{source}/contacts/export?format=jsonl")).await;
    assert!(!jsonl.text.contains("communications") && !jsonl.text.contains("First Contact"), "{}", jsonl.text);

    for (format, content_type, body) in [("csv", "text/csv", &csv.text), ("jsonl", "application/x-ndjson", &jsonl.text)] {
        let copy = client.campaign(&format!("Copy {format}")).await;
        let job = import(&client, &copy, content_type, body).await;
        assert_eq!((job["accepted"].as_i64(), job["rejected"].as_i64()), (Some(2), Some(0)), "{format}: {job}");
        assert_eq!(imported_fields(&client, &copy).await, expected, "{format}");
    }

    let report = client.get(&format!("/campaigns/{source}/contacts/report")).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert!(report.content_type.starts_with("text/csv"));
    let lines: Vec<&str> = report.text.lines().collect();
    assert_eq!(lines[0], "object_id,external_id,name,current_stage,communications,sent,planned,outcome,result_flag,result_datetime");
    assert_eq!(lines[1], r#"1,U1,"'=HYPERLINK(""x"")",First Contact,1,0,1,,,"#);
}

both_backends!(
    works_when_the_export_keeps_order_and_communications,
    works_when_an_export_during_an_import_holds_whole_batches,
    works_when_the_csv_export_has_a_column_for_a_parameter_of_its_last_chunk,
    errors_when_more_exports_start_than_a_node_reads_at_once,
    errors_when_a_download_outlasts_its_limit,
    works_when_imports_queue_and_tenants_take_turns,
    errors_when_a_tenant_queues_more_imports_than_its_places,
    errors_when_an_import_announces_more_than_the_upload_limit,
);

async fn works_when_the_export_keeps_order_and_communications(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    assert_eq!(import(&client, &campaign, "text/csv", &people_csv((0..450).rev(), &[])).await["accepted"], 450);
    let export = client.get(&format!("/campaigns/{campaign}/contacts/report?format=jsonl")).await;
    let lines: Vec<serde_json::Value> = export.text.lines().map(|line| serde_json::from_str(line).expect("json line")).collect();
    assert_eq!(lines.len(), 450);
    assert_eq!((lines[0]["object_id"].as_str(), lines[449]["object_id"].as_str()), (Some("C-00000"), Some("C-00449")));
    assert!(lines.iter().all(|contact| contact["communications"].as_array().map(Vec::len) == Some(1)), "every contact keeps its communication");
}

/// An export is one snapshot. Read in chunks apart, an export taken while a
/// second import rewrote the contacts held part of an import batch, or a
/// contact's new fields beside its old communications.
async fn works_when_an_export_during_an_import_holds_whole_batches(backend: Backend) {
    const ROWS: usize = 5_000;
    const BATCH: usize = 1_000;
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "host/runtime/tests/strategies/probe.py").await;
    let round = |round: &str| people_csv(0..ROWS, &[("case", "plan"), ("round", round)]);
    assert_eq!(import(&client, &campaign, "text/csv", &round("1")).await["accepted"], ROWS);
    let reply = client.upload(&format!("/campaigns/{campaign}/imports?file_name=contacts"), "text/csv", round("2").into_bytes()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = reply.body["id"].as_str().expect("id").to_owned();
    let mut exports = 0;
    loop {
        let running = client.get(&format!("/imports/{job}")).await.body["status"] == "running";
        let export = client.get(&format!("/campaigns/{campaign}/contacts/report?format=jsonl")).await;
        let contacts: Vec<serde_json::Value> = export.text.lines().map(|line| serde_json::from_str(line).expect("json line")).collect();
        assert_eq!(contacts.len(), ROWS, "export {exports}");
        let mut second_round = 0;
        for contact in &contacts {
            let round = contact["parameters"]["round"].as_str().expect("round");
            let planned = contact["communications"][0]["name"].as_str().expect("communication");
            assert_eq!(planned, format!("round {round}"), "export {exports}: {} has fields and communications of two rounds", contact["object_id"]);
            second_round += usize::from(round == "2");
        }
        assert_eq!(second_round % BATCH, 0, "export {exports} holds {second_round} contacts of the second import, not whole batches of {BATCH}");
        exports += 1;
        if !running {
            break;
        }
    }
    assert_eq!(client.wait_for_import(&job).await["updated"], ROWS);
}

/// The export is written a chunk at a time, and its CSV columns are known
/// before the first: a parameter only the last contact has is a column.
async fn works_when_the_csv_export_has_a_column_for_a_parameter_of_its_last_chunk(backend: Backend) {
    const ROWS: usize = 1_201;
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let mut jsonl = String::new();
    for index in 0..ROWS {
        let mut contact = json!({"object_id": format!("C-{index:05}"), "external_id": "U", "name": "Ann", "email": "a@x.io", "phone": "1"});
        if index == ROWS - 1 {
            contact["vip"] = json!(true);
        }
        jsonl.push_str(&format!("{contact}\n"));
    }
    assert_eq!(import(&client, &campaign, "application/x-ndjson", &jsonl).await["accepted"], ROWS);
    let export = client.get(&format!("/campaigns/{campaign}/contacts/export")).await;
    assert_eq!(export.status, 200, "{}", export.text);
    let lines: Vec<&str> = export.text.lines().collect();
    assert_eq!(lines.len(), ROWS + 1);
    assert_eq!(lines[0], "object_id,external_id,name,email,phone,vip:json");
    assert_eq!(lines[1], "C-00000,U,Ann,a@x.io,1,");
    assert_eq!(lines[ROWS], "C-01200,U,Ann,a@x.io,1,true");
}

/// A node has two exports in progress at once: a third started meanwhile
/// is told to come back (429), and one started after their downloads is
/// served.
async fn errors_when_more_exports_start_than_a_node_reads_at_once(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    assert_eq!(import(&client, &campaign, "text/csv", &people_csv(0..10_000, &[])).await["accepted"], 10_000);
    let path = format!("/campaigns/{campaign}/contacts/export?format=jsonl");
    let (first, second, third) = tokio::join!(client.get(&path), client.get(&path), client.get(&path));
    let mut statuses = [first.status, second.status, third.status];
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429], "{} / {} / {}", first.status, second.status, third.text);
    let busy = [&first, &second, &third].into_iter().find(|reply| reply.status == 429).expect("one refused");
    assert!(busy.body["detail"].as_str().expect("detail").starts_with("2 contact exports are in progress on this node"), "{}", busy.text);
    let served = [&first, &second, &third].into_iter().find(|reply| reply.status == 200).expect("one served");
    assert_eq!(served.text.lines().count(), 10_000);
    assert_eq!(client.get(&path).await.text.lines().count(), 10_000, "the slots are free again");
}

/// An export keeps its slot until its download ends: two clients that stop
/// reading hold both, so a third export is refused, until the download
/// limit frees the slots, though those clients never read again, and cuts
/// their bodies short of the length announced, so each sees its download
/// fail.
async fn errors_when_a_download_outlasts_its_limit(backend: Backend) {
    const ROWS: usize = 20_000;
    let app = App::start_tuned(backend, Tuning { download_limit: Some(std::time::Duration::from_secs(5)), ..Tuning::default() }).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    // 40 MB of export: far more than the sockets buffer, so a client that
    // does not read stops the server's writes.
    let note = "x".repeat(2_000);
    assert_eq!(import(&client, &campaign, "text/csv", &people_csv(0..ROWS, &[("note", &note)])).await["accepted"], ROWS);
    let path = format!("/campaigns/{campaign}/contacts/export?format=jsonl");
    let stalled = || client.http.get(format!("{}/api{path}", client.base)).bearer_auth(&client.key).send();
    let (first, second) = tokio::join!(stalled(), stalled());
    let (first, second) = (first.expect("first export"), second.expect("second export"));
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    assert_eq!(client.get(&path).await.status, 429, "both slots are held by downloads in progress");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    // The stalled clients have still read nothing.
    let served = client.get(&path).await;
    assert_eq!((served.status, served.text.lines().count()), (200, ROWS), "the slots are free again, and a download within the limit is whole");
    for stalled in [first, second] {
        let announced = stalled.content_length().expect("a length");
        assert!(announced > 40_000_000, "{announced} bytes");
        assert!(stalled.bytes().await.is_err(), "the download was cut short of its {announced} bytes");
    }
}

/// A node runs two imports at once, one per tenant: a tenant's second
/// import is queued with its place while another tenant's starts at once,
/// and a third tenant's first goes ahead of the queued second. Queued
/// imports start as slots free up and all finish.
async fn works_when_imports_queue_and_tenants_take_turns(backend: Backend) {
    let app = App::start(backend).await;
    let mut tenants = Vec::new();
    for name in ["Acme", "Bolt", "Crux"] {
        let client = app.tenant(name).await;
        let campaign = client.campaign("Collections").await;
        client.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
        tenants.push((client, format!("/campaigns/{campaign}/imports?file_name=contacts")));
    }
    let [(acme, acme_path), (bolt, bolt_path), (crux, crux_path)] = &tenants[..] else { unreachable!() };
    let long = queue_csv(acme, acme_path, 0..20_000).await;
    assert_eq!((long["status"].as_str(), &long["queue_position"]), (Some("running"), &serde_json::Value::Null), "{long}");
    let second = queue_csv(acme, acme_path, 20_000..20_003).await;
    assert_eq!((second["status"].as_str(), second["queue_position"].as_u64()), (Some("queued"), Some(1)), "Acme holds its share: {second}");
    let other = queue_csv(bolt, bolt_path, 0..20_000).await;
    assert_eq!(other["status"], "running", "Bolt takes the slot Acme leaves free: {other}");
    let third = queue_csv(crux, crux_path, 0..3).await;
    assert_eq!((third["status"].as_str(), third["queue_position"].as_u64()), (Some("queued"), Some(1)), "Crux's first goes first: {third}");
    let second_now = acme.get(&format!("/imports/{}", second["id"].as_str().expect("id"))).await.body;
    assert_eq!((second_now["status"].as_str(), second_now["queue_position"].as_u64()), (Some("queued"), Some(2)), "{second_now}");
    assert_eq!(acme.get(&format!("/imports/{}", long["id"].as_str().expect("id"))).await.body["status"], "running", "all of it came while Acme's first ran");
    for (client, job, rows) in [(acme, &long, 20_000), (acme, &second, 3), (bolt, &other, 20_000), (crux, &third, 3)] {
        let done = client.wait_for_import(job["id"].as_str().expect("id")).await;
        assert_eq!((done["status"].as_str(), done["accepted"].as_i64()), (Some("done"), Some(rows)), "{done}");
        assert!(done["started_at"].as_str() >= done["created_at"].as_str(), "{done}");
    }
}

/// Uploads `rows` of [`people_csv`] and returns the job, accepted.
async fn queue_csv(client: &Client, path: &str, rows: std::ops::Range<usize>) -> serde_json::Value {
    let reply = client.upload(path, "text/csv", people_csv(rows, &[]).into_bytes()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.body
}

/// A tenant may have 10 imports uploading or queued on a node: the 11th
/// is told to come back (429) and creates no job; once the queue has
/// moved on, the tenant imports again.
async fn errors_when_a_tenant_queues_more_imports_than_its_places(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    client.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    let path = format!("/campaigns/{campaign}/imports?file_name=contacts");
    let long = client.upload(&path, "text/csv", people_csv(0..20_000, &[]).into_bytes()).await;
    assert_eq!(long.body["status"], "running", "{}", long.text);
    let mut queued = Vec::new();
    for index in 0..stratagem_services::imports::WAITING_PER_TENANT {
        let rows = 20_000 + index * 3..20_003 + index * 3;
        let reply = client.upload(&path, "text/csv", people_csv(rows, &[]).into_bytes()).await;
        assert_eq!((reply.status, reply.body["queue_position"].as_u64()), (202, Some(index as u64 + 1)), "{}", reply.text);
        queued.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    let refused = client.upload(&path, "text/csv", people_csv(50_000..50_003, &[]).into_bytes()).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.body["detail"].as_str().expect("detail").starts_with("you have 10 contact imports uploading or queued on this node"), "{}", refused.text);
    assert_eq!(client.get(&format!("/imports/{}", long.body["id"].as_str().expect("id"))).await.body["status"], "running", "the refusal came while the first ran");
    for job in &queued {
        assert_eq!(client.wait_for_import(job).await["accepted"], 3);
    }
    let contacts = client.get(&format!("/campaigns/{campaign}/contacts?limit=1")).await.body;
    assert_eq!(contacts["total"], 20_000 + 30, "the refused file wrote nothing: {contacts}");
    assert_eq!(import(&client, &campaign, "text/csv", &people_csv(50_000..50_003, &[])).await["accepted"], 3, "its places are free again");
}

/// An upload announced beyond the limit is refused from its headers alone,
/// and takes no import slot.
async fn errors_when_an_import_announces_more_than_the_upload_limit(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/imports");
    for _ in 0..3 {
        let reply = app.announce_body(&client.key, "POST", &path, "text/csv", stratagem_api::IMPORT_LIMIT_BYTES + 1).await;
        assert!(reply.starts_with("http/1.1 413") && reply.contains("larger than 536870912 bytes"), "{reply}");
    }
    assert_eq!(import(&client, &campaign, "text/csv", &people_csv(0..3, &[])).await["accepted"], 3);
}

/// Contacts `C-00000`, … for `indexes`, as an import writes them.
fn batch_of(indexes: std::ops::Range<usize>) -> Vec<(stratagem_domain::Contact, Option<serde_json::Value>)> {
    indexes
        .map(|i| {
            let contact = json!({"object_id": format!("C-{i:05}"), "external_id": format!("U-{i}"), "name": format!("Person {i}")});
            (serde_json::from_value(contact).expect("contact"), None)
        })
        .collect()
}

/// A batch of an import job, for writing it through the store.
fn import_batch(
    job: &str,
    node: &str,
    tenant: &str,
    campaign: &str,
    contacts: Vec<(stratagem_domain::Contact, Option<serde_json::Value>)>,
    rows: i64,
    rejected: Vec<stratagem_store::RejectedRow>,
) -> stratagem_store::ImportBatch {
    stratagem_store::ImportBatch {
        job_id: job.into(),
        node_id: node.into(),
        tenant_id: tenant.into(),
        campaign_id: campaign.into(),
        contacts,
        rows,
        rejected: rejected.len() as i64,
        report: stratagem_store::ImportReport { rejected, strategy_errors: Vec::new() },
        invocations: Vec::new(),
    }
}

/// Consecutive batches of an import write their contacts at the same time
/// on PostgreSQL, but commit, and count, in the file's order: a batch
/// whose turn comes after the batch before it committed counts both; one
/// whose turn never comes (the batch before failed) writes nothing.
async fn works_when_import_batches_commit_in_the_files_order(backend: Backend) {
    use stratagem_store::ImportCounts;
    let app = App::start_with(backend, Background::Off).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    let new_job = stratagem_store::NewImportJob {
        tenant_id: &tenant,
        campaign_id: &campaign,
        file_name: Some("contacts.csv"),
        total_rows: 9,
        new_contacts: 9,
        file_bytes: 400,
        runs_strategy: false,
    };
    let job = app.store.imports().create_import_job(new_job, Default::default(), "node_a").await.expect("job");
    assert!(app.store.imports().start_queued_import(&job.id, "node_a").await.expect("start"));
    let write = |indexes, rows| import_batch(&job.id, "node_a", &tenant, &campaign, batch_of(indexes), rows, Vec::new());
    let imports = app.store.imports();

    let (first_committed, second_turn) = tokio::sync::oneshot::channel::<()>();
    let second = write(3..6, 3);
    let first = write(0..3, 3);
    let (second_written, first_written) = match backend {
        // The second batch writes first and waits for its turn while the
        // first one writes and commits.
        Backend::Postgres => {
            let second_written = imports.write_import_batch(&second, async move { second_turn.await.is_ok() });
            let first_written = async {
                let written = imports.write_import_batch(&first, std::future::ready(true)).await;
                first_committed.send(()).expect("the second batch waits");
                written
            };
            let (second_written, first_written) = tokio::join!(second_written, first_written);
            (second_written.expect("second"), first_written.expect("first"))
        }
        // One writer: the first batch commits before the second starts.
        Backend::Sqlite => {
            let first_written = imports.write_import_batch(&first, std::future::ready(true)).await.expect("first");
            first_committed.send(()).expect("the second batch's turn");
            (imports.write_import_batch(&second, async move { second_turn.await.is_ok() }).await.expect("second"), first_written)
        }
    };
    assert_eq!(first_written, Some(ImportCounts { processed_rows: 3, accepted: 3, updated: 0, rejected: 0 }));
    assert_eq!(second_written, Some(ImportCounts { processed_rows: 6, accepted: 6, updated: 0, rejected: 0 }));

    // The batch before the third one failed: its turn never comes.
    let third = imports.write_import_batch(&write(6..9, 3), std::future::ready(false)).await.expect("third");
    assert_eq!(third, None);
    let path = format!("/campaigns/{campaign}/contacts");
    assert_eq!(client.get(&path).await.body["total"], 6, "the third batch wrote nothing");
    let job = client.get(&format!("/imports/{}", job.id)).await.body;
    assert_eq!(job["processed_rows"], 6, "{job}");
    assert_eq!(job["accepted"], 6, "{job}");
}

/// A node imported two batches of a 12-row file (one row rejected) and
/// died while its third batch was in flight. The job counts exactly the
/// committed rows, not the lost batch; once the node is known dead the job
/// is `interrupted` and says what was written. On SQLite the restart knows
/// at once (one process uses the database at a time); on PostgreSQL
/// another node knows once the dead node's heartbeat has lapsed, since
/// until then it may be alive. A late write of the dead node is refused.
async fn works_when_a_dead_nodes_import_is_interrupted_with_exact_counts(backend: Backend) {
    use stratagem_store::{ImportCounts, RejectedRow};
    let dead = App::start_with(backend, Background::Off).await;
    let (tenant, client) = dead.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    let new_job = stratagem_store::NewImportJob {
        tenant_id: &tenant,
        campaign_id: &campaign,
        file_name: Some("contacts.csv"),
        total_rows: 12,
        new_contacts: 12,
        file_bytes: 600,
        runs_strategy: false,
    };
    let job = dead.store.imports().create_import_job(new_job, Default::default(), "node_dead").await.expect("job");
    assert!(dead.store.imports().start_queued_import(&job.id, "node_dead").await.expect("start"), "the dead node started it");
    let write = |contacts, rows, rejected: Vec<RejectedRow>| import_batch(&job.id, "node_dead", &tenant, &campaign, contacts, rows, rejected);
    let imports = dead.store.imports();
    let first = imports.write_import_batch(&write(batch_of(0..4), 4, Vec::new()), std::future::ready(true)).await.expect("write");
    assert_eq!(first, Some(ImportCounts { processed_rows: 4, accepted: 4, updated: 0, rejected: 0 }));
    let bad_row = RejectedRow { line: 9, column: None, reason: "line 9: expected 5 fields, found 2".into() };
    let second = imports.write_import_batch(&write(batch_of(4..7), 4, vec![bad_row.clone()]), std::future::ready(true)).await.expect("write");
    assert_eq!(second, Some(ImportCounts { processed_rows: 8, accepted: 7, updated: 0, rejected: 1 }));
    // The third batch (rows 9-12) was in flight when the node died: never committed.

    // The dead node's heartbeat lapses after the default minute; the
    // survivor sweeps often.
    let leases = stratagem_api::ImportLeases { sweep_every: std::time::Duration::from_millis(200), ..Default::default() };
    let survivor = dead.second_node_tuned(Tuning { import_leases: Some(leases), ..Tuning::default() }).await;
    let client = survivor.client_for(&client);
    let path = format!("/imports/{}", job.id);
    let report = match backend {
        // Known at once: the survivor's start-up marked it before serving.
        Backend::Sqlite => client.get(&path).await.body,
        Backend::Postgres => {
            // The node was heard from moments ago: it may be alive.
            assert_eq!(client.get(&path).await.body["status"], "running");
            // As if it had gone silent two minutes ago.
            use sqlx::Connection;
            let mut database = sqlx::PgConnection::connect(survivor.database_url()).await.expect("database");
            sqlx::query("UPDATE import_jobs SET heartbeat_at = heartbeat_at - 120000000 WHERE id = $1")
                .bind(&job.id)
                .execute(&mut database)
                .await
                .expect("age the heartbeat");
            client.wait_for_import(&job.id).await
        }
    };
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["interrupted_reason"], "node_stopped", "{report}");
    let counts = ["total_rows", "processed_rows", "accepted", "updated", "rejected"].map(|field| report[field].as_i64().unwrap_or(-1));
    assert_eq!(counts, [12, 8, 7, 0, 1], "{report}");
    assert_eq!(report["report"]["rejected"][0]["line"], 9, "{report}");
    let detail = report["detail"].as_str().expect("detail");
    assert!(detail.starts_with("the import was interrupted: the server running it stopped before it finished (last heard from at "), "{detail}");
    assert!(detail.contains("8 of 12 rows were written (7 new, 0 updated, 1 rejected); the other 4 were not. Import the file again to finish"), "{detail}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 7, "the counts are the rows written");

    // The dead node was only slow, and writes its third batch late: refused, nothing written.
    let late = imports.write_import_batch(&write(batch_of(7..11), 4, Vec::new()), std::future::ready(true)).await.expect("write");
    assert_eq!(late, None);
    assert!(!dead.store.imports().renew_import_heartbeat(&job.id, "node_dead").await.expect("renew"));
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 7);
    assert_eq!(client.get(&path).await.body["processed_rows"], 8);
}
