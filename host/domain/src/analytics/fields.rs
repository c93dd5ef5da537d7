//! Checks of a mapping's keys and of single values, shared by every part
//! of the file.

use std::collections::HashMap;

use super::check::Checker;
use super::scalar::{looks_numeric, Scalar};
use super::yaml::{Node, Pos, Value};

/// The entries of a mapping whose keys were checked.
pub(super) struct Fields<'n, 'a> {
    entries: HashMap<&'n str, (Pos, &'n Node<'a>)>,
}

impl<'n, 'a> Fields<'n, 'a> {
    /// The value of `key`; `None` when absent or empty.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node<'a>> {
        self.entries
            .get(key)
            .map(|(_, node)| *node)
            .filter(|node| !node.is_null())
    }

    /// The position of `key` itself, when present (even with no value).
    pub(super) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries.get(key).map(|(pos, _)| *pos)
    }
}

impl Checker {
    /// Checks a mapping's keys: each known and written once, the required
    /// ones present with a value.
    pub(super) fn fields<'n, 'a>(
        &mut self,
        node: &'n Node<'a>,
        path: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<Fields<'n, 'a>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                path,
                format!(
                    "expected a mapping with the keys {}, found {}",
                    allowed.join(", "),
                    node.found()
                ),
            );
            return None;
        };
        let mut fields = Fields {
            entries: HashMap::new(),
        };
        for (key, value) in entries {
            let name = match key.scalar() {
                Some(Scalar::Null) | None => {
                    self.error(
                        key.pos,
                        path,
                        format!("keys must be names, found {}", key.found()),
                    );
                    continue;
                }
                Some(_) => key.source(),
            };
            if !allowed.contains(&name) {
                self.error(
                    key.pos,
                    path,
                    format!("unknown key `{name}`; allowed keys: {}", allowed.join(", ")),
                );
            } else if let Some((first, _)) = fields.entries.get(name) {
                self.error(
                    key.pos,
                    path,
                    format!(
                        "key `{name}` is written twice; the first is on line {}",
                        first.line
                    ),
                );
            } else {
                fields.entries.insert(name, (key.pos, value));
            }
        }
        self.required_keys(&fields, node.pos, path, required);
        Some(fields)
    }

    /// Reports each `required` key that is absent or has no value.
    fn required_keys(&mut self, fields: &Fields<'_, '_>, at: Pos, path: &str, required: &[&str]) {
        for key in required {
            match fields.entries.get(key) {
                None => self.error(at, path, format!("missing required key `{key}`")),
                // The key, not its absent value: an empty value has no place
                // of its own.
                Some((key_pos, value)) if value.is_null() => {
                    self.error(*key_pos, &join(path, key), format!("`{key}` needs a value"));
                }
                Some(_) => {}
            }
        }
    }

    /// Any scalar as written: `name: 2024` is the text `2024`.
    pub(super) fn text<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        match node.scalar() {
            Some(Scalar::Null) | None => {
                self.error(
                    node.pos,
                    path,
                    format!("expected text, found {}", node.found()),
                );
                None
            }
            Some(_) => Some(node.source()),
        }
    }

    pub(super) fn non_empty_text<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        let text = self.text(node, path)?;
        if text.trim().is_empty() {
            self.error(
                node.pos,
                path,
                "expected text, found only blank space".to_owned(),
            );
            return None;
        }
        Some(text)
    }

    pub(super) fn integer(&mut self, node: &Node<'_>, path: &str) -> Option<i64> {
        let message = match node.scalar() {
            Some(Scalar::Int(Some(value))) => return Some(value),
            Some(Scalar::Int(None)) => format!("the number `{}` is too large", node.source()),
            Some(Scalar::Text(text)) if looks_numeric(text) => {
                format!("expected a whole number, found the text `{text}`; remove the quotes")
            }
            _ => format!("expected a whole number, found {}", node.found()),
        };
        self.error(node.pos, path, message);
        None
    }

    pub(super) fn number(&mut self, node: &Node<'_>, path: &str) -> Option<f64> {
        let message = match node.scalar() {
            Some(Scalar::Int(Some(value))) => return Some(value as f64),
            Some(Scalar::Float(value)) if value.is_finite() => return Some(value),
            Some(Scalar::Float(_) | Scalar::Int(None)) => {
                format!("expected a finite number, found `{}`", node.source())
            }
            Some(Scalar::Text(text)) if looks_numeric(text) => {
                format!("expected a number, found the text `{text}`; remove the quotes")
            }
            _ => format!("expected a number, found {}", node.found()),
        };
        self.error(node.pos, path, message);
        None
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn errors_when_a_key_is_unknown() {
        let text = with_metrics("  - code: a\n    name: A\n    promt: Q?\n    type: boolean\n");
        let error = parse(&text).expect_err("invalid").0;
        assert_eq!(
            error[1],
            AnalyticsError {
                line: 5,
                column: 5,
                path: "metrics[0]".into(),
                message: "unknown key `promt`; allowed keys: code, name, description, prompt, \
                          type, scale, categories, range, display"
                    .into(),
            }
        );
        assert_eq!(
            error[0].to_string(),
            "line 3, column 5: metrics[0]: missing required key `prompt`"
        );
        assert_eq!(error.len(), 2);
        assert_eq!(
            errors("depth_days: 3\nmetric: []\n"),
            [
                "line 1, column 1: missing required key `metrics`",
                "line 2, column 1: unknown key `metric`; allowed keys: version, depth_days, schedule, metrics",
            ]
        );
    }

    #[test]
    fn errors_when_a_required_key_is_missing_or_empty() {
        let text = with_metrics("  - code: a\n    name:\n    type: boolean\n");
        assert_eq!(
            errors(&text),
            [
                "line 3, column 5: metrics[0]: missing required key `prompt`",
                "line 4, column 5: metrics[0].name: `name` needs a value",
            ]
        );
        assert_eq!(
            errors("metrics:\n  - {code: a, name: A, prompt: Q, type: scale}\n"),
            [
                "line 1, column 1: missing required key `depth_days`",
                "line 2, column 5: metrics[0]: missing required key `scale` for type scale, e.g. \
                 `scale: {min: 1, max: 5}`",
            ]
        );
    }

    #[test]
    fn errors_when_a_value_has_the_wrong_type() {
        assert_eq!(
            errors(&format!("depth_days: thirty\nmetrics:\n{}", metric("a"))),
            ["line 1, column 13: depth_days: expected a whole number, found the text `thirty`"]
        );
        assert_eq!(
            errors(&format!("depth_days: \"30\"\nmetrics:\n{}", metric("a"))),
            [
                "line 1, column 13: depth_days: expected a whole number, found the text `30`; \
              remove the quotes"
            ]
        );
        assert_eq!(
            errors(&format!("depth_days: 1.5\nmetrics:\n{}", metric("a"))),
            ["line 1, column 13: depth_days: expected a whole number, found the number `1.5`"]
        );
        assert_eq!(
            errors("depth_days: 30\nmetrics: {code: a}\n"),
            ["line 2, column 10: metrics: expected a list of metrics, found a mapping"]
        );
        assert_eq!(
            errors(&with_metrics("  - satisfaction\n")),
            [
                "line 3, column 5: metrics[0]: each metric must be a mapping with at least code, \
              name, prompt and type; found the text `satisfaction`"
            ]
        );
        assert_eq!(
            errors(&with_metrics(
                "  - {code: a, name: [A], prompt: Q, type: number, range: {min: x, max: .inf}}\n"
            )),
            [
                "line 3, column 21: metrics[0].name: expected text, found a list",
                "line 3, column 64: metrics[0].range.min: expected a number, found the text `x`",
                "line 3, column 72: metrics[0].range.max: expected a finite number, found `.inf`",
            ]
        );
        assert_eq!(
            errors("- 1\n"),
            ["line 1, column 1: the file must be a mapping with the keys version, depth_days and \
              metrics; found a list"]
        );
    }
}
