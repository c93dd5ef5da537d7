//! The YAML analytics file of a campaign (Settings > YAML Analytics): the
//! metrics that Deep Analysis asks an LLM about each conversation, how many
//! days back Recalculate and Continue calculation reach, and how each
//! metric is charted. [`parse`] reads and validates it; no I/O lives here.
//!
//! # Format
//!
//! ```yaml
//! version: 1          # optional; when present it must be 1
//! depth_days: 30      # required, 1 to 365: how many days back Recalculate and
//!                     # Continue calculation process sessions
//! schedule:           # optional: how often the sessions that ended since the
//!   every_minutes: 60 # last run are analysed on their own (5 to 10080, the
//!                     # default 60); `schedule: off` analyses only when
//!                     # Recalculate or Continue calculation is clicked
//! metrics:            # required, 1 to 100 metrics
//!   - code: satisfaction          # required, unique: a lowercase letter, then up to
//!                                 # 63 lowercase letters, digits or `_`
//!     name: Client satisfaction   # required, 1 to 200 characters
//!     description: How happy the client sounded   # optional
//!     prompt: Rate how satisfied the client is with the conversation.
//!                                 # required: the question put to the LLM about
//!                                 # one conversation transcript
//!     type: scale                 # required: boolean, number, category or scale
//!     scale: {min: 1, max: 5}     # type scale only, and required there: whole
//!                                 # numbers, min < max, at most 100 apart
//!     display: bar                # optional, see below
//!   - code: payment_intent
//!     name: Payment intent
//!     prompt: Does the client intend to pay?
//!     type: category
//!     categories: [will_pay, needs_plan, refuses, unclear]
//!                                 # type category only, and required there:
//!                                 # 2 to 50 different non-empty names
//!   - code: promised_amount
//!     name: Promised amount
//!     prompt: What amount did the client promise to pay?
//!     type: number
//!     range: {min: 0, max: 100000}   # type number only, optional: either bound
//!                                    # or both (min < max)
//! ```
//!
//! `display` chooses the chart; each type allows a few, the first is the
//! default:
//!
//! | type       | display                            |
//! |------------|------------------------------------|
//! | `boolean`  | `pie`, `bar`, `number`             |
//! | `number`   | `line`, `bar`, `number`, `histogram` |
//! | `category` | `bar`, `pie`, `table`              |
//! | `scale`    | `bar`, `line`, `number`            |
//!
//! The file is at most 256 KiB of UTF-8 text holding one YAML document.
//! Values follow the YAML 1.2 core schema (`30` is a number, `"30"` text);
//! text fields take any single value as written (`name: 2024`).
//! Aliases (`*name`) and tags (`!!str`) are rejected: aliases are how a
//! small file expands into a huge one ("billion laughs"), and neither is
//! needed to write metrics. An optional key with an empty value counts as
//! absent.
//!
//! # Errors
//!
//! Every [`AnalyticsError`] carries the 1-based line and column of the value
//! at fault (of the mapping, for a missing key; of line 1, column 1, for the
//! whole file), the path to it (`metrics[1].type`) and what to change. A
//! file that is not valid YAML gets one error at the parser's position; a
//! valid YAML file gets every problem found, in file order.

mod check;
mod definition;
mod error;
mod fields;
mod kinds;
mod scalar;
mod yaml;

use crate::contact_file::size_text;
use check::Checker;
use error::whole_file;
use yaml::load;

pub use definition::{AnalyticsDefinition, Display, Metric, MetricKind, Schedule};
pub use error::{AnalyticsError, AnalyticsErrors};

/// Larger files are refused before parsing; real ones are a few KiB.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Each metric costs an LLM question per conversation.
pub const MAX_METRICS: usize = 100;
/// Deeper collections are refused while parsing; the format needs four levels.
pub const MAX_NESTING: usize = 32;
/// The reach of Recalculate and Continue calculation, in days.
pub const DEPTH_DAYS: std::ops::RangeInclusive<i64> = 1..=365;
/// How often a schedule may run, in minutes: each run asks the LLM about
/// every session that ended since the last one.
pub const SCHEDULE_MINUTES: std::ops::RangeInclusive<i64> = 5..=10_080;

/// Reads and validates an analytics file.
pub fn parse(text: &str) -> Result<AnalyticsDefinition, AnalyticsErrors> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(AnalyticsErrors(vec![whole_file(format!(
            "the file is {}, larger than the limit of {}; keep only the metrics you need",
            size_text(text.len() as u64),
            size_text(MAX_TEXT_BYTES as u64)
        ))]));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = load(text).map_err(|error| AnalyticsErrors(vec![error]))?;
    let root = match root {
        Some(root) if !root.is_null() => root,
        _ => {
            return Err(AnalyticsErrors(vec![whole_file(
                "the file is empty; an analytics file needs `depth_days` and a list of `metrics`"
                    .to_owned(),
            )]))
        }
    };
    let mut checker = Checker::default();
    let definition = checker.definition(&root);
    match definition {
        Some(definition) if checker.errors.is_empty() => Ok(definition),
        _ => {
            let mut errors = checker.errors;
            errors.sort_by_key(|error| (error.line, error.column));
            Err(AnalyticsErrors(errors))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::parse;

    pub(crate) const EXAMPLE: &str =
        include_str!("../../../../examples/analytics/debt-collection.yaml");

    pub(crate) fn errors(text: &str) -> Vec<String> {
        let errors = parse(text).expect_err("the file is invalid");
        errors.0.iter().map(ToString::to_string).collect()
    }

    /// A file whose metrics are `metrics`, starting on line 3.
    pub(crate) fn with_metrics(metrics: &str) -> String {
        format!("depth_days: 30\nmetrics:\n{metrics}")
    }

    pub(crate) fn metric(code: &str) -> String {
        format!("  - {{code: {code}, name: N, prompt: Q?, type: boolean}}\n")
    }
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn works_when_the_debt_collection_example_is_parsed() {
        let definition = parse(EXAMPLE).expect("the example is valid");
        assert_eq!(definition.version, 1);
        assert_eq!(definition.depth_days, 30);
        let codes: Vec<&str> = definition.metrics.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "client_satisfaction",
                "promise_to_pay",
                "payment_intent",
                "promised_amount",
                "days_until_payment",
                "dispute_reason",
                "callback_requested",
                "agent_politeness",
            ]
        );
        let satisfaction = &definition.metrics[0];
        assert_eq!(satisfaction.name, "Client satisfaction");
        assert_eq!(
            satisfaction.prompt,
            "Rate how satisfied the client is with the conversation, from 1 (angry or hostile) \
             to 5 (calm, friendly and thankful)."
        );
        assert_eq!(satisfaction.kind, MetricKind::Scale { min: 1, max: 5 });
        assert_eq!(satisfaction.display, Display::Bar);
        assert_eq!(definition.metrics[1].kind, MetricKind::Boolean);
        assert_eq!(definition.metrics[1].display, Display::Pie);
        let intent = &definition.metrics[2];
        assert!(intent
            .prompt
            .starts_with("Classify what the client intends"));
        assert!(
            intent.prompt.ends_with("from the conversation\n"),
            "{:?}",
            intent.prompt
        );
        assert_eq!(
            intent.kind,
            MetricKind::Category {
                categories: [
                    "will_pay_in_full",
                    "will_pay_in_part",
                    "needs_payment_plan",
                    "disputes_debt",
                    "refuses",
                    "unclear"
                ]
                .map(String::from)
                .to_vec()
            }
        );
        assert_eq!(
            definition.metrics[3].kind,
            MetricKind::Number {
                min: Some(0.0),
                max: Some(1_000_000.0)
            }
        );
        assert_eq!(definition.metrics[3].display, Display::Histogram);
        assert_eq!(definition.metrics[5].display, Display::Table);
        assert_eq!(definition.metrics[6].display, Display::Number);
        let politeness = &definition.metrics[7];
        assert_eq!(politeness.kind, MetricKind::Scale { min: 1, max: 10 });
        assert_eq!(politeness.display, Display::Bar);
        assert_eq!(
            politeness.description,
            "Checks the tone of the AI agent, not of the client."
        );
    }

    #[test]
    fn errors_when_the_text_is_larger_than_the_limit() {
        let valid = with_metrics(&metric("a"));
        let padded = |size: usize| format!("{valid}#{}", "x".repeat(size - valid.len() - 1));
        assert!(parse(&padded(MAX_TEXT_BYTES)).is_ok());
        assert_eq!(
            errors(&padded(MAX_TEXT_BYTES + 1)),
            [
                "line 1, column 1: the file is 256.0 KiB (262145 bytes), larger than the limit of \
              256.0 KiB (262144 bytes); keep only the metrics you need"
            ]
        );
    }

    #[test]
    fn errors_when_the_file_is_empty() {
        for text in ["", "\n  \n", "# only a comment\n", "---\n", "\u{feff}"] {
            assert_eq!(
                errors(text),
                ["line 1, column 1: the file is empty; an analytics file needs `depth_days` and \
                  a list of `metrics`"],
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_when_several_problems_are_reported_together() {
        let text = "\
depth_days: 0
metrics:
  - code: a
    name: A
    prompt: Q?
    type: percent
  - code: a
    name: B
    prompt: Q?
    type: scale
    scale: {min: 3, max: 1}
    colour: red
";
        let error = parse(text).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "line 1, column 13: depth_days: must be from 1 to 365 days, found 0\n\
             line 6, column 11: metrics[0].type: unknown metric type `percent`; use one of \
             boolean, number, category, scale\n\
             line 7, column 11: metrics[1].code: code `a` is already used by metrics[0] on line \
             3; each metric needs its own code\n\
             line 11, column 12: metrics[1].scale: min (3) must be less than max (1)\n\
             line 12, column 5: metrics[1]: unknown key `colour`; allowed keys: code, name, \
             description, prompt, type, scale, categories, range, display"
        );
    }
}
