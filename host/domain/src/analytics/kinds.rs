//! Checks of each metric type's own settings (`scale`, `range`,
//! `categories`) and of the chart it asks for.

use std::collections::HashMap;

use super::check::Checker;
use super::definition::{Display, MetricKind, MetricType};
use super::fields::Fields;
use super::scalar::Scalar;
use super::yaml::{Node, Pos, Value};

const CATEGORIES: std::ops::RangeInclusive<usize> = 2..=50;
const MAX_SCALE_SPAN: i64 = 100;
const BOUND_KEYS: [&str; 2] = ["min", "max"];

impl Checker {
    /// The type's own settings; the other types' keys are errors.
    pub(super) fn kind(
        &mut self,
        kind: MetricType,
        pos: Pos,
        fields: &Fields<'_, '_>,
        path: &str,
    ) -> Option<MetricKind> {
        let before = self.errors.len();
        self.other_types_keys(kind, fields, path);
        let Some(key) = kind.own_key() else {
            return (self.errors.len() == before).then_some(MetricKind::Boolean);
        };
        let key_path = format!("{path}.{key}");
        let own = match (fields.get(key), fields.key_pos(key)) {
            (Some(node), _) => Some(node),
            (None, _) if kind == MetricType::Number => None,
            (None, key_pos) => {
                self.own_key_missing(kind, key, key_pos, pos, path);
                return None;
            }
        };
        let built = match (kind, own) {
            (MetricType::Number, Some(node)) => self.range(node, &key_path),
            (MetricType::Category, Some(node)) => self.categories(node, &key_path),
            (MetricType::Scale, Some(node)) => self.scale(node, &key_path),
            _ => Some(MetricKind::Number {
                min: None,
                max: None,
            }),
        };
        built.filter(|_| self.errors.len() == before)
    }

    /// Reports the keys that belong to a type other than `kind`.
    fn other_types_keys(&mut self, kind: MetricType, fields: &Fields<'_, '_>, path: &str) {
        for other in MetricType::ALL.into_iter().filter(|other| *other != kind) {
            let Some(key) = other.own_key() else { continue };
            if let Some(key_pos) = fields.key_pos(key) {
                self.error(
                    key_pos,
                    &format!("{path}.{key}"),
                    format!(
                        "`{key}` is only allowed with type {}; this metric has type {}",
                        other.as_str(),
                        kind.as_str()
                    ),
                );
            }
        }
    }

    /// Reports the required `key` of `kind` as absent (at the metric) or
    /// empty (at the key); `fields` reports empty values of always-required
    /// keys only.
    fn own_key_missing(
        &mut self,
        kind: MetricType,
        key: &str,
        key_pos: Option<Pos>,
        metric_pos: Pos,
        path: &str,
    ) {
        let example = if kind == MetricType::Scale {
            "scale: {min: 1, max: 5}"
        } else {
            "categories: [paid, promised, refused]"
        };
        match key_pos {
            Some(key_pos) => self.error(
                key_pos,
                &format!("{path}.{key}"),
                format!(
                    "`{key}` needs a value for type {}, e.g. `{example}`",
                    kind.as_str()
                ),
            ),
            None => self.error(
                metric_pos,
                path,
                format!(
                    "missing required key `{key}` for type {}, e.g. `{example}`",
                    kind.as_str()
                ),
            ),
        }
    }

    fn scale(&mut self, node: &Node<'_>, path: &str) -> Option<MetricKind> {
        let fields = self.fields(node, path, &BOUND_KEYS, &BOUND_KEYS)?;
        let min = fields
            .get("min")
            .and_then(|min| self.integer(min, &format!("{path}.min")));
        let max = fields
            .get("max")
            .and_then(|max| self.integer(max, &format!("{path}.max")));
        let (min, max) = (min?, max?);
        if min >= max {
            self.error(
                node.pos,
                path,
                format!("min ({min}) must be less than max ({max})"),
            );
            return None;
        }
        let span = i128::from(max) - i128::from(min);
        if span > i128::from(MAX_SCALE_SPAN) {
            self.error(
                node.pos,
                path,
                format!(
                    "the scale from {min} to {max} spans {span} points; the limit is \
                     {MAX_SCALE_SPAN}"
                ),
            );
            return None;
        }
        Some(MetricKind::Scale { min, max })
    }

    fn range(&mut self, node: &Node<'_>, path: &str) -> Option<MetricKind> {
        let fields = self.fields(node, path, &BOUND_KEYS, &[])?;
        let before = self.errors.len();
        let min = fields
            .get("min")
            .and_then(|min| self.number(min, &format!("{path}.min")));
        let max = fields
            .get("max")
            .and_then(|max| self.number(max, &format!("{path}.max")));
        if self.errors.len() > before {
            return None;
        }
        match (min, max) {
            (None, None) => {
                self.error(node.pos, path, "give `min`, `max` or both".to_owned());
                None
            }
            (Some(min), Some(max)) if min >= max => {
                self.error(
                    node.pos,
                    path,
                    format!("min ({min}) must be less than max ({max})"),
                );
                None
            }
            (min, max) => Some(MetricKind::Number { min, max }),
        }
    }

    fn categories(&mut self, node: &Node<'_>, path: &str) -> Option<MetricKind> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                path,
                format!("expected a list of category names, found {}", node.found()),
            );
            return None;
        };
        let before = self.errors.len();
        if !CATEGORIES.contains(&items.len()) {
            self.error(
                node.pos,
                path,
                format!(
                    "list from {} to {} categories; found {}",
                    CATEGORIES.start(),
                    CATEGORIES.end(),
                    items.len()
                ),
            );
        }
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        let mut categories = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let Some(category) = self.non_empty_text(item, &item_path) else {
                continue;
            };
            if let Some(first) = seen.get(category) {
                self.error(
                    item.pos,
                    &item_path,
                    format!(
                        "category `{category}` is listed twice; the first is on line {}",
                        first.line
                    ),
                );
            } else {
                seen.insert(category, item.pos);
                categories.push(category.to_owned());
            }
        }
        (self.errors.len() == before).then_some(MetricKind::Category { categories })
    }

    /// The chosen chart, or the type's default. With an invalid type, only
    /// an unknown chart name is reported.
    pub(super) fn display(
        &mut self,
        kind: Option<MetricType>,
        fields: &Fields<'_, '_>,
        path: &str,
    ) -> Option<Display> {
        let Some(node) = fields.get("display") else {
            return kind.map(|kind| kind.displays()[0]);
        };
        let path = format!("{path}.display");
        let allowed = kind.map_or(&Display::ALL[..], MetricType::displays);
        let for_type = kind
            .map(|kind| format!(" for type {}", kind.as_str()))
            .unwrap_or_default();
        let Some(Scalar::Text(text)) = node.scalar() else {
            self.error(
                node.pos,
                &path,
                format!(
                    "expected one of {}{for_type}, found {}",
                    names(allowed),
                    node.found()
                ),
            );
            return None;
        };
        match Display::parse(text) {
            Some(display) if allowed.contains(&display) => Some(display),
            Some(_) => {
                self.error(
                    node.pos,
                    &path,
                    format!(
                        "display `{text}` is not available{for_type}; use one of {}",
                        names(allowed)
                    ),
                );
                None
            }
            None => {
                self.error(
                    node.pos,
                    &path,
                    format!(
                        "unknown display `{text}`{for_type}; use one of {}",
                        names(allowed)
                    ),
                );
                None
            }
        }
    }
}

fn names(displays: &[Display]) -> String {
    displays
        .iter()
        .map(|display| display.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn works_when_each_type_has_only_its_required_keys() {
        let text = "\
depth_days: 7
metrics:
  - {code: answered, name: Answered, prompt: Did the client answer?, type: boolean}
  - {code: amount, name: Amount, prompt: How much?, type: number}
  - {code: mood, name: Mood, prompt: Mood?, type: category, categories: [good, bad]}
  - {code: score, name: Score, prompt: Score?, type: scale, scale: {min: 0, max: 10}}
";
        let definition = parse(text).expect("valid");
        assert_eq!(definition.version, 1);
        assert_eq!(definition.depth_days, 7);
        let kinds: Vec<(&MetricKind, Display)> = definition
            .metrics
            .iter()
            .map(|m| (&m.kind, m.display))
            .collect();
        assert_eq!(
            kinds,
            [
                (&MetricKind::Boolean, Display::Pie),
                (
                    &MetricKind::Number {
                        min: None,
                        max: None
                    },
                    Display::Line
                ),
                (
                    &MetricKind::Category {
                        categories: vec!["good".into(), "bad".into()]
                    },
                    Display::Bar
                ),
                (&MetricKind::Scale { min: 0, max: 10 }, Display::Bar),
            ]
        );
        assert!(definition.metrics.iter().all(|m| m.description.is_empty()));
    }

    #[test]
    fn works_when_a_range_has_one_bound_and_optional_keys_are_empty() {
        let text = with_metrics(
            "  - code: amount\n    name: Amount\n    prompt: How much?\n    type: number\n    \
             range: {min: -2.5e1}\n    description:\n    display:\n",
        );
        let metric = &parse(&text).expect("valid").metrics[0];
        assert_eq!(
            metric.kind,
            MetricKind::Number {
                min: Some(-25.0),
                max: None
            }
        );
        assert_eq!(metric.display, Display::Line);
        assert_eq!(metric.description, "");
    }

    #[test]
    fn errors_when_a_scale_is_inverted_or_too_wide() {
        let scale = |bounds: &str| {
            with_metrics(&format!(
                "  - code: a\n    name: A\n    prompt: Q?\n    type: scale\n    scale: {bounds}\n"
            ))
        };
        assert_eq!(
            errors(&scale("{min: 5, max: 5}")),
            ["line 7, column 12: metrics[0].scale: min (5) must be less than max (5)"]
        );
        assert_eq!(
            errors(&scale("{min: 0, max: 101}")),
            ["line 7, column 12: metrics[0].scale: the scale from 0 to 101 spans 101 points; the \
              limit is 100"]
        );
        assert_eq!(
            parse(&scale("{min: -50, max: 50}"))
                .expect("100 points")
                .metrics[0]
                .kind,
            MetricKind::Scale { min: -50, max: 50 }
        );
        assert_eq!(
            errors(&scale("{min: 1, max: 5.5, step: 1}")),
            [
                "line 7, column 26: metrics[0].scale.max: expected a whole number, found the \
                 number `5.5`",
                "line 7, column 31: metrics[0].scale: unknown key `step`; allowed keys: min, max",
            ]
        );
    }

    #[test]
    fn errors_when_categories_repeat_or_are_too_few() {
        let text = with_metrics(
            "  - code: a\n    name: A\n    prompt: Q?\n    type: category\n    categories:\n      \
             - yes\n      - no\n      - \"\"\n      - yes\n",
        );
        assert_eq!(
            errors(&text),
            [
                "line 10, column 9: metrics[0].categories[2]: expected text, found only blank \
                 space",
                "line 11, column 9: metrics[0].categories[3]: category `yes` is listed twice; \
                 the first is on line 8",
            ]
        );
        assert_eq!(
            errors(&with_metrics(
                "  - {code: a, name: A, prompt: Q?, type: category, categories: [only]}\n"
            )),
            ["line 3, column 64: metrics[0].categories: list from 2 to 50 categories; found 1"]
        );
        let fifty: Vec<String> = (0..50).map(|n| format!("c{n}")).collect();
        let list = |names: &[String]| {
            with_metrics(&format!(
                "  - {{code: a, name: A, prompt: Q?, type: category, categories: [{}]}}\n",
                names.join(", ")
            ))
        };
        assert!(parse(&list(&fifty)).is_ok());
        let fifty_one: Vec<String> = (0..51).map(|n| format!("c{n}")).collect();
        assert_eq!(
            errors(&list(&fifty_one)),
            ["line 3, column 64: metrics[0].categories: list from 2 to 50 categories; found 51"]
        );
    }

    #[test]
    fn errors_when_display_does_not_fit_the_type() {
        let text = with_metrics(
            "  - {code: a, name: A, prompt: Q?, type: number, display: pie}\n  - {code: b, name: \
             B, prompt: Q?, type: boolean, display: donut}\n",
        );
        assert_eq!(
            errors(&text),
            [
                "line 3, column 59: metrics[0].display: display `pie` is not available for type \
                 number; use one of line, bar, number, histogram",
                "line 4, column 60: metrics[1].display: unknown display `donut` for type \
                 boolean; use one of pie, bar, number",
            ]
        );
    }

    #[test]
    fn errors_when_a_key_of_another_type_is_given() {
        let text = with_metrics(
            "  - code: a\n    name: A\n    prompt: Q?\n    type: number\n    scale: {min: 1, \
             max: 5}\n",
        );
        assert_eq!(
            errors(&text),
            ["line 7, column 5: metrics[0].scale: `scale` is only allowed with type scale; this \
              metric has type number"]
        );
    }
}
