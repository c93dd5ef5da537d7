//! A small Python tokenizer for the code view: keywords, builtins,
//! strings, numbers, comments and decorators become spans, one line per
//! `<span class="line">` so a failed build can mark its error line.

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else",
    "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
    "return", "try", "while", "with", "yield", "match", "case",
];
const BUILTINS: &[&str] = &[
    "print", "len", "range", "dict", "list", "str", "int", "float", "bool", "set", "tuple", "isinstance", "getattr", "setattr",
    "enumerate", "zip", "min", "max", "sum", "any", "all", "sorted", "self", "Contact", "Communication", "CommunicationStatus",
    "Message", "datetime", "timedelta",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn span(out: &mut String, class: &str, text: &str) {
    if class.is_empty() {
        out.push_str(&escape(text));
    } else {
        out.push_str(&format!("<span class=\"{class}\">{}</span>", escape(text)));
    }
}

/// Highlighted HTML of `code`; line `error_line` (1-based) is marked.
pub fn highlight(code: &str, error_line: Option<u64>) -> String {
    let mut html = String::new();
    let mut in_triple: Option<&str> = None;
    for (index, line) in code.split('\n').enumerate() {
        let class = if error_line == Some(index as u64 + 1) { "line error-line" } else { "line" };
        html.push_str(&format!("<span class=\"{class}\">"));
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let take = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
        while i < chars.len() {
            if let Some(quote) = in_triple {
                let rest: String = chars[i..].iter().collect();
                match rest.find(quote) {
                    Some(end) => {
                        let end_chars = rest[..end].chars().count() + 3;
                        span(&mut html, "str", &take(i, i + end_chars));
                        i += end_chars;
                        in_triple = None;
                    }
                    None => {
                        span(&mut html, "str", &rest);
                        i = chars.len();
                    }
                }
                continue;
            }
            let c = chars[i];
            if c == '#' {
                span(&mut html, "comment", &take(i, chars.len()));
                break;
            }
            if c == '"' || c == '\'' {
                let triple: String = std::iter::repeat_n(c, 3).collect();
                if chars[i..].iter().take(3).collect::<String>() == triple {
                    in_triple = Some(if c == '"' { "\"\"\"" } else { "'''" });
                    span(&mut html, "str", &triple);
                    i += 3;
                    continue;
                }
                let mut j = i + 1;
                while j < chars.len() && chars[j] != c {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = (j + 1).min(chars.len());
                span(&mut html, "str", &take(i, end));
                i = end;
                continue;
            }
            if c == '@' && chars[..i].iter().all(|c| c.is_whitespace()) {
                span(&mut html, "decorator", &take(i, chars.len()));
                break;
            }
            if c.is_ascii_digit() {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.' || chars[j] == '_') {
                    j += 1;
                }
                span(&mut html, "num", &take(i, j));
                i = j;
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                let mut j = i;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word = take(i, j);
                let previous: String = chars[..i].iter().collect::<String>().trim_end().to_owned();
                let class = if KEYWORDS.contains(&word.as_str()) {
                    "kw"
                } else if previous.ends_with("def") || previous.ends_with("class") {
                    "fn"
                } else if BUILTINS.contains(&word.as_str()) {
                    "builtin"
                } else {
                    ""
                };
                span(&mut html, class, &word);
                i = j;
                continue;
            }
            span(&mut html, "", &c.to_string());
            i += 1;
        }
        html.push_str("</span>\n");
    }
    html
}
