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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};
use serde::{Deserialize, Serialize};

use crate::contact_file::size_text;

/// Larger files are refused before parsing; real ones are a few KiB.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Each metric costs an LLM question per conversation.
pub const MAX_METRICS: usize = 100;
/// Deeper collections are refused while parsing; the format needs four levels.
pub const MAX_NESTING: usize = 32;
/// The reach of Recalculate and Continue calculation, in days.
pub const DEPTH_DAYS: std::ops::RangeInclusive<i64> = 1..=365;

const VERSION: u32 = 1;
const MAX_CODE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;
const CATEGORIES: std::ops::RangeInclusive<usize> = 2..=50;
const MAX_SCALE_SPAN: i64 = 100;

const ROOT_KEYS: [&str; 3] = ["version", "depth_days", "metrics"];
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
const BOUND_KEYS: [&str; 2] = ["min", "max"];

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

/// One problem of an analytics file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {}{message}", path_prefix(.path))]
pub struct AnalyticsError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Where in the document, e.g. `metrics[1].type`; empty for the file
    /// itself and its top-level mapping.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found in an analytics file, in file order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct AnalyticsErrors(pub Vec<AnalyticsError>);

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn one_per_line(errors: &[AnalyticsError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

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

fn whole_file(message: String) -> AnalyticsError {
    AnalyticsError {
        line: 1,
        column: 1,
        path: String::new(),
        message,
    }
}

/// A position in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
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
struct Node<'a> {
    pos: Pos,
    value: Value<'a>,
}

#[derive(Debug)]
enum Value<'a> {
    /// `plain` is false for quoted and block scalars, which are always text.
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
    },
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    fn is_null(&self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.value {
            Value::Scalar { text, plain: true } => Some(resolve(text)),
            Value::Scalar { text, plain: false } => Some(Scalar::Text(text)),
            _ => None,
        }
    }

    /// The node as a message shows it: `found the text `thirty``.
    fn found(&self) -> String {
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

    fn source(&self) -> &str {
        match &self.value {
            Value::Scalar { text, .. } => text,
            _ => "",
        }
    }
}

/// A scalar under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar<'t> {
    Null,
    Bool(bool),
    /// `None` when the integer does not fit in an `i64`.
    Int(Option<i64>),
    Float(f64),
    Text(&'t str),
}

fn resolve(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Scalar::Int(text.parse().ok());
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8)] {
        if let Some(digits) = text.strip_prefix(prefix) {
            if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
                return Scalar::Int(i64::from_str_radix(digits, radix).ok());
            }
        }
    }
    if is_core_float(digits) {
        if let Ok(value) = text.parse() {
            return Scalar::Float(value);
        }
    }
    Scalar::Text(text)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already removed.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let mantissa_ok = match fraction {
        Some(fraction) => {
            all_digits(whole) && all_digits(fraction) && (!whole.is_empty() || !fraction.is_empty())
        }
        None => !whole.is_empty() && all_digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

/// A collection being read, with the key awaiting its value.
struct Open<'a> {
    node: Node<'a>,
    key: Option<Node<'a>>,
}

/// The document as a tree of positioned nodes; `None` when the file holds
/// no document (empty or only comments). Stops at the first error.
fn load(text: &str) -> Result<Option<Node<'_>>, AnalyticsError> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|error| syntax_error(text, &error))?;
        let pos = Pos::from(span.start);
        let complete = match event {
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(at(
                        pos,
                        "a second YAML document starts here; keep the whole file in one document \
                         (remove this `---`)",
                    ));
                }
                continue;
            }
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
                if open.len() >= MAX_NESTING {
                    return Err(at(
                        pos,
                        &format!(
                            "the document nests lists and mappings more than {MAX_NESTING} \
                             levels deep; an analytics file needs four"
                        ),
                    ));
                }
                let value = if matches!(event, Event::SequenceStart(..)) {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
                open.push(Open {
                    node: Node { pos, value },
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(closed) => closed.node,
                None => continue,
            },
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
        };
        match open.last_mut() {
            None => root = Some(complete),
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
    Ok(root)
}

fn at(pos: Pos, message: &str) -> AnalyticsError {
    AnalyticsError {
        line: pos.line,
        column: pos.column,
        path: String::new(),
        message: message.to_owned(),
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

/// The metric types, as written in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Boolean,
    Number,
    Category,
    Scale,
}

impl Type {
    const ALL: [Type; 4] = [Self::Boolean, Self::Number, Self::Category, Self::Scale];

    fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::Category => "category",
            Self::Scale => "scale",
        }
    }

    /// The charts this type allows, the default first.
    fn displays(self) -> &'static [Display] {
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
    fn own_key(self) -> Option<&'static str> {
        match self {
            Self::Boolean => None,
            Self::Number => Some("range"),
            Self::Category => Some("categories"),
            Self::Scale => Some("scale"),
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

/// The entries of a mapping whose keys were checked.
struct Fields<'n, 'a> {
    entries: HashMap<&'n str, (Pos, &'n Node<'a>)>,
}

impl<'n, 'a> Fields<'n, 'a> {
    /// The value of `key`; `None` when absent or empty.
    fn get(&self, key: &str) -> Option<&'n Node<'a>> {
        self.entries
            .get(key)
            .map(|(_, node)| *node)
            .filter(|node| !node.is_null())
    }

    /// The position of `key` itself, when present (even with no value).
    fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries.get(key).map(|(pos, _)| *pos)
    }
}

/// Collects the semantic errors of a document.
#[derive(Default)]
struct Checker {
    errors: Vec<AnalyticsError>,
}

impl Checker {
    fn error(&mut self, pos: Pos, path: &str, message: String) {
        self.errors.push(AnalyticsError {
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message,
        });
    }

    fn definition(&mut self, root: &Node<'_>) -> Option<AnalyticsDefinition> {
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
        let version = fields.get("version").map_or(Some(VERSION), |node| {
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
        });
        let depth_days = fields.get("depth_days").and_then(|node| {
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
        });
        let metrics = fields.get("metrics").and_then(|node| self.metrics(node));
        Some(AnalyticsDefinition {
            version: version?,
            depth_days: depth_days?,
            metrics: metrics?,
        })
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
            let Some(code) = valid_code(item) else {
                continue;
            };
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
        (self.errors.len() == before).then_some(metrics)
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
        let code = fields.get("code").and_then(|node| {
            let code = self.text(node, &format!("{path}.code"))?;
            if is_code(code) {
                Some(code.to_owned())
            } else {
                self.error(
                    node.pos,
                    &format!("{path}.code"),
                    format!(
                        "code `{code}` must start with a lowercase letter and hold only \
                         lowercase letters, digits and `_`, at most {MAX_CODE_CHARS} characters"
                    ),
                );
                None
            }
        });
        let name = fields.get("name").and_then(|node| {
            let name_path = format!("{path}.name");
            let name = self.non_empty_text(node, &name_path)?;
            let length = name.chars().count();
            if length > MAX_NAME_CHARS {
                self.error(
                    node.pos,
                    &name_path,
                    format!("the name is {length} characters long; the limit is {MAX_NAME_CHARS}"),
                );
                return None;
            }
            Some(name.to_owned())
        });
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

    fn metric_type(&mut self, node: &Node<'_>, path: &str) -> Option<Type> {
        let all = Type::ALL.map(Type::as_str).join(", ");
        let Some(Scalar::Text(text)) = node.scalar() else {
            self.error(
                node.pos,
                path,
                format!("expected one of {all}, found {}", node.found()),
            );
            return None;
        };
        let found = Type::ALL.into_iter().find(|kind| kind.as_str() == text);
        if found.is_none() {
            self.error(
                node.pos,
                path,
                format!("unknown metric type `{text}`; use one of {all}"),
            );
        }
        found
    }

    /// The type's own settings; the other types' keys are errors.
    fn kind(
        &mut self,
        kind: Type,
        pos: Pos,
        fields: &Fields<'_, '_>,
        path: &str,
    ) -> Option<MetricKind> {
        let before = self.errors.len();
        for other in Type::ALL.into_iter().filter(|other| *other != kind) {
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
        let Some(key) = kind.own_key() else {
            return (self.errors.len() == before).then_some(MetricKind::Boolean);
        };
        let key_path = format!("{path}.{key}");
        let own = match (fields.get(key), fields.key_pos(key)) {
            (Some(node), _) => Some(node),
            (None, _) if kind == Type::Number => None,
            (None, key_pos) => {
                let example = if kind == Type::Scale {
                    "scale: {min: 1, max: 5}"
                } else {
                    "categories: [paid, promised, refused]"
                };
                // `fields` reports empty values of always-required keys only.
                match key_pos {
                    Some(key_pos) => self.error(
                        key_pos,
                        &key_path,
                        format!(
                            "`{key}` needs a value for type {}, e.g. `{example}`",
                            kind.as_str()
                        ),
                    ),
                    None => self.error(
                        pos,
                        path,
                        format!(
                            "missing required key `{key}` for type {}, e.g. `{example}`",
                            kind.as_str()
                        ),
                    ),
                }
                return None;
            }
        };
        let built = match (kind, own) {
            (Type::Number, Some(node)) => self.range(node, &key_path),
            (Type::Category, Some(node)) => self.categories(node, &key_path),
            (Type::Scale, Some(node)) => self.scale(node, &key_path),
            _ => Some(MetricKind::Number {
                min: None,
                max: None,
            }),
        };
        built.filter(|_| self.errors.len() == before)
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
    fn display(
        &mut self,
        kind: Option<Type>,
        fields: &Fields<'_, '_>,
        path: &str,
    ) -> Option<Display> {
        let Some(node) = fields.get("display") else {
            return kind.map(|kind| kind.displays()[0]);
        };
        let path = format!("{path}.display");
        let allowed = kind.map_or(&Display::ALL[..], Type::displays);
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

    /// Checks a mapping's keys: each known and written once, the required
    /// ones present with a value.
    fn fields<'n, 'a>(
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
        for key in required {
            match fields.entries.get(key) {
                None => self.error(node.pos, path, format!("missing required key `{key}`")),
                // The key, not its absent value: an empty value has no place
                // of its own.
                Some((key_pos, value)) if value.is_null() => {
                    self.error(*key_pos, &join(path, key), format!("`{key}` needs a value"));
                }
                Some(_) => {}
            }
        }
        Some(fields)
    }

    /// Any scalar as written: `name: 2024` is the text `2024`.
    fn text<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
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

    fn non_empty_text<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
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

    fn integer(&mut self, node: &Node<'_>, path: &str) -> Option<i64> {
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

    fn number(&mut self, node: &Node<'_>, path: &str) -> Option<f64> {
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

/// Quoted text that would be a number without its quotes.
fn looks_numeric(text: &str) -> bool {
    matches!(resolve(text), Scalar::Int(_) | Scalar::Float(_))
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

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `^[a-z][a-z0-9_]{0,63}$`: safe as a JSON key, a column name and a URL part.
fn is_code(text: &str) -> bool {
    let mut chars = text.chars();
    text.len() <= MAX_CODE_CHARS
        && chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/analytics/debt-collection.yaml");

    fn errors(text: &str) -> Vec<String> {
        let errors = parse(text).expect_err("the file is invalid");
        errors.0.iter().map(ToString::to_string).collect()
    }

    /// A file whose metrics are `metrics`, starting on line 3.
    fn with_metrics(metrics: &str) -> String {
        format!("depth_days: 30\nmetrics:\n{metrics}")
    }

    fn metric(code: &str) -> String {
        format!("  - {{code: {code}, name: N, prompt: Q?, type: boolean}}\n")
    }

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
                "line 2, column 1: unknown key `metric`; allowed keys: version, depth_days, metrics",
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
