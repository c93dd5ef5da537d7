//! Checks the loaded document against the format: the root mapping and each
//! metric's common keys. Type settings are in `kinds`, keys and values in
//! `fields`.

use std::collections::HashMap;

use super::definition::{AnalyticsDefinition, Metric, MetricType, Schedule};
use super::error::AnalyticsError;
use super::scalar::Scalar;
use super::yaml::{Node, Pos, Value};
use super::{DEPTH_DAYS, MAX_METRICS, SCHEDULE_MINUTES};

const VERSION: u32 = 1;
const MAX_CODE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;
const ROOT_KEYS: [&str; 4] = ["version", "depth_days", "schedule", "metrics"];
const METRIC_KEYS: [&str; 9] = [
    "code",
    "name",
    "description",
    "prompt",
    "type",
    "scale",
    "categories",
    "range",
    "display",
];
const METRIC_REQUIRED: [&str; 4] = ["code", "name", "prompt", "type"];

/// Collects the semantic errors of a document.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) errors: Vec<AnalyticsError>,
}

impl Checker {
    pub(super) fn error(&mut self, pos: Pos, path: &str, message: String) {
        self.errors.push(AnalyticsError {
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message,
        });
    }

    pub(super) fn definition(&mut self, root: &Node<'_>) -> Option<AnalyticsDefinition> {
        if !matches!(root.value, Value::Map(_)) {
            self.error(
                root.pos,
                "",
                format!(
                    "the file must be a mapping with the keys version, depth_days and metrics; \
                     found {}",
                    root.found()
                ),
            );
            return None;
        }
        let fields = self.fields(root, "", &ROOT_KEYS, &["depth_days", "metrics"])?;
        let version = fields
            .get("version")
            .map_or(Some(VERSION), |node| self.version(node));
        let depth_days = fields
            .get("depth_days")
            .and_then(|node| self.depth_days(node));
        let schedule = fields
            .get("schedule")
            .map_or(Some(Some(Schedule::DEFAULT)), |node| self.schedule(node));
        let metrics = fields.get("metrics").and_then(|node| self.metrics(node));
        Some(AnalyticsDefinition {
            version: version?,
            depth_days: depth_days?,
            schedule: schedule?,
            metrics: metrics?,
        })
    }

    /// `off` (or `false`), or `{every_minutes: N}`.
    fn schedule(&mut self, node: &Node<'_>) -> Option<Option<Schedule>> {
        match node.scalar() {
            Some(Scalar::Text("off") | Scalar::Bool(false)) => return Some(None),
            Some(_) => {
                self.error(
                    node.pos,
                    "schedule",
                    format!(
                        "expected `off` or a mapping such as `{{every_minutes: 60}}`, found {}",
                        node.found()
                    ),
                );
                return None;
            }
            None => {}
        }
        let fields = self.fields(node, "schedule", &["every_minutes"], &["every_minutes"])?;
        let minutes = fields
            .get("every_minutes")
            .and_then(|node| self.integer(node, "schedule.every_minutes").map(|minutes| (node, minutes)));
        let (node, minutes) = minutes?;
        if !SCHEDULE_MINUTES.contains(&minutes) {
            self.error(
                node.pos,
                "schedule.every_minutes",
                format!(
                    "must be from {} to {} minutes (a week), found {minutes}",
                    SCHEDULE_MINUTES.start(),
                    SCHEDULE_MINUTES.end()
                ),
            );
            return None;
        }
        Some(Some(Schedule { every_minutes: u32::try_from(minutes).ok()? }))
    }

    fn version(&mut self, node: &Node<'_>) -> Option<u32> {
        let version = self.integer(node, "version")?;
        if version != i64::from(VERSION) {
            self.error(
                node.pos,
                "version",
                format!("unsupported version {version}; this platform reads version {VERSION}"),
            );
            return None;
        }
        Some(VERSION)
    }

    fn depth_days(&mut self, node: &Node<'_>) -> Option<u32> {
        let days = self.integer(node, "depth_days")?;
        if DEPTH_DAYS.contains(&days) {
            u32::try_from(days).ok()
        } else {
            self.error(
                node.pos,
                "depth_days",
                format!(
                    "must be from {} to {} days, found {days}",
                    DEPTH_DAYS.start(),
                    DEPTH_DAYS.end()
                ),
            );
            None
        }
    }

    fn metrics(&mut self, node: &Node<'_>) -> Option<Vec<Metric>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                "metrics",
                format!("expected a list of metrics, found {}", node.found()),
            );
            return None;
        };
        let before = self.errors.len();
        if items.is_empty() {
            self.error(node.pos, "metrics", "list at least one metric".to_owned());
        } else if items.len() > MAX_METRICS {
            self.error(
                node.pos,
                "metrics",
                format!(
                    "{} metrics are listed; the limit is {MAX_METRICS}",
                    items.len()
                ),
            );
        }
        let mut codes: HashMap<&str, (usize, Pos)> = HashMap::new();
        let mut metrics = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let path = format!("metrics[{index}]");
            metrics.extend(self.metric(item, &path));
            // Checked apart from the rest, so a metric with other errors
            // still gets its duplicate reported.
            if let Some(code) = valid_code(item) {
                self.unique_code(&mut codes, code, index, &path);
            }
        }
        (self.errors.len() == before).then_some(metrics)
    }

    /// Records the code of `metrics[index]`, or reports it when an earlier
    /// metric has it.
    fn unique_code<'n>(
        &mut self,
        codes: &mut HashMap<&'n str, (usize, Pos)>,
        code: &'n Node<'_>,
        index: usize,
        path: &str,
    ) {
        if let Some((first, first_pos)) = codes.get(code.source()) {
            self.error(
                code.pos,
                &format!("{path}.code"),
                format!(
                    "code `{}` is already used by metrics[{first}] on line {}; each metric \
                     needs its own code",
                    code.source(),
                    first_pos.line
                ),
            );
        } else {
            codes.insert(code.source(), (index, code.pos));
        }
    }

    fn metric(&mut self, node: &Node<'_>, path: &str) -> Option<Metric> {
        if !matches!(node.value, Value::Map(_)) {
            self.error(
                node.pos,
                path,
                format!(
                    "each metric must be a mapping with at least code, name, prompt and type; \
                     found {}",
                    node.found()
                ),
            );
            return None;
        }
        let before = self.errors.len();
        let fields = self.fields(node, path, &METRIC_KEYS, &METRIC_REQUIRED)?;
        let code = fields
            .get("code")
            .and_then(|node| self.code(node, &format!("{path}.code")));
        let name = fields
            .get("name")
            .and_then(|node| self.name(node, &format!("{path}.name")));
        let description = match fields.get("description") {
            None => Some(String::new()),
            Some(node) => self
                .text(node, &format!("{path}.description"))
                .map(str::to_owned),
        };
        let prompt = fields
            .get("prompt")
            .and_then(|node| self.non_empty_text(node, &format!("{path}.prompt")))
            .map(str::to_owned);
        let metric_type = fields
            .get("type")
            .and_then(|node| self.metric_type(node, &format!("{path}.type")));
        let kind =
            metric_type.and_then(|metric_type| self.kind(metric_type, node.pos, &fields, path));
        let display = self.display(metric_type, &fields, path);
        if self.errors.len() > before {
            return None;
        }
        Some(Metric {
            code: code?,
            name: name?,
            description: description?,
            prompt: prompt?,
            kind: kind?,
            display: display?,
        })
    }

    fn code(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        let code = self.text(node, path)?;
        if is_code(code) {
            return Some(code.to_owned());
        }
        self.error(
            node.pos,
            path,
            format!(
                "code `{code}` must start with a lowercase letter and hold only lowercase \
                 letters, digits and `_`, at most {MAX_CODE_CHARS} characters"
            ),
        );
        None
    }

    fn name(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        let name = self.non_empty_text(node, path)?;
        let length = name.chars().count();
        if length > MAX_NAME_CHARS {
            self.error(
                node.pos,
                path,
                format!("the name is {length} characters long; the limit is {MAX_NAME_CHARS}"),
            );
            return None;
        }
        Some(name.to_owned())
    }

    fn metric_type(&mut self, node: &Node<'_>, path: &str) -> Option<MetricType> {
        let all = MetricType::ALL.map(MetricType::as_str).join(", ");
        let Some(Scalar::Text(text)) = node.scalar() else {
            self.error(
                node.pos,
                path,
                format!("expected one of {all}, found {}", node.found()),
            );
            return None;
        };
        let found = MetricType::ALL.into_iter().find(|kind| kind.as_str() == text);
        if found.is_none() {
            self.error(
                node.pos,
                path,
                format!("unknown metric type `{text}`; use one of {all}"),
            );
        }
        found
    }
}

/// The value of a metric's `code` when it is a well-formed code.
fn valid_code<'n, 'a>(metric: &'n Node<'a>) -> Option<&'n Node<'a>> {
    let Value::Map(entries) = &metric.value else {
        return None;
    };
    entries
        .iter()
        .find(|(key, _)| key.source() == "code")
        .map(|(_, value)| value)
        .filter(|value| !value.is_null() && value.scalar().is_some() && is_code(value.source()))
}

/// `^[a-z][a-z0-9_]{0,63}$`: safe as a JSON key, a column name and a URL part.
fn is_code(text: &str) -> bool {
    let mut chars = text.chars();
    text.len() <= MAX_CODE_CHARS
        && chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn errors_when_the_metric_type_is_unknown() {
        let text = with_metrics(
            "  - {code: a, name: A, prompt: Q?, type: boolean}\n  - code: b\n    name: B\n    \
             prompt: Q?\n    type: percent\n",
        );
        assert_eq!(
            parse(&text).expect_err("invalid").to_string(),
            "line 7, column 11: metrics[1].type: unknown metric type `percent`; use one of \
             boolean, number, category, scale"
        );
    }

    #[test]
    fn errors_when_a_code_repeats_or_is_malformed() {
        let text = with_metrics(&format!("{}{}{}", metric("a"), metric("b"), metric("a")));
        assert_eq!(
            errors(&text),
            ["line 5, column 12: metrics[2].code: code `a` is already used by metrics[0] on line \
              3; each metric needs its own code"]
        );
        assert_eq!(
            errors(&with_metrics(&metric("Client-Mood"))),
            ["line 3, column 12: metrics[0].code: code `Client-Mood` must start with a lowercase \
              letter and hold only lowercase letters, digits and `_`, at most 64 characters"]
        );
        assert_eq!(
            errors(&with_metrics(&format!(
                "{}{}",
                metric("true"),
                metric("true")
            ))),
            [
                "line 4, column 12: metrics[1].code: code `true` is already used by metrics[0] on \
              line 3; each metric needs its own code"
            ]
        );
        assert!(parse(&with_metrics(&metric(&format!("a{}", "_".repeat(63))))).is_ok());
        assert_eq!(
            errors(&with_metrics(&metric(&format!("a{}", "_".repeat(64))))).len(),
            1
        );
    }

    #[test]
    fn errors_when_a_name_is_too_long() {
        let named = |name: &str| {
            with_metrics(&format!(
                "  - {{code: a, name: {name}, prompt: Q?, type: boolean}}\n"
            ))
        };
        assert!(parse(&named(&"é".repeat(200))).is_ok());
        assert_eq!(
            errors(&named(&"é".repeat(201))),
            ["line 3, column 21: metrics[0].name: the name is 201 characters long; the limit is \
              200"]
        );
    }

    #[test]
    fn errors_when_depth_days_is_out_of_range() {
        let depth = |days: &str| format!("depth_days: {days}\nmetrics:\n{}", metric("a"));
        assert_eq!(parse(&depth("1")).expect("1 day").depth_days, 1);
        assert_eq!(parse(&depth("365")).expect("365 days").depth_days, 365);
        for days in ["0", "366", "-1"] {
            assert_eq!(
                errors(&depth(days)),
                [format!(
                    "line 1, column 13: depth_days: must be from 1 to 365 days, found {days}"
                )]
            );
        }
        assert_eq!(
            errors(&depth("99999999999999999999")),
            ["line 1, column 13: depth_days: the number `99999999999999999999` is too large"]
        );
    }

    #[test]
    fn errors_when_the_schedule_is_out_of_range_or_malformed() {
        let scheduled = |schedule: &str| format!("depth_days: 30\nschedule: {schedule}\nmetrics:\n{}", metric("a"));
        let every = |text: &str| parse(text).expect("valid").schedule.map(|schedule| schedule.every_minutes);
        assert_eq!(every(&format!("depth_days: 30\nmetrics:\n{}", metric("a"))), Some(60), "hourly by default");
        assert_eq!(every(&scheduled("{every_minutes: 5}")), Some(5));
        assert_eq!(every(&scheduled("{every_minutes: 10080}")), Some(10_080));
        assert_eq!(every(&scheduled("off")), None);
        assert_eq!(every(&scheduled("false")), None);
        assert_eq!(
            errors(&scheduled("{every_minutes: 4}")),
            ["line 2, column 27: schedule.every_minutes: must be from 5 to 10080 minutes (a week), found 4"]
        );
        assert_eq!(
            errors(&scheduled("hourly")),
            ["line 2, column 11: schedule: expected `off` or a mapping such as `{every_minutes: 60}`, found the text `hourly`"]
        );
        assert_eq!(errors(&scheduled("{every: 5}")).len(), 2, "{:?}", errors(&scheduled("{every: 5}")));
    }

    #[test]
    fn errors_when_the_version_is_not_1() {
        let text = format!("version: 2\ndepth_days: 30\nmetrics:\n{}", metric("a"));
        assert_eq!(
            errors(&text),
            ["line 1, column 10: version: unsupported version 2; this platform reads version 1"]
        );
    }

    #[test]
    fn errors_when_there_are_too_many_metrics_or_none() {
        let many = |count: usize| {
            with_metrics(
                &(0..count)
                    .map(|n| metric(&format!("m{n}")))
                    .collect::<String>(),
            )
        };
        assert_eq!(
            parse(&many(MAX_METRICS))
                .expect("100 metrics")
                .metrics
                .len(),
            100
        );
        assert_eq!(
            errors(&many(MAX_METRICS + 1)),
            ["line 3, column 3: metrics: 101 metrics are listed; the limit is 100"]
        );
        assert_eq!(
            errors("depth_days: 30\nmetrics: []\n"),
            ["line 2, column 10: metrics: list at least one metric"]
        );
    }
}
