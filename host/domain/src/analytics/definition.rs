//! The validated form of an analytics file and its JSON form.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::json::KindJson;

/// A validated analytics file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsDefinition {
    pub version: u32,
    /// How many days back Recalculate and Continue calculation go.
    pub depth_days: u32,
    pub metrics: Vec<Metric>,
}

/// One Deep Analysis metric. Its JSON form is the YAML one, with the
/// default `display` filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The question put to the LLM about one conversation transcript.
    pub prompt: String,
    #[serde(flatten)]
    pub kind: MetricKind,
    pub display: Display,
}

/// What a metric's answer is. JSON: `"type"` plus the type's own field
/// (`"scale": {"min": 1, "max": 5}`, `"categories": […]`, `"range": {…}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "KindJson", into = "KindJson")]
pub enum MetricKind {
    Boolean,
    /// A free number, optionally bounded (the LLM is told the bounds).
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// One of a fixed list of answers.
    Category {
        categories: Vec<String>,
    },
    /// A whole number from `min` to `max`, both included.
    Scale {
        min: i64,
        max: i64,
    },
}

impl MetricKind {
    /// The `type` spelling of the file and of the JSON form.
    pub fn type_name(&self) -> &'static str {
        self.type_of().as_str()
    }

    fn type_of(&self) -> Type {
        match self {
            Self::Boolean => Type::Boolean,
            Self::Number { .. } => Type::Number,
            Self::Category { .. } => Type::Category,
            Self::Scale { .. } => Type::Scale,
        }
    }
}

/// How Deep Analysis charts a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    Pie,
    Bar,
    Line,
    Number,
    Histogram,
    Table,
}

impl Display {
    pub const ALL: [Display; 6] = [
        Self::Pie,
        Self::Bar,
        Self::Line,
        Self::Number,
        Self::Histogram,
        Self::Table,
    ];

    /// The spelling of the file and of the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pie => "pie",
            Self::Bar => "bar",
            Self::Line => "line",
            Self::Number => "number",
            Self::Histogram => "histogram",
            Self::Table => "table",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|display| display.as_str() == text)
    }

    /// The charts that make sense for `kind`, the default first.
    pub fn allowed_for(kind: &MetricKind) -> &'static [Display] {
        kind.type_of().displays()
    }
}

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AnalyticsDefinition {
    /// The metrics Continue calculation computes for past sessions: those
    /// whose code `previous` does not have.
    pub fn added_metrics<'a>(&'a self, previous: &AnalyticsDefinition) -> Vec<&'a Metric> {
        self.metrics
            .iter()
            .filter(|metric| previous.metric(&metric.code).is_none())
            .collect()
    }

    /// The metrics Recalculate computes again: new codes, and codes whose
    /// definition (prompt, type, name, display…) differs from `previous`.
    pub fn changed_or_added<'a>(&'a self, previous: &AnalyticsDefinition) -> Vec<&'a Metric> {
        self.metrics
            .iter()
            .filter(|metric| previous.metric(&metric.code) != Some(*metric))
            .collect()
    }

    /// The metric with this code.
    pub fn metric(&self, code: &str) -> Option<&Metric> {
        self.metrics.iter().find(|metric| metric.code == code)
    }
}

/// The metric types, as written in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Boolean,
    Number,
    Category,
    Scale,
}

impl Type {
    pub(super) const ALL: [Type; 4] = [Self::Boolean, Self::Number, Self::Category, Self::Scale];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::Category => "category",
            Self::Scale => "scale",
        }
    }

    /// The charts this type allows, the default first.
    pub(super) fn displays(self) -> &'static [Display] {
        match self {
            Self::Boolean => &[Display::Pie, Display::Bar, Display::Number],
            Self::Number => &[
                Display::Line,
                Display::Bar,
                Display::Number,
                Display::Histogram,
            ],
            Self::Category => &[Display::Bar, Display::Pie, Display::Table],
            Self::Scale => &[Display::Bar, Display::Line, Display::Number],
        }
    }

    /// The key only this type takes.
    pub(super) fn own_key(self) -> Option<&'static str> {
        match self {
            Self::Boolean => None,
            Self::Number => Some("range"),
            Self::Category => Some("categories"),
            Self::Scale => Some("scale"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn works_when_the_json_form_mirrors_the_yaml() {
        let definition = parse(EXAMPLE).expect("valid");
        let json = serde_json::to_value(&definition).expect("serializes");
        assert_eq!(
            json["metrics"][0],
            serde_json::json!({
                "code": "client_satisfaction",
                "name": "Client satisfaction",
                "description": "How satisfied the client sounded by the end of the conversation.",
                "prompt": definition.metrics[0].prompt,
                "type": "scale",
                "scale": {"min": 1, "max": 5},
                "display": "bar",
            })
        );
        assert_eq!(json["metrics"][1]["type"], "boolean");
        assert_eq!(json["metrics"][2]["categories"][5], "unclear");
        assert_eq!(
            json["metrics"][3]["range"],
            serde_json::json!({"min": 0.0, "max": 1_000_000.0})
        );
        let back: AnalyticsDefinition = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, definition);

        let open: Metric = serde_json::from_str(
            r#"{"code":"a","name":"A","prompt":"Q","type":"number","display":"line"}"#,
        )
        .expect("a number without range deserializes");
        assert_eq!(
            open.kind,
            MetricKind::Number {
                min: None,
                max: None
            }
        );
        assert_eq!(
            serde_json::to_value(&open)
                .expect("serializes")
                .get("range"),
            None
        );
    }

    #[test]
    fn works_when_added_and_changed_metrics_are_compared() {
        let previous = parse(&with_metrics(&format!(
            "{}{}",
            metric("kept"),
            metric("changed")
        )))
        .expect("valid");
        let current = parse(&with_metrics(&format!(
            "{}  - {{code: changed, name: N, prompt: Another question?, type: boolean}}\n{}",
            metric("kept"),
            metric("added")
        )))
        .expect("valid");
        let codes = |metrics: Vec<&Metric>| -> Vec<String> {
            metrics
                .into_iter()
                .map(|metric| metric.code.clone())
                .collect()
        };
        assert_eq!(codes(current.added_metrics(&previous)), ["added"]);
        assert_eq!(
            codes(current.changed_or_added(&previous)),
            ["changed", "added"]
        );
        assert!(current.changed_or_added(&current).is_empty());
        assert!(previous.added_metrics(&current).is_empty());
    }
}
