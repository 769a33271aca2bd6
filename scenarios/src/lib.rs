//! The scenario file format (RON) and its validation into a typed model.
//!
//! A scenario is loaded in steps, each of which can fail with a message that names the
//! file, line and column:
//! 1. the text is parsed into a syntax tree ([`cst`]) that remembers every value's span;
//! 2. `--set topology=...` overrides are applied, then a named topology's fields that
//!    the scenario does not write are copied in as text, then the other `--set`
//!    overrides ([`doc::Doc`] maps every byte back to the file, the argument or the
//!    built-in topology it came from);
//! 3. the text is deserialised into [`format::Scenario`] (unknown fields rejected);
//! 4. names are resolved and the result checked ([`build`]), giving sim-core's
//!    `ClusterConfig`.
//!
//! Sweeps and capacity plans are the same steps with more overrides.
//!
//! `library/` beside this crate holds the scenario library, compiled in by `build.rs`
//! ([`library`]: `lvsim run quickstart` needs no source tree).
//!
//! # Invariants
//! - Unknown fields are rejected; every error names file, line, column and what was
//!   expected.
//! - Never runs a simulation and never writes files: it reads the scenario and the
//!   files it references (traces, ipvsadm-save files), and validates.

pub mod budget;
pub mod build;
pub mod cst;
pub mod doc;
pub mod expect;
pub mod files;
pub mod format;
pub mod library;
pub mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use sim_core::model::ClusterConfig;
use topologies::Topology;

pub use doc::{Location, Source};
pub use files::FileAccess;
pub use format::Scenario;

/// The most points a sweep may have (the product of its axes' value counts).
pub const MAX_SWEEP_POINTS: usize = 10_000;

/// A scenario that cannot be used: where (when it can be told), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Where in which source.
    pub location: Option<Location>,
    /// What is wrong or what was expected.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    fn at(location: Location, message: impl Into<String>) -> Error {
        Error { location: Some(location), message: message.into() }
    }

    fn bare(message: impl Into<String>) -> Error {
        Error { location: None, message: message.into() }
    }
}

/// A scenario ready to run.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Its name (`name`, or the file's stem).
    pub name: String,
    /// The file as given (for messages and reports).
    pub file: String,
    /// Directory that relative paths in the scenario are relative to.
    pub base: PathBuf,
    /// Where the files it names may be (its directory, `--allow-path` directories).
    pub files: FileAccess,
    /// The edited text it was built from.
    pub doc: doc::Doc,
    /// The `--set` arguments applied, as given.
    pub overrides: Vec<String>,
    /// The scenario as written (after overrides).
    pub scenario: Scenario,
    /// Its topology with `count` groups written out (what `export` writes).
    pub topology: Topology,
    /// What the simulator runs.
    pub cluster: ClusterConfig,
    /// What the run will do that its author should be told of
    /// ([`ClusterConfig::warnings`]: real servers a hashing scheduler's table leaves
    /// idle), each as `file:line:column: path (service): message`, located at the
    /// service's `scheduler` (or the nearest field written).
    pub warnings: Vec<String>,
}

/// Reads and builds a scenario file with `--set PATH=VALUE` overrides. The files it names
/// must be in its directory.
pub fn load(path: &Path, overrides: &[String]) -> Result<Loaded, Error> {
    load_within(path, overrides, None)
}

/// [`load`], refusing early (before the servers are written out) a topology whose
/// servers alone exceed the budget's memory; [`budget::check`] checks the whole run.
pub fn load_within(
    path: &Path,
    overrides: &[String],
    budget: Option<&budget::Budget>,
) -> Result<Loaded, Error> {
    load_allowing(path, overrides, &[], budget)
}

/// [`load_within`], the files the scenario names allowed in `allowed` directories too
/// (`--allow-path`).
pub fn load_allowing(
    path: &Path,
    overrides: &[String],
    allowed: &[PathBuf],
    budget: Option<&budget::Budget>,
) -> Result<Loaded, Error> {
    let text = files::read_capped(path, "a scenario", files::MAX_SCENARIO_BYTES)
        .map_err(|e| Error::bare(format!("{}: cannot read the scenario: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let files = FileAccess::new(&base, allowed);
    load_doc(&path.display().to_string(), &stem, &text, &files, overrides, budget)
}

/// Builds a scenario from text: `file` names it in messages, `stem` is its default name,
/// `base` is where its relative paths start.
pub fn load_str(
    file: &str,
    stem: &str,
    text: &str,
    base: &Path,
    overrides: &[String],
) -> Result<Loaded, Error> {
    load_str_within(file, stem, text, base, overrides, None)
}

/// [`load_str`] with [`load_within`]'s early check.
pub fn load_str_within(
    file: &str,
    stem: &str,
    text: &str,
    base: &Path,
    overrides: &[String],
    budget: Option<&budget::Budget>,
) -> Result<Loaded, Error> {
    load_doc(file, stem, text, &FileAccess::new(base, &[]), overrides, budget)
}

fn load_doc(
    file: &str,
    stem: &str,
    text: &str,
    files: &FileAccess,
    overrides: &[String],
    budget: Option<&budget::Budget>,
) -> Result<Loaded, Error> {
    let mut d = doc::Doc::new(Source::File(file.to_owned()), text.to_owned());
    d.tree().map_err(|(l, m)| Error::at(l, m))?;
    let sets: Vec<(Vec<doc::Step>, &str, &String)> = overrides
        .iter()
        .map(|arg| {
            let (path, value) = arg.split_once('=').ok_or_else(|| {
                Error::bare(format!("--set {arg}: expected PATH=VALUE, such as clients[0].arrival.rate=500"))
            })?;
            let steps = doc::parse_path(path.trim()).map_err(|m| Error::bare(format!("--set {arg}: {m}")))?;
            Ok((steps, value, arg))
        })
        .collect::<Result<_, Error>>()?;
    let is_topology = |s: &[doc::Step]| s == [doc::Step::Field("topology".into())];
    for (steps, value, arg) in sets.iter().filter(|s| is_topology(&s.0)) {
        apply_set(&mut d, steps, value, arg)?;
    }
    inject_topology(&mut d)?;
    for (steps, value, arg) in sets.iter().filter(|s| !is_topology(&s.0)) {
        apply_set(&mut d, steps, value, arg)?;
    }
    let mut loaded = build::build(d, file, stem, files, budget)?;
    loaded.overrides = overrides.to_vec();
    Ok(loaded)
}

fn apply_set(d: &mut doc::Doc, steps: &[doc::Step], value: &str, arg: &str) -> Result<(), Error> {
    let value_at = arg.len() - value.len();
    let v = value.trim_start();
    let lead = value.len() - v.len();
    let v = v.trim_end();
    crate::cst::parse(v).map_err(|e| {
        Error::at(
            Location { source: Source::Set(arg.to_owned()), line: 1, column: value_at + lead + e.offset + 1 },
            format!("the value is not RON: {}", e.message),
        )
    })?;
    d.set(steps, v, Source::Set(arg.to_owned()), arg, value_at + lead)
        .map_err(|m| Error::bare(format!("--set {arg}: {m}")))?;
    Ok(())
}

/// Copies a named topology's `directors`, `servers`, `backends` and `ha` into the
/// scenario where it does not write them.
fn inject_topology(d: &mut doc::Doc) -> Result<(), Error> {
    let tree = d.tree().map_err(|(l, m)| Error::at(l, m))?;
    let Some(field) = tree.field("topology") else { return Ok(()) };
    let mut value = &field.value;
    if let cst::Kind::Tuple { name: Some(n), items } = &value.kind
        && n == "Some"
        && items.len() == 1
    {
        value = &items[0];
    }
    let at = d.locate(value.span.start);
    let cst::Kind::Atom(text) = &value.kind else {
        return Err(Error::at(
            at,
            format!("expected the name of a topology as a string, found {}", value.describe()),
        ));
    };
    if text == "None" {
        return Ok(());
    }
    let Some(name) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Err(Error::at(at, format!("expected the name of a topology as a string, found {text}")));
    };
    let Some(named) = topologies::named(name) else {
        let known: Vec<_> = topologies::NAMED.iter().map(|n| n.name).collect();
        return Err(Error::at(
            at,
            format!("no built-in topology {name:?} (there are: {})", known.join(", ")),
        ));
    };
    let ttree = cst::parse(named.source)
        .map_err(|e| Error::bare(format!("built-in topology {name:?} is malformed: {}", e.message)))?;
    for f in ["ha", "backends", "servers", "directors"] {
        if let Some(tf) = ttree.field(f) {
            d.add_field_from(f, tf.value.span.clone(), Source::Topology(name.to_owned()), named.source)
                .map_err(Error::bare)?;
        }
    }
    Ok(())
}

impl Loaded {
    /// The same scenario with each path set to the text of a value written in its own
    /// document (a sweep axis's value), which keeps that value's file location for errors.
    fn with_spans(&self, sets: &[(String, std::ops::Range<usize>)]) -> Result<Loaded, Error> {
        let mut d = self.doc.clone();
        let mut args = self.overrides.clone();
        for (path, span) in sets {
            let value = self.doc.text()[span.clone()].to_owned();
            let steps = doc::parse_path(path).map_err(|m| Error::bare(format!("sweep axis {path}: {m}")))?;
            let (source, src_text, src_offset) = self.doc.origin(span.start);
            d.set(&steps, &value, source, &src_text, src_offset)
                .map_err(|m| Error::bare(format!("sweep axis {path}: {m}")))?;
            args.push(format!("{path}={value}"));
        }
        let mut l = build::build(d, &self.file, &self.name, &self.files, None)?;
        l.overrides = args;
        // How the simulator runs it is not part of the text.
        l.cluster.exchange = self.cluster.exchange;
        Ok(l)
    }

    /// The same scenario with more overrides (`PATH=VALUE`), rebuilt.
    pub fn with(&self, sets: &[(String, String)]) -> Result<Loaded, Error> {
        let mut d = self.doc.clone();
        let mut args = self.overrides.clone();
        for (path, value) in sets {
            let arg = format!("{path}={value}");
            let steps = doc::parse_path(path).map_err(|m| Error::bare(format!("{arg}: {m}")))?;
            apply_set(&mut d, &steps, value, &arg)?;
            args.push(arg);
        }
        let stem = self.name.clone();
        let mut l = build::build(d, &self.file, &stem, &self.files, None)?;
        l.overrides = args;
        l.cluster.exchange = self.cluster.exchange;
        Ok(l)
    }

    /// The sweep's points: every combination of the axes' values (the last axis varies
    /// fastest), each as `(values, scenario)`. Without axes, the scenario itself.
    pub fn sweep_points(&self) -> Result<Vec<(Vec<String>, Loaded)>, Error> {
        self.sweep_points_within(None)
    }

    /// [`Loaded::sweep_points`], refusing first (before any point is built) a sweep whose
    /// points, all held at once, exceed the budget's memory: each holds its topology and
    /// configuration ([`budget::BYTES_PER_POINT_SERVER`] a real server) and its text.
    /// (`lvsim sweep` holds none of them: it builds each point when it runs it, with
    /// [`Loaded::sweep`] and [`Sweep::point`].)
    pub fn sweep_points_within(
        &self,
        budget: Option<&budget::Budget>,
    ) -> Result<Vec<(Vec<String>, Loaded)>, Error> {
        let sweep = self.sweep()?;
        if sweep.axes.is_empty() {
            return Ok(vec![(Vec::new(), self.clone())]);
        }
        let total = sweep.len();
        let servers = self.cluster.servers.len();
        let held = total as f64
            * (servers as f64 * budget::BYTES_PER_POINT_SERVER + 2.0 * self.doc.text().len() as f64);
        if let Some(b) = budget
            && held > b.max_memory
        {
            return Err(Error {
                location: sweep.at.clone(),
                message: format!(
                    "sweep: {total} points of {servers} real servers hold about {} at once, above the budget \
                     of {}: fewer points (or servers), or raise --max-memory",
                    budget::show_bytes(held),
                    budget::show_bytes(b.max_memory)
                ),
            });
        }
        (0..total).map(|k| sweep.point(self, k)).collect()
    }

    /// The sweep's axes, checked (every axis has values; at most [`MAX_SWEEP_POINTS`]
    /// points), without building any point: [`Sweep::point`] builds one at a time, so that
    /// a sweep holds only the points it is running.
    pub fn sweep(&self) -> Result<Sweep, Error> {
        let tree = self.doc.tree().map_err(|(l, m)| Error::at(l, m))?;
        let mut axes: Vec<(String, Vec<std::ops::Range<usize>>)> = Vec::new();
        if let Some(sweep) = tree.field("sweep") {
            for axis in sweep.value.items().unwrap_or_default() {
                let field = axis.field("field").map(|f| &f.value);
                let values = axis.field("values").and_then(|f| f.value.items());
                let (Some(field), Some(values)) = (field, values) else { continue };
                let cst::Kind::Atom(path) = &field.kind else { continue };
                let path = path.trim_matches('"').to_owned();
                axes.push((path, values.iter().map(|v| v.span.clone()).collect()));
            }
        }
        if let Some((p, _)) = axes.iter().find(|(_, v)| v.is_empty()) {
            return Err(Error::bare(format!("sweep axis {p}: no values")));
        }
        let total = axes.iter().map(|(_, v)| v.len()).fold(1usize, usize::saturating_mul);
        let at = tree.field("sweep").map(|f| self.doc.locate(f.value.span.start));
        if total > MAX_SWEEP_POINTS {
            return Err(Error {
                location: at,
                message: format!(
                    "sweep: {total} points (the product of the axes' values); at most {MAX_SWEEP_POINTS}"
                ),
            });
        }
        Ok(Sweep { axes, at })
    }

    /// The swept fields, in axis order.
    pub fn sweep_axes(&self) -> Vec<String> {
        self.scenario.sweep.iter().map(|a| a.field.clone()).collect()
    }

    /// One cluster configuration per replication (seeds `seed`, `seed + 1`, ...).
    pub fn replications(&self) -> Vec<ClusterConfig> {
        (0..self.scenario.replications.max(1)).map(|i| self.replication(i)).collect()
    }

    /// Replication `i`'s configuration (seed `seed + i`): one of [`Loaded::replications`],
    /// built alone.
    pub fn replication(&self, i: u32) -> ClusterConfig {
        ClusterConfig { seed: self.cluster.seed.wrapping_add(u64::from(i)), ..self.cluster.clone() }
    }
}

/// A sweep's axes, from [`Loaded::sweep`]: its points are built one at a time.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Per axis: its path and where each value is written in the scenario's document.
    axes: Vec<(String, Vec<std::ops::Range<usize>>)>,
    /// Where the `sweep` field is written.
    at: Option<Location>,
}

impl Sweep {
    /// The number of points: the product of the axes' value counts (1 without axes).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|(_, v)| v.len()).product()
    }

    /// Whether the sweep has no point (never: an axis without values is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `k` (`k < len()`; the last axis varies fastest) of `base`, the scenario that
    /// [`Loaded::sweep`] was called on: the axes' values as written (RON text) and the
    /// scenario with them set. Without axes, the scenario itself.
    pub fn point(&self, base: &Loaded, k: usize) -> Result<(Vec<String>, Loaded), Error> {
        if self.axes.is_empty() {
            return Ok((Vec::new(), base.clone()));
        }
        let spans = self.spans(k);
        let values: Vec<String> = spans.iter().map(|s| base.doc.text()[s.clone()].to_owned()).collect();
        let sets: Vec<(String, std::ops::Range<usize>)> =
            self.axes.iter().zip(&spans).map(|((p, _), s)| (p.clone(), s.clone())).collect();
        let shown: Vec<(String, String)> =
            self.axes.iter().zip(&values).map(|((p, _), v)| (p.clone(), v.clone())).collect();
        let l = base.with_spans(&sets).map_err(|e| Error {
            message: format!("sweep point {}: {}", show_point(&shown), e.message),
            ..e
        })?;
        Ok((values, l))
    }
}

impl Sweep {
    /// Point `k`'s values as written (RON text), without building it (what
    /// [`Sweep::point`] returns first).
    pub fn values(&self, base: &Loaded, k: usize) -> Vec<String> {
        self.spans(k).iter().map(|s| base.doc.text()[s.clone()].to_owned()).collect()
    }

    /// Where point `k`'s value of each axis is written.
    fn spans(&self, k: usize) -> Vec<std::ops::Range<usize>> {
        let mut rem = k;
        let mut spans = vec![0..0; self.axes.len()];
        for (i, (_, vs)) in self.axes.iter().enumerate().rev() {
            spans[i] = vs[rem % vs.len()].clone();
            rem /= vs.len();
        }
        spans
    }
}

fn show_point(sets: &[(String, String)]) -> String {
    sets.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(", ")
}
