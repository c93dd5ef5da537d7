//! The JSON form of a metric's type: `"type"` plus the type's own field.

use serde::{Deserialize, Serialize};

use super::MetricKind;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum KindJson {
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
pub(super) struct RangeJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScaleJson {
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
