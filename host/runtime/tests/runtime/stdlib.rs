//! The standard library at run time: any pure-Python module imports where
//! a strategy needs it, inside a function too, from the read-only library
//! every guest shares; zoneinfo reads the platform's time zone database.

use serde_json::json;

use crate::support::{options, run_probe, strategy, PROBE};

/// The modules the issue names, none of them imported by the build.
const MODULES: [&str; 18] = [
    "zoneinfo", "decimal", "statistics", "uuid", "hashlib", "hmac", "base64", "csv", "urllib.parse", "calendar", "difflib",
    "fractions", "textwrap", "html", "email.utils", "dataclasses", "enum", "typing",
];

#[tokio::test]
async fn works_when_standard_library_modules_are_imported_inside_a_hook() {
    let probe = strategy(PROBE).await;
    let invocation = run_probe(&probe, json!({"case": "stdlib", "modules": MODULES}), &options()).await;
    let contact = invocation.result.unwrap_or_else(|error| panic!("{error}")).expect("contact");
    assert_eq!(contact.internal_data["imported"], json!(MODULES));
    assert_eq!((contact.internal_data["mean"].clone(), contact.internal_data["total"].clone()), (json!(2.5), json!("0.30")));
    assert_eq!(contact.internal_data["new_york"], "2026-07-01T08:00:00-04:00", "zoneinfo reads the platform's database");
}
