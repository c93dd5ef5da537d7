//! The YAML analytics file of a campaign (Settings > YAML Analytics) in
//! its validated form, as the API shows it: the metrics Deep Analysis asks
//! an LLM about each conversation, how far back it reaches, and how each
//! metric is charted. The parser and its checks stay in the domain crate,
//! which re-exports these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated analytics file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AnalyticsDefinition {
    pub version: u32,
    /// How many days back Recalculate and Continue calculation go.
    pub depth_days: u32,
    /// When Deep Analysis runs on its own: a Continue calculation over the
    /// depth, for the sessions that ended since the last one. `null`
    /// (`schedule: off` in the file): only when started by hand.
    #[serde(default = "Schedule::default_some")]
    pub schedule: Option<Schedule>,
    pub metrics: Vec<Metric>,
}

/// How often a campaign's ended sessions are analysed on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub every_minutes: u32,
}

impl Schedule {
    /// A file without `schedule` is analysed hourly.
    pub const DEFAULT: Schedule = Schedule { every_minutes: 60 };

    fn default_some() -> Option<Schedule> {
        Some(Self::DEFAULT)
    }
}

/// One Deep Analysis metric. Its JSON form is the YAML one, with the
/// default `display` filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metric {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The question put to the LLM about one conversation transcript.
    pub prompt: String,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
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

    /// The metric type, as written in `type`.
    pub fn type_of(&self) -> MetricType {
        match self {
            Self::Boolean => MetricType::Boolean,
            Self::Number { .. } => MetricType::Number,
            Self::Category { .. } => MetricType::Category,
            Self::Scale { .. } => MetricType::Scale,
        }
    }
}

/// How Deep Analysis charts a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Boolean,
    Number,
    Category,
    Scale,
}

impl MetricType {
    pub const ALL: [MetricType; 4] = [Self::Boolean, Self::Number, Self::Category, Self::Scale];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::Category => "category",
            Self::Scale => "scale",
        }
    }

    /// The charts this type allows, the default first.
    pub fn displays(self) -> &'static [Display] {
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
    pub fn own_key(self) -> Option<&'static str> {
        match self {
            Self::Boolean => None,
            Self::Number => Some("range"),
            Self::Category => Some("categories"),
            Self::Scale => Some("scale"),
        }
    }
}

// The JSON form of a metric's type: `"type"` plus the type's own field.

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum KindJson {
    Boolean,
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range: Option<RangeJson>,
    },
    Category {
        categories: Vec<String>,
    },
    Scale {
        scale: ScaleJson,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleJson {
    min: i64,
    max: i64,
}

impl From<KindJson> for MetricKind {
    fn from(json: KindJson) -> Self {
        match json {
            KindJson::Boolean => Self::Boolean,
            KindJson::Number { range } => {
                let range = range.unwrap_or(RangeJson {
                    min: None,
                    max: None,
                });
                Self::Number {
                    min: range.min,
                    max: range.max,
                }
            }
            KindJson::Category { categories } => Self::Category { categories },
            KindJson::Scale { scale } => Self::Scale {
                min: scale.min,
                max: scale.max,
            },
        }
    }
}

impl From<MetricKind> for KindJson {
    fn from(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Boolean => Self::Boolean,
            MetricKind::Number { min, max } => Self::Number {
                range: (min.is_some() || max.is_some()).then_some(RangeJson { min, max }),
            },
            MetricKind::Category { categories } => Self::Category { categories },
            MetricKind::Scale { min, max } => Self::Scale {
                scale: ScaleJson { min, max },
            },
        }
    }
}
