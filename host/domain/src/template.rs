//! Message templates: `{{name}}`-style placeholders filled from the contact.
//!
//! Placeholders: `{{name}}`, `{{email}}`, `{{phone}}`, `{{object_id}}`,
//! `{{external_id}}`, `{{current_stage}}`, `{{parameters.KEY}}` (a column
//! of the import file) and `{{results.KEY}}`. Spaces inside the braces are
//! ignored. A Default email is what the rich-text editor writes: formatted
//! text, whose HTML is sanitized to what that editor makes (paragraphs,
//! line breaks, bold, italic, underline, links, lists) before it is sent;
//! a Default template without any tag is plain text, HTML-escaped, each
//! blank-line separated paragraph a `<p>`. An HTML email is sent as
//! written. Either way the values are HTML-escaped.

use crate::stage::{has_markup, EmailInputType};
use crate::Contact;

/// A problem in a template, at its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<'t> {
    Text(&'t str),
    Value { path: &'t str, line: usize, column: usize },
}

const FIELDS: [&str; 6] = ["name", "email", "phone", "object_id", "external_id", "current_stage"];

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    (line, column)
}

fn parse(text: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find("{{").map(|i| rest + i) {
        if open > rest {
            parts.push(Part::Text(&text[rest..open]));
        }
        let (line, column) = position(text, open);
        let close = text[open..].find("}}").map(|i| open + i).ok_or_else(|| TemplateError {
            line,
            column,
            message: "`{{` is never closed; write a placeholder as {{name}}".into(),
        })?;
        let path = text[open + 2..close].trim();
        let known = FIELDS.contains(&path)
            || ["parameters.", "results."]
                .iter()
                .any(|prefix| path.strip_prefix(prefix).is_some_and(|key| !key.is_empty() && !key.contains(['{', '}'])));
        if !known {
            return Err(TemplateError {
                line,
                column,
                message: format!(
                    "unknown placeholder `{{{{{path}}}}}`; use one of {}, parameters.KEY or results.KEY",
                    FIELDS.join(", ")
                ),
            });
        }
        parts.push(Part::Value { path, line, column });
        rest = close + 2;
    }
    if rest < text.len() {
        parts.push(Part::Text(&text[rest..]));
    }
    Ok(parts)
}

/// The placeholders a template uses, e.g. `parameters.amount_due`.
pub fn placeholders(text: &str) -> Result<Vec<&str>, TemplateError> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|part| match part {
            Part::Value { path, .. } => Some(path),
            Part::Text(_) => None,
        })
        .collect())
}

/// Checks a template's placeholders without a contact.
pub fn check(text: &str) -> Result<(), TemplateError> {
    parse(text).map(|_| ())
}

fn lookup(contact: &Contact, path: &str) -> Option<String> {
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    match path {
        "name" => Some(contact.name.clone()),
        "email" => Some(contact.email.clone()),
        "phone" => Some(contact.phone.clone()),
        "object_id" => Some(contact.object_id.clone()),
        "external_id" => Some(contact.external_id.clone()),
        "current_stage" => Some(contact.current_stage.clone().unwrap_or_default()),
        _ => {
            if let Some(key) = path.strip_prefix("parameters.") {
                contact.parameters.get(key).map(text)
            } else {
                path.strip_prefix("results.").and_then(|key| contact.results.get(key)).map(text)
            }
        }
    }
}

/// Fills a template; `escape` is applied to each value. A placeholder the
/// contact has no value for is an error, not an empty string: a message
/// with a hole in it should not go out.
pub fn render(text: &str, contact: &Contact, escape: fn(&str) -> String) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for part in parse(text)? {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Value { path, line, column } => {
                let value = lookup(contact, path).ok_or_else(|| TemplateError {
                    line,
                    column,
                    message: format!("contact {} has no value for `{{{{{path}}}}}`", contact.object_id),
                })?;
                out.push_str(&escape(&value));
            }
        }
    }
    Ok(out)
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plain(text: &str) -> String {
    text.to_owned()
}

pub use stratagem_types::stage::RenderedEmail;

/// Line width of the text/plain alternative.
const TEXT_WIDTH: usize = 78;

/// The text/plain alternative of an HTML email, for clients that show no
/// HTML: the text as a reader sees it — paragraphs, line breaks, lists,
/// links with their address — without the markup, styles or scripts.
pub fn html_to_text(html: &str) -> String {
    // html2text parses any input (malformed HTML included); it fails only
    // on reading or on a width below 1, neither of which can happen here.
    let text = html2text::from_read(html.as_bytes(), TEXT_WIDTH).unwrap_or_default();
    text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_owned()
}

/// The rich-text editor's HTML, reduced to what it can make: `p`, `div`,
/// `br`, `b`/`strong`, `i`/`em`, `u`, lists and links to http(s) or
/// mailto addresses (opened without a referrer). Scripts, styles, event
/// handlers, images and every other tag or attribute are removed (their
/// text stays).
pub fn sanitize_rich_text(html: &str) -> String {
    ammonia::Builder::empty()
        .add_tags(["p", "div", "br", "b", "strong", "i", "em", "u", "ul", "ol", "li", "a"])
        .add_tag_attributes("a", ["href"])
        .add_url_schemes(["http", "https", "mailto"])
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

/// Renders a stage's email for a contact.
pub fn render_email(
    subject: &str,
    template: &str,
    input: EmailInputType,
    contact: &Contact,
) -> Result<RenderedEmail, (&'static str, TemplateError)> {
    let subject = render(subject, contact, plain).map_err(|error| ("email_subject", error))?;
    let (html, text) = match input {
        EmailInputType::Html => {
            let html = render(template, contact, escape_html).map_err(|error| ("email_template", error))?;
            let text = html_to_text(&html);
            (html, text)
        }
        EmailInputType::Default if has_markup(template) => {
            let html = render(template, contact, escape_html).map_err(|error| ("email_template", error))?;
            let html = format!("<!doctype html><html><body>{}</body></html>", sanitize_rich_text(&html));
            let text = html_to_text(&html);
            (html, text)
        }
        EmailInputType::Default => {
            let text = render(template, contact, plain).map_err(|error| ("email_template", error))?;
            let paragraphs: Vec<String> = text
                .split("\n\n")
                .map(str::trim)
                .filter(|paragraph| !paragraph.is_empty())
                .map(|paragraph| format!("<p>{}</p>", escape_html(paragraph).replace('\n', "<br>")))
                .collect();
            (format!("<!doctype html><html><body>{}</body></html>", paragraphs.join("")), text)
        }
    };
    Ok(RenderedEmail { subject: subject.replace(['\r', '\n'], " "), html, text })
}

/// A template's error as a form shows it: under the field, at its line
/// and column.
pub fn field_error(field: &str, error: TemplateError) -> crate::FieldError {
    crate::FieldError { field: field.to_owned(), message: error.message, line: Some(error.line), column: Some(error.column) }
}

/// The contact an email is shown for before a real one is chosen (the
/// stage editor's preview and test email): John Smith, whose parameters
/// and results named in the subject and template show their own names
/// (`{{parameters.amount_due}}` reads `[amount_due]`). A placeholder that
/// cannot be read is the error `render_email` would give, with its field.
pub fn sample_contact(subject: &str, template: &str) -> Result<Contact, (&'static str, TemplateError)> {
    let mut sample = Contact {
        object_id: "CONTRACT-123".into(),
        external_id: "USER-456".into(),
        name: "John Smith".into(),
        email: "john@example.com".into(),
        phone: "+1234567890".into(),
        parameters: Default::default(),
        current_stage: Some("1. Email reminder".into()),
        internal_data: Default::default(),
        results: Default::default(),
        result_flag: None,
        result_datetime: None,
        communications: Vec::new(),
    };
    for (field, text) in [("email_subject", subject), ("email_template", template)] {
        for path in placeholders(text).map_err(|error| (field, error))? {
            if let Some(key) = path.strip_prefix("parameters.") {
                sample.parameters.insert(key.to_owned(), format!("[{key}]").into());
            } else if let Some(key) = path.strip_prefix("results.") {
                sample.results.insert(key.to_owned(), format!("[{key}]").into());
            }
        }
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_a_rich_text_email_is_sanitized() {
        let template = "<p>Dear <b>{{name}}</b>,</p><ul><li><i>due</i>: {{parameters.amount_due}}</li></ul>\
                        <p><a href=\"https://pay.example.com/{{object_id}}\" onclick=\"steal()\">Pay now</a></p>\
                        <script>alert(1)</script><img src=x onerror=alert(2)><a href=\"javascript:alert(3)\">x</a>\
                        <p style=\"color:red\">styled</p>";
        let email = render_email("Hi", template, EmailInputType::Default, &contact()).expect("renders");
        assert_eq!(
            email.html,
            "<!doctype html><html><body><p>Dear <b>Ann &lt;Admin&gt;</b>,</p><ul><li><i>due</i>: 250.00</li></ul>\
             <p><a href=\"https://pay.example.com/CONTRACT-1\" rel=\"noopener noreferrer\">Pay now</a></p>\
             <a rel=\"noopener noreferrer\">x</a><p>styled</p></body></html>"
        );
        assert!(email.text.contains("Dear **Ann <Admin>**") || email.text.contains("Dear Ann <Admin>"), "{}", email.text);
        assert!(!email.text.contains("alert"), "{}", email.text);
        // A template without tags is still plain text.
        let plain = render_email("Hi", "a < b\n\nc", EmailInputType::Default, &contact()).expect("renders");
        assert_eq!(plain.html, "<!doctype html><html><body><p>a &lt; b</p><p>c</p></body></html>");
    }

    fn contact() -> Contact {
        serde_json::from_value(serde_json::json!({
            "object_id": "CONTRACT-1", "external_id": "U1", "name": "Ann <Admin>", "email": "ann@example.com",
            "parameters": {"amount_due": "250.00", "count": 3}
        }))
        .expect("contact")
    }

    #[test]
    fn works_when_rendering_default_and_html_emails() {
        let default = render_email("Invoice {{ object_id }}", "Dear {{name}},\n\nyou owe {{parameters.amount_due}}.", EmailInputType::Default, &contact())
            .expect("renders");
        assert_eq!(default.subject, "Invoice CONTRACT-1");
        assert_eq!(default.text, "Dear Ann <Admin>,\n\nyou owe 250.00.");
        assert_eq!(default.html, "<!doctype html><html><body><p>Dear Ann &lt;Admin&gt;,</p><p>you owe 250.00.</p></body></html>");
        let html = render_email("Hi", "<b>{{name}}</b> x{{parameters.count}}", EmailInputType::Html, &contact()).expect("renders");
        assert_eq!(html.html, "<b>Ann &lt;Admin&gt;</b> x3");
    }

    /// The text alternative of an HTML email is what a reader sees, not
    /// the markup.
    #[test]
    fn works_when_an_html_email_gets_a_text_alternative() {
        let template = "<html><head><style>p { color: red }</style></head><body><p>Dear <b>{{name}}</b>,</p>\
            <p>pay {{parameters.amount_due}} <a href=\"https://pay.example.com/c1\">here</a>.</p>\
            <ul><li>by card</li><li>by transfer</li></ul><script>alert(1)</script></body></html>";
        let email = render_email("Hi", template, EmailInputType::Html, &contact()).expect("renders");
        let text = email.text;
        for absent in ["<b>", "<p>", "</", "<style", "color", "alert", "&lt;"] {
            assert!(!text.contains(absent), "`{absent}` in {text:?}");
        }
        for present in ["Dear", "Ann <Admin>", "pay 250.00", "https://pay.example.com/c1", "by card", "by transfer"] {
            assert!(text.contains(present), "`{present}` missing from {text:?}");
        }
        assert!(text.find("Dear").expect("dear") < text.find("by card").expect("list"), "{text:?}");
    }

    #[test]
    fn errors_with_the_position_of_a_bad_or_missing_placeholder() {
        assert_eq!(
            check("Hello\n  {{nmae}}").expect_err("unknown").to_string(),
            "line 2, column 3: unknown placeholder `{{nmae}}`; use one of name, email, phone, object_id, external_id, current_stage, parameters.KEY or results.KEY"
        );
        assert_eq!(check("Hi {{name").expect_err("unclosed").column, 4);
        let (field, error) = render_email("Hi", "Due {{parameters.due_date}}", EmailInputType::Default, &contact()).expect_err("missing");
        assert_eq!(field, "email_template");
        assert_eq!(error.message, "contact CONTRACT-1 has no value for `{{parameters.due_date}}`");
    }
}
