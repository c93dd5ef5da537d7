//! Loads the YAML text into a tree of positioned nodes, refusing aliases,
//! tags, several documents and deep nesting.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

use super::error::{at, AnalyticsError};
use super::scalar::{resolve, Scalar};
use super::MAX_NESTING;

/// A position in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl From<Marker> for Pos {
    fn from(marker: Marker) -> Self {
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A YAML node with the position of its first character.
#[derive(Debug)]
pub(super) struct Node<'a> {
    pub(super) pos: Pos,
    pub(super) value: Value<'a>,
}

#[derive(Debug)]
pub(super) enum Value<'a> {
    /// `plain` is false for quoted and block scalars, which are always text.
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
    },
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    pub(super) fn is_null(&self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    pub(super) fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.value {
            Value::Scalar { text, plain: true } => Some(resolve(text)),
            Value::Scalar { text, plain: false } => Some(Scalar::Text(text)),
            _ => None,
        }
    }

    /// The node as a message shows it: `found the text `thirty``.
    pub(super) fn found(&self) -> String {
        match (&self.value, self.scalar()) {
            (Value::Seq(_), _) => "a list".to_owned(),
            (Value::Map(_), _) => "a mapping".to_owned(),
            (_, Some(Scalar::Null)) => "an empty value".to_owned(),
            (_, Some(Scalar::Bool(_))) => format!("the boolean `{}`", self.source()),
            (_, Some(Scalar::Int(_) | Scalar::Float(_))) => {
                format!("the number `{}`", self.source())
            }
            (_, Some(Scalar::Text(text))) => format!("the text `{text}`"),
            (_, None) => "a value".to_owned(),
        }
    }

    pub(super) fn source(&self) -> &str {
        match &self.value {
            Value::Scalar { text, .. } => text,
            _ => "",
        }
    }
}

/// A collection being read, with the key awaiting its value.
struct Open<'a> {
    node: Node<'a>,
    key: Option<Node<'a>>,
}

/// The document as a tree of positioned nodes; `None` when the file holds
/// no document (empty or only comments). Stops at the first error.
pub(super) fn load(text: &str) -> Result<Option<Node<'_>>, AnalyticsError> {
    let mut parser = Parser::new_from_str(text);
    let mut tree = Tree::default();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|error| syntax_error(text, &error))?;
        if matches!(event, Event::StreamEnd) {
            break;
        }
        tree.take(event, Pos::from(span.start))?;
    }
    Ok(tree.root)
}

/// The document being built from the parser's events.
#[derive(Default)]
struct Tree<'a> {
    /// The collections not yet closed, innermost last.
    open: Vec<Open<'a>>,
    root: Option<Node<'a>>,
    documents: usize,
}

impl<'a> Tree<'a> {
    fn take(&mut self, event: Event<'a>, pos: Pos) -> Result<(), AnalyticsError> {
        let complete = match event {
            Event::DocumentStart(_) => return self.start_document(pos),
            Event::Alias(_) => {
                return Err(at(
                    pos,
                    "aliases (`*name`) are not supported; write the value out in full",
                ))
            }
            Event::Scalar(text, style, _anchor, tag) => {
                reject_tag(pos, tag.as_deref())?;
                Node {
                    pos,
                    value: Value::Scalar {
                        text,
                        plain: style == ScalarStyle::Plain,
                    },
                }
            }
            Event::SequenceStart(_anchor, ref tag) | Event::MappingStart(_anchor, ref tag) => {
                reject_tag(pos, tag.as_deref())?;
                return self.open_collection(pos, matches!(event, Event::SequenceStart(..)));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.open.pop() {
                Some(closed) => closed.node,
                None => return Ok(()),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {
                return Ok(())
            }
        };
        self.attach(complete);
        Ok(())
    }

    fn start_document(&mut self, pos: Pos) -> Result<(), AnalyticsError> {
        self.documents += 1;
        if self.documents > 1 {
            return Err(at(
                pos,
                "a second YAML document starts here; keep the whole file in one document \
                 (remove this `---`)",
            ));
        }
        Ok(())
    }

    fn open_collection(&mut self, pos: Pos, sequence: bool) -> Result<(), AnalyticsError> {
        if self.open.len() >= MAX_NESTING {
            return Err(at(
                pos,
                &format!(
                    "the document nests lists and mappings more than {MAX_NESTING} levels \
                     deep; an analytics file needs four"
                ),
            ));
        }
        let value = if sequence {
            Value::Seq(Vec::new())
        } else {
            Value::Map(Vec::new())
        };
        self.open.push(Open {
            node: Node { pos, value },
            key: None,
        });
        Ok(())
    }

    /// Puts a finished node into the innermost open collection: an item of
    /// a list, or a key or its value in a mapping.
    fn attach(&mut self, complete: Node<'a>) {
        match self.open.last_mut() {
            None => self.root = Some(complete),
            Some(parent) => match &mut parent.node.value {
                Value::Seq(items) => items.push(complete),
                Value::Map(entries) => match parent.key.take() {
                    None => parent.key = Some(complete),
                    Some(key) => entries.push((key, complete)),
                },
                Value::Scalar { .. } => {}
            },
        }
    }
}

fn reject_tag(pos: Pos, tag: Option<&Tag>) -> Result<(), AnalyticsError> {
    let Some(tag) = tag else { return Ok(()) };
    let spelled = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    Err(at(
        pos,
        &format!("tags such as `{spelled}` are not supported; remove it (quote a value to keep it as text)"),
    ))
}

/// The parser's error at its position. A tab in indentation often shows up
/// a line early or as a puzzling message, so that case points at the tab.
fn syntax_error(text: &str, error: &ScanError) -> AnalyticsError {
    let pos = Pos::from(*error.marker());
    let info = error.info();
    if info.contains("tab") {
        let indented_by_tab = text
            .lines()
            .enumerate()
            .skip(pos.line.saturating_sub(1))
            .find_map(|(index, line)| {
                let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
                line[..indent].find('\t').map(|column| Pos {
                    line: index + 1,
                    column: column + 1,
                })
            });
        if let Some(tab) = indented_by_tab {
            return at(
                tab,
                &format!("invalid YAML: a tab indents this line; indent with spaces only ({info})"),
            );
        }
    }
    at(pos, &format!("invalid YAML: {info}"))
}

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;

    #[test]
    fn errors_when_an_alias_could_expand_the_file() {
        let bomb = "\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
";
        assert_eq!(
            errors(bomb),
            ["line 2, column 8: aliases (`*name`) are not supported; write the value out in full"]
        );
    }

    #[test]
    fn errors_when_the_yaml_is_invalid() {
        assert_eq!(
            errors("depth_days: 30\nmetrics: [a, b\n"),
            ["line 3, column 1: invalid YAML: while parsing a flow sequence, expected ',' or ']'"]
        );
        assert_eq!(
            errors("depth_days: 30\nmetrics:\n\t- code: a\n"),
            [
                "line 3, column 1: invalid YAML: a tab indents this line; indent with spaces only \
              (tabs disallowed within this context (block indentation))"
            ]
        );
        assert_eq!(
            errors("depth_days: 30\n---\nmetrics: []\n"),
            [
                "line 2, column 1: a second YAML document starts here; keep the whole file in one \
              document (remove this `---`)"
            ]
        );
        assert_eq!(
            errors("depth_days: !!str 30\n"),
            [
                "line 1, column 13: tags such as `!!str` are not supported; remove it (quote a \
              value to keep it as text)"
            ]
        );
    }

    #[test]
    fn errors_when_nesting_is_too_deep() {
        let deep = format!("depth_days: 30\nmetrics: {}", "[".repeat(40));
        assert_eq!(
            errors(&deep),
            [
                "line 2, column 41: the document nests lists and mappings more than 32 levels \
              deep; an analytics file needs four"
            ]
        );
    }
}
