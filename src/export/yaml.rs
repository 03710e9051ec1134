//! A small block-style YAML writer for the exports. Structure comes from the code; every string
//! from the plan goes through `validate`'s YAML rule (a literal block where that is exact, else a
//! fully escaped double-quoted scalar), so no value can break the document's structure.

use crate::validate;

/// A YAML node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Y {
    /// A string, quoted.
    Str(String),
    /// A string Ansible must not template (`!unsafe`): every value that comes from the plan.
    Unsafe(String),
    /// A number or boolean, written as is (made by the code, never from text).
    Plain(String),
    /// A multi-line text: a literal block where exact.
    Text(String),
    /// A multi-line text Ansible must not template.
    UnsafeText(String),
    Map(Vec<(String, Y)>),
    List(Vec<Y>),
    /// Comment lines in a map or list (the key is ignored).
    Comment(String),
    /// A one-line scalar with a comment after it on the same line (a linter's `noqa`).
    Noted(Box<Y>, &'static str),
}

pub fn s(v: impl Into<String>) -> Y {
    Y::Str(v.into())
}

pub fn num(n: impl std::fmt::Display) -> Y {
    Y::Plain(n.to_string())
}

pub fn yes(b: bool) -> Y {
    Y::Plain(b.to_string())
}

pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Y)>) -> Y {
    Y::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

pub fn comment(text: impl Into<String>) -> (String, Y) {
    (String::new(), Y::Comment(text.into()))
}

/// Keys are written plain when they are plain identifiers (all of lowport's are), else quoted.
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if plain {
        k.to_string()
    } else {
        validate::yaml_quoted(k)
    }
}

/// Comment lines at `col`, wrapped at 96 columns (linters limit line length).
fn comment_lines(out: &mut String, col: usize, text: &str) {
    let width = 96usize.saturating_sub(col + 2).max(40);
    for para in text.lines() {
        // A comment ends at the line break; nothing else in it is syntax.
        let para: String = para
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut line = String::new();
        let mut flush = |line: &mut String| {
            out.push_str(&" ".repeat(col));
            out.push('#');
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
            out.push('\n');
            line.clear();
        };
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                flush(&mut line);
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        flush(&mut line);
    }
}

/// The value part after `key: ` (or `- `) at column `col`, ending with a newline.
fn value(out: &mut String, col: usize, v: &Y) {
    match v {
        Y::Str(t) => {
            out.push_str(&validate::yaml_quoted(t));
            out.push('\n');
        }
        Y::Unsafe(t) => {
            out.push_str("!unsafe ");
            out.push_str(&validate::yaml_quoted(t));
            out.push('\n');
        }
        Y::Plain(t) => {
            out.push_str(t);
            out.push('\n');
        }
        Y::Text(t) => out.push_str(&validate::yaml_text(t, col)),
        Y::UnsafeText(t) => {
            out.push_str("!unsafe ");
            out.push_str(&validate::yaml_text(t, col));
        }
        Y::Map(m) if m.is_empty() => out.push_str("{}\n"),
        Y::List(l) if l.is_empty() => out.push_str("[]\n"),
        Y::Map(_) | Y::List(_) => {
            out.push('\n');
            node(out, col + 2, v);
        }
        Y::Comment(_) => out.push('\n'),
        Y::Noted(inner, note) => {
            value(out, col, inner);
            out.pop();
            out.push_str("  # ");
            out.push_str(note);
            out.push('\n');
        }
    }
}

/// A node at column `col`, starting on a fresh line.
fn node(out: &mut String, col: usize, v: &Y) {
    match v {
        Y::Map(entries) => {
            for (k, v) in entries {
                if let Y::Comment(text) = v {
                    comment_lines(out, col, text);
                    continue;
                }
                out.push_str(&" ".repeat(col));
                entry(out, col, k, v);
            }
        }
        Y::List(items) => {
            for item in items {
                if let Y::Comment(text) = item {
                    comment_lines(out, col, text);
                    continue;
                }
                let item = match item {
                    Y::Map(entries) => {
                        let lead = entries
                            .iter()
                            .take_while(|(_, v)| matches!(v, Y::Comment(_)))
                            .count();
                        for (_, c) in &entries[..lead] {
                            if let Y::Comment(text) = c {
                                comment_lines(out, col, text);
                            }
                        }
                        Y::Map(entries[lead..].to_vec())
                    }
                    other => other.clone(),
                };
                out.push_str(&" ".repeat(col));
                out.push_str("- ");
                match &item {
                    // A map item starts on the dash's line; its other keys align under the first.
                    Y::Map(entries) if !entries.is_empty() => {
                        for (n, (k, v)) in entries.iter().enumerate() {
                            if let Y::Comment(text) = v {
                                comment_lines(out, col + 2, text);
                                continue;
                            }
                            if n > 0 {
                                out.push_str(&" ".repeat(col + 2));
                            }
                            entry(out, col + 2, k, v);
                        }
                    }
                    // A list of scalars inside a list (an argv) reads best on one line.
                    Y::List(words) if !words.is_empty() && words.iter().all(scalar) => {
                        let mut flow = String::from("[");
                        for (n, w) in words.iter().enumerate() {
                            if n > 0 {
                                flow.push_str(", ");
                            }
                            value(&mut flow, col, w);
                            flow.pop();
                        }
                        out.push_str(&flow);
                        out.push_str("]\n");
                    }
                    _ => value(out, col, &item),
                }
            }
        }
        other => {
            out.push_str(&" ".repeat(col));
            value(out, col, other);
        }
    }
}

fn scalar(v: &Y) -> bool {
    matches!(v, Y::Str(_) | Y::Unsafe(_) | Y::Plain(_))
}

fn entry(out: &mut String, col: usize, k: &str, v: &Y) {
    out.push_str(&key(k));
    out.push(':');
    if !matches!(v, Y::Map(m) if !m.is_empty()) && !matches!(v, Y::List(l) if !l.is_empty()) {
        out.push(' ');
    }
    value(out, col, v);
}

/// A whole document: `header` comment lines, then the node.
pub fn document(header: &str, v: &Y) -> String {
    let mut out = String::new();
    out.push_str(header);
    node(&mut out, 0, v);
    out
}
