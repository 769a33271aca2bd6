//! A concrete syntax tree of RON text: every value with its byte span, so that `--set`
//! and sweeps can replace a field's text (keeping enum variant names, which a generic
//! value tree loses), and so that a scenario path can be traced back to a line.
//!
//! It parses the subset of RON the scenario format uses: named and anonymous structs,
//! tuples, lists, maps, strings, chars, numbers, identifiers, and `//`, `/* */` comments.

use std::ops::Range;

/// A value and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Byte span of the whole value (name included).
    pub span: Range<usize>,
    /// What it is.
    pub kind: Kind,
}

/// The shape of a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `Name(field: value, ...)` or `(field: value, ...)`.
    Struct {
        /// The name, if written.
        name: Option<String>,
        /// Fields in order.
        fields: Vec<Field>,
        /// Span of the closing parenthesis.
        close: usize,
    },
    /// `Name(a, b)` or `(a, b)` (also `()`).
    Tuple {
        /// The name, if written (an enum variant such as `Some`).
        name: Option<String>,
        /// Elements.
        items: Vec<Node>,
    },
    /// `[a, b]`.
    List(Vec<Node>),
    /// `{k: v}`.
    Map(Vec<(Node, Node)>),
    /// A string, char, number, boolean or identifier: its text.
    Atom(String),
}

/// A struct field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Span of the name.
    pub name_span: Range<usize>,
    /// Its value.
    pub value: Node,
}

/// A syntax error: byte offset and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// Parses a whole document (one value; comments and `#![enable(...)]` lines allowed).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.skip_ws()?;
    while p.s[p.i..].starts_with(b"#!") {
        while p.i < p.s.len() && p.s[p.i] != b'\n' {
            p.i += 1;
        }
        p.skip_ws()?;
    }
    let node = p.value(0)?;
    p.skip_ws()?;
    if p.i < p.s.len() {
        return Err(p.error("end of file after the value"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn error(&self, expected: &str) -> SyntaxError {
        let found = match self.s.get(self.i) {
            None => "end of file".to_owned(),
            Some(&c) => format!("`{}`", c as char),
        };
        SyntaxError { offset: self.i, message: format!("expected {expected}, found {found}") }
    }

    fn skip_ws(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.s.get(self.i..self.i + 2) {
                Some(b"//") => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                Some(b"/*") => {
                    let start = self.i;
                    let mut depth = 0usize;
                    loop {
                        match self.s.get(self.i..self.i + 2) {
                            Some(b"/*") => {
                                depth += 1;
                                self.i += 2;
                            }
                            Some(b"*/") => {
                                depth -= 1;
                                self.i += 2;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Some(_) => self.i += 1,
                            None => {
                                return Err(SyntaxError {
                                    offset: start,
                                    message: "unterminated /* comment".into(),
                                });
                            }
                        }
                    }
                }
                _ => match self.s.get(self.i) {
                    Some(c) if c.is_ascii_whitespace() => self.i += 1,
                    _ => return Ok(()),
                },
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        if self.s[self.i..].starts_with(b"r#") {
            self.i += 2;
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || (c == b'-' && self.i > start) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("a value nested less deeply"));
        }
        let start = self.i;
        match self.peek() {
            Some(b'(') => self.parens(start, None, depth),
            Some(b'[') => {
                self.i += 1;
                let items = self.seq(b']', depth)?;
                Ok(Node { span: start..self.i, kind: Kind::List(items) })
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws()?;
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        break;
                    }
                    let k = self.value(depth + 1)?;
                    self.skip_ws()?;
                    if self.peek() != Some(b':') {
                        return Err(self.error("`:` after a map key"));
                    }
                    self.i += 1;
                    self.skip_ws()?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(self.error("`,` or `}`")),
                    }
                }
                Ok(Node { span: start..self.i, kind: Kind::Map(entries) })
            }
            Some(b'"') => {
                self.string()?;
                Ok(self.atom(start))
            }
            Some(b'r') if matches!(self.s.get(self.i + 1), Some(b'"' | b'#')) && self.raw_string()? => {
                Ok(self.atom(start))
            }
            Some(b'\'') => {
                self.i += 1;
                if self.peek() == Some(b'\\') {
                    self.i += 1;
                }
                // One UTF-8 character.
                self.i += 1;
                while self.peek().is_some_and(|c| c & 0xC0 == 0x80) {
                    self.i += 1;
                }
                if self.peek() != Some(b'\'') {
                    return Err(self.error("`'` closing a char"));
                }
                self.i += 1;
                Ok(self.atom(start))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                self.i += 1;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-') {
                        // `-`/`+` only inside an exponent.
                        if matches!(c, b'+' | b'-') && !matches!(self.s[self.i - 1], b'e' | b'E') {
                            break;
                        }
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Ok(self.atom(start))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self.ident().expect("starts with a letter");
                let after = self.i;
                self.skip_ws()?;
                if self.peek() == Some(b'(') {
                    self.parens(start, Some(name), depth)
                } else {
                    self.i = after;
                    Ok(self.atom(start))
                }
            }
            _ => Err(self.error("a value")),
        }
    }

    fn atom(&self, start: usize) -> Node {
        Node {
            span: start..self.i,
            kind: Kind::Atom(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()),
        }
    }

    fn string(&mut self) -> Result<(), SyntaxError> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek() {
                None => return Err(SyntaxError { offset: start, message: "unterminated string".into() }),
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// `r"..."`, `r#"..."#`; false (nothing consumed) if this is an identifier after all.
    fn raw_string(&mut self) -> Result<bool, SyntaxError> {
        let start = self.i;
        let mut j = self.i + 1;
        let mut hashes = 0;
        while self.s.get(j) == Some(&b'#') {
            hashes += 1;
            j += 1;
        }
        if self.s.get(j) != Some(&b'"') {
            return Ok(false);
        }
        j += 1;
        loop {
            match self.s.get(j) {
                None => return Err(SyntaxError { offset: start, message: "unterminated raw string".into() }),
                Some(b'"')
                    if self.s[j + 1..].iter().take(hashes).filter(|&&c| c == b'#').count() == hashes =>
                {
                    self.i = j + 1 + hashes;
                    return Ok(true);
                }
                Some(_) => j += 1,
            }
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.error(&format!("`,` or `{}`", close as char))),
            }
        }
    }

    /// At `(`: a struct if the first thing inside is `ident :`, else a tuple.
    fn parens(&mut self, start: usize, name: Option<String>, depth: usize) -> Result<Node, SyntaxError> {
        self.i += 1;
        self.skip_ws()?;
        let save = self.i;
        let is_struct = match self.ident() {
            Some(_) => {
                self.skip_ws()?;
                let colon = self.peek() == Some(b':') && self.s.get(self.i + 1) != Some(&b':');
                self.i = save;
                colon
            }
            None => false,
        };
        if !is_struct {
            let items = self.seq(b')', depth)?;
            return Ok(Node { span: start..self.i, kind: Kind::Tuple { name, items } });
        }
        let mut fields = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b')') {
                let close = self.i;
                self.i += 1;
                return Ok(Node { span: start..self.i, kind: Kind::Struct { name, fields, close } });
            }
            let ns = self.i;
            let Some(fname) = self.ident() else {
                return Err(self.error("a field name"));
            };
            let name_span = ns..self.i;
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.error(&format!("`:` after field `{fname}`")));
            }
            self.i += 1;
            self.skip_ws()?;
            let value = self.value(depth + 1)?;
            fields.push(Field { name: fname, name_span, value });
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {}
                _ => return Err(self.error("`,` or `)`")),
            }
        }
    }
}

impl Node {
    /// The field of this struct of that name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        match &self.kind {
            Kind::Struct { fields, .. } => fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }

    /// Elements of a list or tuple (a `Some(x)` yields x).
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::List(items) | Kind::Tuple { items, .. } => Some(items),
            _ => None,
        }
    }

    /// What this is, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Struct { .. } => "a struct",
            Kind::Tuple { .. } => "a tuple",
            Kind::List(_) => "a list",
            Kind::Map(_) => "a map",
            Kind::Atom(_) => "a single value",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_with_spans() {
        let t = "// c\nScenario(a: 1, b: Poisson(rate: 2.5e-3), c: [x, Some(\"s)\")], d: (1, 2), e: {\"k\": 'v'}, /* x */ f: (),)";
        let n = parse(t).unwrap();
        let Kind::Struct { name, fields, .. } = &n.kind else { panic!() };
        assert_eq!(name.as_deref(), Some("Scenario"));
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        let b = &n.field("b").unwrap().value;
        assert_eq!(&t[b.span.clone()], "Poisson(rate: 2.5e-3)");
        assert_eq!(&t[b.field("rate").unwrap().value.span.clone()], "2.5e-3");
        let c = n.field("c").unwrap().value.items().unwrap();
        assert_eq!(&t[c[1].span.clone()], "Some(\"s)\")");
        assert!(
            matches!(n.field("f").unwrap().value.kind, Kind::Tuple { ref items, .. } if items.is_empty())
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("S(a: 1 b: 2)").unwrap_err();
        assert_eq!(e.offset, 7);
        assert!(e.message.contains("`,` or `)`"), "{}", e.message);
        assert_eq!(parse("S(a: \"x)").unwrap_err().message, "unterminated string");
        assert!(parse(&"[".repeat(1000)).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn never_panics_on_junk() {
        // Every prefix of a valid document, and some byte soup.
        let t = "S(a: r#\"x\"#, b: -1.5e+3, c: 'x', d: [1,2], e: {1: 2}) /* */";
        for i in 0..=t.len() {
            let _ = parse(&t[..i]);
        }
        for s in ["'", "r", "r#", "(a:", "((((", "/*", "-", "S(a::b)", "'\\"] {
            let _ = parse(s);
        }
    }
}
