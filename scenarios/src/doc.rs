//! A scenario's text as edited by named topologies, `--set` and sweep points, with a map
//! from every byte back to where it came from (the file, a `--set` argument, a built-in
//! topology), so that an error anywhere names the right line and column.

use std::ops::Range;

use crate::cst::{self, Kind, Node};

/// Where text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file, by the name given on the command line.
    File(String),
    /// The value of a `--set` argument (as given, `PATH=VALUE`).
    Set(String),
    /// A built-in topology, by name.
    Topology(String),
}

/// A place in a source: 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The source.
    pub source: Source,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::File(name) => write!(f, "{name}:{}:{}", self.line, self.column),
            Source::Set(arg) => write!(f, "--set {arg} (column {})", self.column),
            Source::Topology(name) => {
                write!(f, "built-in topology {name:?} line {}, column {}", self.line, self.column)
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Seg {
    /// Span in the document.
    start: usize,
    end: usize,
    /// Index into `sources`, and the offset in that source's text of `start`.
    source: usize,
    src_offset: usize,
}

/// An edited document.
#[derive(Clone, Debug)]
pub struct Doc {
    text: String,
    segs: Vec<Seg>,
    sources: Vec<(Source, String)>,
}

/// A path into a scenario, or a metric in results: `directors[0].services[*].scheduler`,
/// `services[web].latency_ms.p99`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A struct field.
    Field(String),
    /// A list element.
    Index(usize),
    /// Every list element.
    All,
    /// The list element whose `name` is this (`[web]`).
    Name(String),
}

/// Whether `name` can be selected by `[name]` in a path: letters, digits and `_-.:`
/// (dots and colons stand in names and addresses: `[tcp-10.1.0.100-80]`).
pub fn is_element_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

/// Parses `a.b[0].c[*]` and `services[web].latency_ms`: fields separated by dots, each
/// followed by any number of `[N]`, `[*]` or `[NAME]` (a dot inside brackets is part of
/// the name).
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = path;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        rest = &rest[end..];
        if name.is_empty() && (steps.is_empty() || !rest.starts_with('[')) {
            return Err(format!("empty field name in path {path:?}"));
        }
        if !name.is_empty() {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{name:?} is not a field name (path {path:?})"));
            }
            steps.push(Step::Field(name.to_owned()));
        }
        while let Some(after) = rest.strip_prefix('[') {
            let Some(close) = after.find(']') else {
                return Err(format!("missing `]` in path {path:?}"));
            };
            steps.push(element(&after[..close], path)?);
            rest = &after[close + 1..];
        }
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Ok(steps),
            None => return Err(format!("unexpected {rest:?} in path {path:?}")),
        }
    }
}

/// What stands in brackets: `*`, an index or a name.
fn element(inner: &str, path: &str) -> Result<Step, String> {
    if inner == "*" {
        Ok(Step::All)
    } else if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
        inner
            .parse()
            .map(Step::Index)
            .map_err(|_| format!("{inner:?} is too large an index in path {path:?}"))
    } else if is_element_name(inner) {
        Ok(Step::Name(inner.to_owned()))
    } else {
        Err(format!(
            "{inner:?} is not a list index (a number, * or a name of letters, digits, `_-.:`) in path {path:?}"
        ))
    }
}

/// The element of a scenario list whose `name` field is `name`, or an error listing the
/// names there are (`here`: the list's path).
fn named<'a>(items: &'a [Node], name: &str, here: &str) -> Result<&'a Node, String> {
    let name_of = |n: &Node| match &n.field("name")?.value.kind {
        Kind::Atom(a) => Some(a.trim_matches('"').to_owned()),
        _ => None,
    };
    if let Some(n) = items.iter().find(|n| name_of(n).as_deref() == Some(name)) {
        return Ok(n);
    }
    let names: Vec<String> = items.iter().filter_map(name_of).collect();
    Err(format!("{here} has no element named {name:?} (names: {})", list_or_none(&names)))
}

/// `a, b, c`, or `none` for an empty list.
pub fn list_or_none(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

/// Renders a path.
pub fn show_path(steps: &[Step]) -> String {
    let mut s = String::new();
    for st in steps {
        match st {
            Step::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
            Step::All => s.push_str("[*]"),
            Step::Name(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s
}

/// What a path leads to in a tree.
enum Target {
    /// An existing value.
    Value(Range<usize>),
    /// A missing field of a struct: insert `field: value` after this offset (just inside
    /// the opening parenthesis), nesting the remaining field names.
    Missing { at: usize, fields: Vec<String> },
}

impl Doc {
    /// A document from one source.
    pub fn new(source: Source, text: String) -> Doc {
        let len = text.len();
        Doc {
            segs: vec![Seg { start: 0, end: len, source: 0, src_offset: 0 }],
            sources: vec![(source, text.clone())],
            text,
        }
    }

    /// The current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where a byte of the document came from (an offset at the end maps to the end of
    /// the last piece).
    pub fn locate(&self, offset: usize) -> Location {
        let seg = self
            .segs
            .iter()
            .find(|s| s.start <= offset && offset < s.end)
            .or_else(|| self.segs.iter().rev().find(|s| s.end <= offset))
            .or(self.segs.first());
        let (source, src_off) = match seg {
            Some(s) => (s.source, s.src_offset + offset.min(s.end).saturating_sub(s.start)),
            None => (0, 0),
        };
        let (src, text) = &self.sources[source];
        let (line, column) = line_col(text, src_off);
        Location { source: src.clone(), line, column }
    }

    /// Replaces `range` of the document with `text` from `source` (its offset
    /// `src_offset` is where `text` starts in that source).
    fn splice(&mut self, range: Range<usize>, text: &str, source: Source, src_text: &str, src_offset: usize) {
        let si = match self.sources.iter().position(|(s, t)| *s == source && t == src_text) {
            Some(i) => i,
            None => {
                self.sources.push((source, src_text.to_owned()));
                self.sources.len() - 1
            }
        };
        let delta = text.len() as isize - range.len() as isize;
        let mut segs = Vec::with_capacity(self.segs.len() + 2);
        for s in &self.segs {
            // The part before the range.
            if s.start < range.start {
                segs.push(Seg { end: s.end.min(range.start), ..s.clone() });
            }
            // The part after the range, shifted.
            if s.end > range.end {
                let start = s.start.max(range.end);
                segs.push(Seg {
                    start: (start as isize + delta) as usize,
                    end: (s.end as isize + delta) as usize,
                    source: s.source,
                    src_offset: s.src_offset + (start - s.start),
                });
            }
        }
        if !text.is_empty() {
            segs.push(Seg { start: range.start, end: range.start + text.len(), source: si, src_offset });
        }
        segs.sort_by_key(|s| s.start);
        self.segs = segs;
        self.text.replace_range(range, text);
    }

    /// Where the byte at `offset` came from: the source, its text, and the offset in it.
    pub fn origin(&self, offset: usize) -> (Source, String, usize) {
        let seg = self.segs.iter().find(|s| s.start <= offset && offset < s.end).or(self.segs.first());
        let (si, off) = seg.map_or((0, 0), |s| (s.source, s.src_offset + offset.saturating_sub(s.start)));
        let (src, text) = &self.sources[si];
        (src.clone(), text.clone(), off)
    }

    /// The current syntax tree.
    pub fn tree(&self) -> Result<Node, (Location, String)> {
        cst::parse(&self.text).map_err(|e| (self.locate(e.offset), e.message))
    }

    /// Sets the value at `path` to `value` (RON text from `source`, where it starts at
    /// `src_offset`). A missing struct field is added; `[*]` sets every element. Returns
    /// how many places were set.
    pub fn set(
        &mut self,
        path: &[Step],
        value: &str,
        source: Source,
        src_text: &str,
        src_offset: usize,
    ) -> Result<usize, String> {
        let tree = self.tree().map_err(|(loc, m)| format!("{loc}: {m}"))?;
        let mut targets = Vec::new();
        resolve(&tree, path, 0, &self.text, &mut targets)?;
        if targets.is_empty() {
            return Err(format!("{} matches no element (the list is empty)", show_path(path)));
        }
        // Back to front, so that earlier offsets stay valid.
        targets.sort_by_key(|t| std::cmp::Reverse(target_offset(t)));
        for t in &targets {
            match t {
                Target::Value(r) => self.splice(r.clone(), value, source.clone(), src_text, src_offset),
                Target::Missing { at, fields } => {
                    // `f1: (f2: (f3: VALUE)), `; only VALUE maps to the source.
                    let mut prefix = String::new();
                    for (k, f) in fields.iter().enumerate() {
                        prefix.push_str(f);
                        prefix.push_str(": ");
                        if k + 1 < fields.len() {
                            prefix.push('(');
                        }
                    }
                    let suffix = format!("{}, ", ")".repeat(fields.len() - 1));
                    self.splice(*at..*at, &suffix, source.clone(), src_text, src_offset + value.len());
                    self.splice(*at..*at, value, source.clone(), src_text, src_offset);
                    self.splice(*at..*at, &prefix, source.clone(), src_text, src_offset);
                }
            }
        }
        Ok(targets.len())
    }

    /// Adds `field: TEXT` to the top-level struct unless it has that field, where TEXT is
    /// a whole other source (a built-in topology's field).
    pub fn add_field_from(
        &mut self,
        field: &str,
        value: Range<usize>,
        source: Source,
        src_text: &str,
    ) -> Result<bool, String> {
        let tree = self.tree().map_err(|(loc, m)| format!("{loc}: {m}"))?;
        if tree.field(field).is_some() {
            return Ok(false);
        }
        let Kind::Struct { .. } = &tree.kind else {
            return Err("the scenario is not a struct".into());
        };
        let at = open_paren(&self.text, &tree);
        let text = &src_text[value.clone()];
        self.splice(at..at, ", ", source.clone(), src_text, value.end);
        self.splice(at..at, text, source.clone(), src_text, value.start);
        self.splice(at..at, &format!("{field}: "), source, src_text, value.start);
        Ok(true)
    }

    /// Where the value at a path starts (the nearest existing ancestor if it is missing).
    /// A field inside `Some(...)` is found as `resolve` finds it.
    pub fn locate_path(&self, path: &[Step]) -> Option<Location> {
        let tree = self.tree().ok()?;
        let mut node = &tree;
        for st in path {
            if let Kind::Tuple { name: Some(n), items } = &node.kind
                && n == "Some"
                && items.len() == 1
            {
                node = &items[0];
            }
            let next = match st {
                Step::Field(f) => node.field(f).map(|f| &f.value),
                Step::Index(i) => node.items().and_then(|it| it.get(*i)),
                Step::Name(n) => node.items().and_then(|it| named(it, n, "").ok()),
                Step::All => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        Some(self.locate(node.span.start))
    }

    /// The text of the value at a path, if present.
    pub fn text_at(&self, path: &[Step]) -> Option<String> {
        let tree = self.tree().ok()?;
        let mut node = &tree;
        for st in path {
            node = match st {
                Step::Field(f) => &node.field(f)?.value,
                Step::Index(i) => node.items()?.get(*i)?,
                Step::Name(n) => named(node.items()?, n, "").ok()?,
                Step::All => return None,
            };
        }
        Some(self.text[node.span.clone()].to_owned())
    }
}

fn target_offset(t: &Target) -> usize {
    match t {
        Target::Value(r) => r.start,
        Target::Missing { at, .. } => *at,
    }
}

fn open_paren(text: &str, node: &Node) -> usize {
    node.span.start + text[node.span.clone()].find('(').map_or(0, |i| i + 1)
}

fn resolve(
    node: &Node,
    path: &[Step],
    depth: usize,
    text: &str,
    out: &mut Vec<Target>,
) -> Result<(), String> {
    let Some(step) = path.get(depth) else {
        out.push(Target::Value(node.span.clone()));
        return Ok(());
    };
    let here = || if depth == 0 { "the scenario".to_owned() } else { show_path(&path[..depth]) };
    match step {
        Step::Field(f) => match &node.kind {
            Kind::Struct { .. } => match node.field(f) {
                Some(field) => resolve(&field.value, path, depth + 1, text, out),
                None => {
                    let mut fields = Vec::new();
                    for st in &path[depth..] {
                        match st {
                            Step::Field(f) => fields.push(f.clone()),
                            _ => {
                                return Err(format!(
                                    "{} is not written in the scenario, so {} cannot be indexed; \
                                     set the whole list instead",
                                    show_path(&path[..=depth]),
                                    show_path(path)
                                ));
                            }
                        }
                    }
                    out.push(Target::Missing { at: open_paren(text, node), fields });
                    Ok(())
                }
            },
            // `Some(x)`: look inside.
            Kind::Tuple { name: Some(n), items } if n == "Some" && items.len() == 1 => {
                resolve(&items[0], path, depth, text, out)
            }
            Kind::Tuple { items, .. } if items.is_empty() => {
                out.push(Target::Missing {
                    at: open_paren(text, node),
                    fields: field_names(&path[depth..])?,
                });
                Ok(())
            }
            _ => Err(format!("{} is {}, which has no field `{f}`", here(), node.describe())),
        },
        Step::Index(i) => match node.items() {
            Some(items) => match items.get(*i) {
                Some(n) => resolve(n, path, depth + 1, text, out),
                None => Err(format!("{} has {} elements; there is no [{i}]", here(), items.len())),
            },
            None => Err(format!("{} is {}, not a list", here(), node.describe())),
        },
        Step::All => match node.items() {
            Some(items) => {
                for n in items {
                    resolve(n, path, depth + 1, text, out)?;
                }
                Ok(())
            }
            None => Err(format!("{} is {}, not a list", here(), node.describe())),
        },
        Step::Name(name) => match node.items() {
            Some(items) => resolve(named(items, name, &here())?, path, depth + 1, text, out),
            None => Err(format!("{} is {}, not a list", here(), node.describe())),
        },
    }
}

fn field_names(steps: &[Step]) -> Result<Vec<String>, String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Field(f) => Ok(f.clone()),
            _ => Err(format!("cannot index into a value that is not written: {}", show_path(steps))),
        })
        .collect()
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut off = offset;
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of a 1-based line and column.
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + l.char_indices().nth(column.saturating_sub(1)).map_or(l.len(), |(b, _)| b);
        }
        off += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(t: &str) -> Doc {
        Doc::new(Source::File("s.ron".into()), t.to_owned())
    }

    fn set(d: &mut Doc, path: &str, v: &str) -> Result<usize, String> {
        let arg = format!("{path}={v}");
        d.set(&parse_path(path).unwrap(), v, Source::Set(arg.clone()), &arg, path.len() + 1)
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("a.b[2][*].c").unwrap(),
            vec![
                Step::Field("a".into()),
                Step::Field("b".into()),
                Step::Index(2),
                Step::All,
                Step::Field("c".into())
            ]
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x y]").is_err());
        assert!(parse_path("a[]").is_err());
        assert!(parse_path("a[1").is_err());
        assert!(parse_path("a[1]b").is_err());
        assert!(parse_path("a.").is_err());
        assert!(parse_path("a[99999999999999999999999]").unwrap_err().contains("too large"));
        // A name in brackets may hold dots and colons; the dot after `]` separates.
        assert_eq!(
            parse_path("services[tcp-10.1.0.100-80].latency_ms.p99").unwrap(),
            vec![
                Step::Field("services".into()),
                Step::Name("tcp-10.1.0.100-80".into()),
                Step::Field("latency_ms".into()),
                Step::Field("p99".into())
            ]
        );
        assert_eq!(parse_path("b[udp-2001:db8::1-53]").unwrap()[1], Step::Name("udp-2001:db8::1-53".into()));
        assert_eq!(show_path(&parse_path("s[web].x").unwrap()), "s[web].x");
        assert_eq!(show_path(&parse_path("a.b[2][*].c").unwrap()), "a.b[2][*].c");
    }

    #[test]
    fn set_replaces_adds_and_fans_out() {
        let mut d = doc("S(\n  a: 1,\n  l: [X(k: 1), X(k: 2)],\n  o: Some(P(r: 1.0)),\n)");
        set(&mut d, "a", "42").unwrap();
        assert_eq!(set(&mut d, "l[*].k", "7").unwrap(), 2);
        set(&mut d, "o.r", "2.5").unwrap();
        set(&mut d, "n.m.q", "Poisson(rate: 3)").unwrap();
        let t = d.text().to_owned();
        assert!(t.contains("a: 42"), "{t}");
        assert!(t.contains("[X(k: 7), X(k: 7)]"), "{t}");
        assert!(t.contains("Some(P(r: 2.5))"), "{t}");
        assert!(t.contains("n: (m: (q: Poisson(rate: 3))), "), "{t}");
        cst::parse(&t).unwrap();
        // Errors name the path.
        assert!(set(&mut d, "l[5].k", "1").unwrap_err().contains("has 2 elements"));
        assert!(set(&mut d, "a.b", "1").unwrap_err().contains("has no field `b`"));
        // An element by its name.
        let mut d = doc("S(p: [P(name: \"web\", r: 1), P(name: \"api\", r: 2)])");
        assert_eq!(set(&mut d, "p[api].r", "5").unwrap(), 1);
        assert!(d.text().contains("P(name: \"api\", r: 5)"), "{}", d.text());
        let e = set(&mut d, "p[db].r", "5").unwrap_err();
        assert_eq!(e, "p has no element named \"db\" (names: web, api)");
    }

    #[test]
    fn locations_survive_edits() {
        let mut d = doc("S(\n  a: 1,\n  b: 2,\n)");
        set(&mut d, "a", "123456").unwrap();
        let b = d.text().find("b: 2").unwrap();
        assert_eq!(d.locate(b), Location { source: Source::File("s.ron".into()), line: 3, column: 3 });
        let v = d.text().find("123456").unwrap();
        let l = d.locate(v + 2);
        assert_eq!(l.source, Source::Set("a=123456".into()));
        assert_eq!(l.column, 5);
    }

    #[test]
    fn fields_from_another_source() {
        let topo = "Topology(\n  directors: [D()],\n  servers: [],\n)";
        let mut d = doc("S(servers: [Mine])");
        let tree = cst::parse(topo).unwrap();
        for f in ["directors", "servers"] {
            let v = tree.field(f).unwrap().value.span.clone();
            d.add_field_from(f, v, Source::Topology("t".into()), topo).unwrap();
        }
        let t = d.text().to_owned();
        assert_eq!(t, "S(directors: [D()], servers: [Mine])");
        let at = t.find("D()").unwrap();
        let l = d.locate(at);
        assert_eq!((l.source, l.line, l.column), (Source::Topology("t".into()), 2, 15));
    }

    #[test]
    fn line_col_and_back() {
        let t = "ab\ncdé\nf";
        for off in [0, 1, 3, 5, 8] {
            let (l, c) = line_col(t, off);
            assert_eq!(offset_of(t, l, c), off);
        }
    }
}
