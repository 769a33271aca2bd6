//! Mutations of scenario text, deterministic from a seed.
//!
//! A mutant is a library scenario with one to three edits, each made on the RON syntax
//! tree (`scenarios::cst`, which keeps every value's span) and re-parsed before the next:
//! a number set to an extreme (0, negative, 1e-300, 1e308, `inf`, `NaN`, u64::MAX, ...)
//! or scaled by a power of ten; a list item deleted or duplicated (up to 100 times) or the
//! list emptied; an enum variant, identifier or string swapped for another the library
//! uses; a field deleted, or one the library writes elsewhere inserted.

use std::ops::Range;

use scenarios::cst::{self, Kind, Node};

/// SplitMix64: a small portable generator, so that input `i` of seed `s` is the same
/// mutant on every machine and in every version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for input `index` of campaign `seed`.
    pub fn new(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ 0x5851_f42d_4c95_7f2d);
        r.0 = r.0.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Extremes a number is set to (RON text). Integers and floats both: a float in an
/// integer field is a syntax error the scenario loader must report, not a crash.
const EXTREMES: &[&str] = &[
    "0",
    "0.0",
    "-0.0",
    "-1",
    "-1.0",
    "1",
    "1e-300",
    "5e-324",
    "1e-9",
    "1e-6",
    "1e300",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "inf",
    "-inf",
    "NaN",
    "1.9e10",
    "1e12",
    "1e9",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "2147483648",
    "10000000",
    "100000000",
    "9223372036854775807",
    "18446744073709551615",
    "-9223372036854775808",
];

/// A library scenario: where it came from and its text.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The file (for findings).
    pub file: String,
    /// Its text.
    pub text: String,
}

/// What mutations draw from: the library's scenarios, and the fields, variant names,
/// identifiers and strings they use.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// The scenarios mutated.
    pub seeds: Vec<Seed>,
    /// `(struct name, field text)`: fields that can be inserted into a struct of that name.
    donors: Vec<(String, String, String)>,
    /// Names of named structs and tuples (enum variants).
    variants: Vec<String>,
    /// Bare identifiers (unit variants, booleans).
    idents: Vec<String>,
    /// String literals (names of servers, directors, topologies).
    strings: Vec<String>,
}

/// A mutated scenario: the seed it came from, its text and what was changed.
#[derive(Clone, Debug)]
pub struct Mutant {
    /// The library file it came from.
    pub source: String,
    /// The mutated text.
    pub text: String,
    /// One line per edit: `PATH: what`.
    pub edits: Vec<String>,
}

impl Corpus {
    /// A corpus of scenario texts (each must parse as RON).
    pub fn new(seeds: Vec<Seed>) -> Corpus {
        let mut c = Corpus { seeds: Vec::new(), ..Corpus::default() };
        for s in seeds {
            let Ok(tree) = cst::parse(&s.text) else { continue };
            c.harvest(&s.text, &tree);
            c.seeds.push(s);
        }
        // Fields the library leaves at their defaults, so that mutations reach them too.
        for (f, v) in [("replications", "3"), ("drain_ipvs", "true"), ("sample_interval_s", "0.5")] {
            c.donors.push(("Scenario".into(), f.into(), format!("{f}: {v}")));
        }
        for v in [&mut c.variants, &mut c.idents, &mut c.strings] {
            v.sort();
            v.dedup();
        }
        c
    }

    fn harvest(&mut self, text: &str, n: &Node) {
        match &n.kind {
            Kind::Struct { name, fields, .. } => {
                if let Some(name) = name {
                    self.variants.push(name.clone());
                    for f in fields {
                        let field = &text[f.name_span.start..f.value.span.end];
                        self.donors.push((name.clone(), f.name.clone(), field.to_owned()));
                    }
                }
                fields.iter().for_each(|f| self.harvest(text, &f.value));
            }
            Kind::Tuple { name, items } => {
                self.variants.extend(name.clone());
                items.iter().for_each(|i| self.harvest(text, i));
            }
            Kind::List(items) => items.iter().for_each(|i| self.harvest(text, i)),
            Kind::Map(kv) => kv.iter().for_each(|(k, v)| {
                self.harvest(text, k);
                self.harvest(text, v);
            }),
            Kind::Atom(a) if a.starts_with('"') => self.strings.push(a.clone()),
            Kind::Atom(a) if a.starts_with(|c: char| c.is_ascii_alphabetic()) => self.idents.push(a.clone()),
            Kind::Atom(_) => {}
        }
    }

    /// Input `index` of campaign `seed`: a library scenario with one to three edits.
    pub fn mutant(&self, seed: u64, index: u64) -> Mutant {
        assert!(!self.seeds.is_empty(), "an empty corpus");
        let mut rng = Rng::new(seed, index);
        let s = rng.pick(&self.seeds);
        let mut m = Mutant { source: s.file.clone(), text: s.text.clone(), edits: Vec::new() };
        for _ in 0..1 + rng.below(3) {
            let Ok(tree) = cst::parse(&m.text) else { break };
            let mut targets = Vec::new();
            collect(&tree, "", &mut targets);
            if let Some((span, with, edit)) = self.edit(&mut rng, &m.text, &targets)
                && m.text[span.clone()] != with
            {
                m.text.replace_range(span, &with);
                m.edits.push(edit);
            }
        }
        m
    }

    /// One edit: the span replaced, its replacement and a description.
    fn edit(&self, rng: &mut Rng, text: &str, targets: &[Target]) -> Option<(Range<usize>, String, String)> {
        // Numbers most often: they are what bounds are about.
        let want = match rng.below(20) {
            0..=9 => Want::Number,
            10..=13 => Want::List,
            14..=15 => Want::Variant,
            16 => Want::Atom,
            17 => Want::Insert,
            _ => Want::Delete,
        };
        let fit: Vec<&Target> = targets.iter().filter(|t| t.wants(want)).collect();
        if fit.is_empty() {
            return None;
        }
        let t = *rng.pick(&fit);
        match &t.what {
            What::Number => {
                let with = number(rng, &text[t.span.clone()]);
                Some((
                    t.span.clone(),
                    with.clone(),
                    format!("{}: {} -> {with}", t.path, &text[t.span.clone()]),
                ))
            }
            What::List(items) => list_edit(rng, text, t, items),
            What::Variant(name) => {
                let with = rng.pick(&self.variants).clone();
                let span = t.span.start..t.span.start + name.len();
                Some((span, with.clone(), format!("{}: variant {name} -> {with}", t.path)))
            }
            What::Atom(a) => {
                let pool = if a.starts_with('"') { &self.strings } else { &self.idents };
                let with = rng.pick(pool).clone();
                Some((t.span.clone(), with.clone(), format!("{}: {a} -> {with}", t.path)))
            }
            What::Struct { name, fields, after_last } => {
                let donors: Vec<_> =
                    self.donors.iter().filter(|(n, f, _)| n == name && !fields.contains(f)).collect();
                if donors.is_empty() {
                    return None;
                }
                let (_, f, field) = *rng.pick(&donors);
                let with = if fields.is_empty() { field.clone() } else { format!(", {field}") };
                Some((*after_last..*after_last, with, format!("{}: inserted {f}", t.path)))
            }
            What::Field(whole) => {
                let end = comma_after(text, whole.end);
                Some((whole.start..end, String::new(), format!("{}: deleted", t.path)))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Number,
    List,
    Variant,
    Atom,
    Insert,
    Delete,
}

/// Something an edit can change.
struct Target {
    path: String,
    span: Range<usize>,
    what: What,
}

enum What {
    Number,
    /// A list and its items' spans.
    List(Vec<Range<usize>>),
    /// A named struct or tuple and its name.
    Variant(String),
    /// A string or identifier.
    Atom(String),
    /// A named struct: its name, its fields and where a new one goes.
    Struct {
        name: String,
        fields: Vec<String>,
        after_last: usize,
    },
    /// A field: its span from name to value.
    Field(Range<usize>),
}

impl Target {
    fn wants(&self, w: Want) -> bool {
        matches!(
            (&self.what, w),
            (What::Number, Want::Number)
                | (What::List(_), Want::List)
                | (What::Variant(_), Want::Variant)
                | (What::Atom(_), Want::Atom)
                | (What::Struct { .. }, Want::Insert)
                | (What::Field(_), Want::Delete)
        )
    }
}

fn collect(n: &Node, path: &str, out: &mut Vec<Target>) {
    let at = |what| Target { path: path.to_owned(), span: n.span.clone(), what };
    match &n.kind {
        Kind::Struct { name, fields, close } => {
            if let Some(name) = name {
                out.push(at(What::Variant(name.clone())));
                let after_last = fields.last().map_or(*close, |f| f.value.span.end);
                let names = fields.iter().map(|f| f.name.clone()).collect();
                out.push(at(What::Struct { name: name.clone(), fields: names, after_last }));
            }
            for f in fields {
                let p = if path.is_empty() { f.name.clone() } else { format!("{path}.{}", f.name) };
                let whole = f.name_span.start..f.value.span.end;
                out.push(Target { path: p.clone(), span: whole.clone(), what: What::Field(whole) });
                collect(&f.value, &p, out);
            }
        }
        Kind::Tuple { name, items } => {
            if let Some(name) = name {
                out.push(at(What::Variant(name.clone())));
            }
            let transparent = name.as_deref() == Some("Some") || items.len() == 1;
            for (i, item) in items.iter().enumerate() {
                let p = if transparent { path.to_owned() } else { format!("{path}.{i}") };
                collect(item, &p, out);
            }
        }
        Kind::List(items) => {
            out.push(at(What::List(items.iter().map(|i| i.span.clone()).collect())));
            for (i, item) in items.iter().enumerate() {
                collect(item, &format!("{path}[{i}]"), out);
            }
        }
        Kind::Map(kv) => kv.iter().for_each(|(_, v)| collect(v, path, out)),
        Kind::Atom(a) if a.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') => {
            out.push(at(What::Number));
        }
        Kind::Atom(a) if a.starts_with('"') || a.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            out.push(at(What::Atom(a.clone())));
        }
        Kind::Atom(_) => {}
    }
}

/// A number's replacement: an extreme, or the number scaled by a power of ten.
fn number(rng: &mut Rng, old: &str) -> String {
    if rng.below(3) > 0 {
        return (*rng.pick(EXTREMES)).to_owned();
    }
    let k = *rng.pick(&[-12i32, -9, -6, -3, -1, 1, 2, 3, 4, 6, 9, 12]);
    let is_int = !old.contains(['.', 'e', 'E']);
    match old.parse::<f64>() {
        Ok(x) if is_int && k > 0 => {
            match old.parse::<u64>().ok().and_then(|v| v.checked_mul(10u64.pow(k as u32))) {
                Some(v) => v.to_string(),
                None => format!("{:e}", x * 10f64.powi(k)),
            }
        }
        Ok(x) if is_int => ((x * 10f64.powi(k)).floor() as i64).to_string(),
        Ok(x) => format!("{:e}", x * 10f64.powi(k)),
        Err(_) => (*rng.pick(EXTREMES)).to_owned(),
    }
}

/// Deletes, duplicates (1, 9 or 99 more copies) or empties a list.
fn list_edit(
    rng: &mut Rng,
    text: &str,
    t: &Target,
    items: &[Range<usize>],
) -> Option<(Range<usize>, String, String)> {
    if items.is_empty() {
        return None;
    }
    let i = rng.below(items.len());
    let item = &items[i];
    match rng.below(5) {
        0 | 1 => {
            let end = comma_after(text, item.end);
            Some((item.start..end, String::new(), format!("{}[{i}]: deleted", t.path)))
        }
        2 | 3 => {
            let n = *rng.pick(&[1usize, 1, 1, 9, 99]);
            let copy = format!(", {}", &text[item.clone()]).repeat(n);
            Some((item.end..item.end, copy, format!("{}[{i}]: {n} more copies", t.path)))
        }
        _ => Some((t.span.start + 1..t.span.end - 1, String::new(), format!("{}: emptied", t.path))),
    }
}

/// The end of a value's trailing comma (and the blanks before it), or `end` if none.
fn comma_after(text: &str, end: usize) -> usize {
    let rest = &text[end..];
    let blanks = rest.len() - rest.trim_start().len();
    if rest[blanks..].starts_with(',') { end + blanks + 1 } else { end }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "Scenario(\n  duration_s: 10.0, // c\n  clients: [Clients(arrival: Poisson(rate: 5.0)), Clients(arrival: Constant(rate: 1.0))],\n  events: [],\n  flag: true,\n)";

    fn corpus() -> Corpus {
        Corpus::new(vec![Seed { file: "s.ron".into(), text: S.into() }])
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_mutant_and_others_differ() {
        let c = corpus();
        let a = c.mutant(7, 3);
        assert_eq!(a.text, c.mutant(7, 3).text);
        let distinct: std::collections::BTreeSet<String> = (0..50).map(|i| c.mutant(7, i).text).collect();
        assert!(distinct.len() > 25, "only {} distinct mutants of 50", distinct.len());
    }

    #[test]
    fn every_mutant_is_still_ron_and_says_what_changed() {
        let c = corpus();
        let mut edited = 0;
        for i in 0..300 {
            let m = c.mutant(1, i);
            cst::parse(&m.text)
                .unwrap_or_else(|e| panic!("mutant {i} {:?} is not RON: {e:?}\n{}", m.edits, m.text));
            if !m.edits.is_empty() {
                edited += 1;
                assert_ne!(m.text, S, "mutant {i}: {:?} changed nothing", m.edits);
            }
        }
        assert!(edited > 250, "{edited} of 300 mutants were edited");
    }

    #[test]
    fn edits_reach_numbers_lists_variants_and_fields() {
        let c = corpus();
        let all: Vec<String> = (0..400).flat_map(|i| c.mutant(2, i).edits).collect();
        for needle in ["clients[1].arrival.rate: 1.0 ->", "more copies", "deleted", "variant", "emptied"] {
            assert!(all.iter().any(|e| e.contains(needle)), "no edit {needle:?} in {all:?}");
        }
    }

    #[test]
    fn an_integer_is_scaled_to_an_integer() {
        let mut rng = Rng::new(0, 0);
        let mut scaled = 0;
        for _ in 0..300 {
            let n = number(&mut rng, "40");
            if !EXTREMES.contains(&n.as_str()) {
                assert!(n.parse::<i64>().is_ok(), "40 scaled to {n}");
                scaled += 1;
            }
        }
        assert!(scaled > 50, "{scaled} of 300 were scaled");
    }
}
