//! Load modules: each measures one resource and turns it into a capacity in [0, 1]
//! (1 = idle, 0 = saturated); a service combines its modules' capacities.
//!
//! | module        | reads                                   | capacity                        |
//! |---------------|-----------------------------------------|---------------------------------|
//! | `cpuload`     | `/proc/stat` first `cpu ` line, deltas  | 1 - busy                        |
//! | `loadavg`     | `/proc/loadavg`, `cpuN` lines of stat   | 1 - min(1, load1 / cpus)        |
//! | `memory`      | `/proc/meminfo`                         | MemAvailable / MemTotal         |
//! | `psi`         | `/proc/pressure/cpu`                    | 1 - some avgW / 100             |
//! | `connections` | `/proc/net/{tcp,tcp6}` or `{udp,udp6}`  | 1 - min(1, n / max)             |
//! | `command`     | `/bin/sh -c PATH`, first word of stdout | value / scale, clamped          |
//! | `file`        | a file's first word                     | value / scale, clamped          |
//! | `prequal`     | port's sockets + a probe, or a file     | 1 - min(1, rif / max)           |
//!
//! With `metrics=yes`, `command` and `file` also take the lines after the first as
//! `name value` metrics (e.g. `qps` and `eps` for the master's gRPC WRR law). `prequal`
//! reports `rif` and `latency_ms` for the master's Prequal law.
//!
//! One file per module; this one holds the shared pieces: settings checks, reading a
//! procfs file, the `scale` rule and how a service combines its modules.
//!
//! Everything here blocks (file reads, a child process); the daemon calls
//! [`ServiceLoad::sample`] from `spawn_blocking`.

mod command;
mod connections;
mod cpuload;
mod file;
mod loadavg;
mod memory;
mod prequal;
mod psi;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use feedbackd_proto::conf::{Combine, ConfError, ModuleConf, ModuleKind, ServiceConf};
use feedbackd_proto::wire;

/// Where the modules read the system's state. Tests point it at a fake tree.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The procfs root (default `/proc`).
    pub proc_root: PathBuf,
}

impl Default for Sources {
    fn default() -> Self {
        Sources { proc_root: PathBuf::from("/proc") }
    }
}

/// One measurement of one module.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Spare capacity in [0, 1].
    pub capacity: f64,
    /// What was measured, for the master's status view: `(name, value)`, e.g.
    /// `("cpu_busy", 0.42)`. Names are short snake_case.
    pub metrics: Vec<(String, f64)>,
}

/// A module that failed to measure: the service reports no fresh capacity this round.
#[derive(Debug, thiserror::Error)]
#[error("{module}: {message}")]
pub struct LoadError {
    /// The module's name.
    pub module: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A configured load module with its state (e.g. the previous `/proc/stat` counters).
#[derive(Debug)]
pub struct Module {
    inner: Inner,
}

/// The modules, a closed set.
#[derive(Debug)]
enum Inner {
    Cpuload(cpuload::Cpuload),
    Loadavg(loadavg::Loadavg),
    Memory(memory::Memory),
    Psi(psi::Psi),
    Connections(connections::Connections),
    Command(command::Command),
    File(file::File),
    Prequal(prequal::Prequal),
}

/// The name `module =` gives a kind.
fn kind_name(kind: ModuleKind) -> &'static str {
    match kind {
        ModuleKind::Cpuload => "cpuload",
        ModuleKind::Loadavg => "loadavg",
        ModuleKind::Memory => "memory",
        ModuleKind::Psi => "psi",
        ModuleKind::Connections => "connections",
        ModuleKind::Command => "command",
        ModuleKind::File => "file",
        ModuleKind::Prequal => "prequal",
    }
}

impl Module {
    /// Builds a module from its configuration line, checking its settings (an unknown
    /// setting or a bad value is an error naming the line).
    pub fn from_conf(
        conf: &ModuleConf,
        service: &ServiceConf,
        sources: &Sources,
    ) -> Result<Module, ConfError> {
        let root = sources.proc_root.as_path();
        let inner = match conf.kind {
            ModuleKind::Cpuload => {
                Settings::check(conf, &[])?;
                Inner::Cpuload(cpuload::Cpuload::new(root))
            }
            ModuleKind::Loadavg => {
                Inner::Loadavg(loadavg::Loadavg::from_conf(&Settings::check(conf, &["cpus"])?, root)?)
            }
            ModuleKind::Memory => {
                Settings::check(conf, &[])?;
                Inner::Memory(memory::Memory::new(root))
            }
            ModuleKind::Psi => Inner::Psi(psi::Psi::from_conf(&Settings::check(conf, &["window"])?, root)?),
            ModuleKind::Connections => Inner::Connections(connections::Connections::from_conf(
                &Settings::check(conf, &["max"])?,
                service,
                root,
            )?),
            ModuleKind::Command => Inner::Command(command::Command::from_conf(&Settings::check(
                conf,
                &["path", "timeout_ms", "scale", "metrics"],
            )?)?),
            ModuleKind::File => {
                Inner::File(file::File::from_conf(&Settings::check(conf, &["path", "scale", "metrics"])?)?)
            }
            ModuleKind::Prequal => Inner::Prequal(prequal::Prequal::from_conf(conf, service, root)?),
        };
        Ok(Module { inner })
    }

    /// The module's name as configured (`cpuload`, `loadavg`, ...).
    pub fn name(&self) -> &'static str {
        kind_name(match self.inner {
            Inner::Cpuload(_) => ModuleKind::Cpuload,
            Inner::Loadavg(_) => ModuleKind::Loadavg,
            Inner::Memory(_) => ModuleKind::Memory,
            Inner::Psi(_) => ModuleKind::Psi,
            Inner::Connections(_) => ModuleKind::Connections,
            Inner::Command(_) => ModuleKind::Command,
            Inner::File(_) => ModuleKind::File,
            Inner::Prequal(_) => ModuleKind::Prequal,
        })
    }

    /// Measures now. Blocking (may read files or run a command with a timeout).
    pub fn sample(&mut self) -> Result<Reading, LoadError> {
        let result = match &mut self.inner {
            Inner::Cpuload(m) => m.sample(),
            Inner::Loadavg(m) => m.sample(),
            Inner::Memory(m) => m.sample(),
            Inner::Psi(m) => m.sample(),
            Inner::Connections(m) => m.sample(),
            Inner::Command(m) => m.sample(),
            Inner::File(m) => m.sample(),
            Inner::Prequal(m) => m.sample(),
        };
        match result {
            Ok(reading) => Ok(Reading { capacity: clamp_unit(reading.capacity), ..reading }),
            Err(message) => Err(LoadError { module: self.name(), message }),
        }
    }
}

/// A service's modules and how they combine.
#[derive(Debug)]
pub struct ServiceLoad {
    /// The modules, in configuration order (cpuload alone when none is configured).
    pub modules: Vec<Module>,
    /// How their capacities combine.
    pub combine: Combine,
    /// The service's number (1-based) in an agent with several services, `None` in an
    /// agent with one: service N's [`PER_SERVICE_METRICS`] are reported as `NAME_N`.
    pub number: Option<usize>,
}

/// The metrics the master reads per service (`feedbackd_proto::master::report_signal`:
/// service N takes `NAME_N`, else `NAME`), numbered in an agent with several services. The
/// gRPC law's `qps` and `eps` come from a command or a file that writes the numbered
/// names itself, and are left as written.
pub const PER_SERVICE_METRICS: [&str; 2] = ["rif", "latency_ms"];

impl ServiceLoad {
    /// Builds the modules of one configured service.
    pub fn from_conf(service: &ServiceConf, sources: &Sources) -> Result<ServiceLoad, ConfError> {
        let default = [ModuleConf { kind: ModuleKind::Cpuload, settings: Vec::new(), line: service.line }];
        let confs = if service.modules.is_empty() { &default[..] } else { &service.modules[..] };
        if let Some(second) = confs.iter().filter(|c| c.kind == ModuleKind::Prequal).nth(1) {
            return Err(ConfError {
                line: second.line,
                message: format!(
                    "module prequal: service {:?} has one already: one probe of a service's requests \
                     in flight and latency is what the master's law reads",
                    service.name
                ),
            });
        }
        let modules =
            confs.iter().map(|conf| Module::from_conf(conf, service, sources)).collect::<Result<_, _>>()?;
        Ok(ServiceLoad { modules, combine: service.combine, number: None })
    }

    /// Builds every service's modules of an agent; with several services, each is numbered
    /// (see [`ServiceLoad::number`]).
    pub fn for_agent(services: &[ServiceConf], sources: &Sources) -> Result<Vec<ServiceLoad>, ConfError> {
        let several = services.len() > 1;
        services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let load = ServiceLoad::from_conf(s, sources)?;
                Ok(ServiceLoad { number: several.then_some(i + 1), ..load })
            })
            .collect()
    }

    /// Samples every module and combines them. Errors from a module are returned (the
    /// capacity is then `None`) alongside the metrics of the modules that worked.
    ///
    /// Metric names are the modules' own; the second module of a kind suffixes its
    /// metrics `_2`, the third `_3`, and so on.
    pub fn sample(&mut self) -> (Option<f64>, Vec<(String, f64)>, Vec<LoadError>) {
        let names: Vec<&'static str> = self.modules.iter().map(Module::name).collect();
        let mut capacities = Vec::with_capacity(self.modules.len());
        let mut metrics = Vec::new();
        let mut errors = Vec::new();
        for (i, module) in self.modules.iter_mut().enumerate() {
            let nth = names[..i].iter().filter(|&&n| n == names[i]).count() + 1;
            match module.sample() {
                Ok(reading) => {
                    capacities.push(reading.capacity);
                    metrics.extend(reading.metrics.into_iter().map(|(name, value)| {
                        match (nth, self.number) {
                            (_, Some(n)) if PER_SERVICE_METRICS.contains(&name.as_str()) => {
                                (format!("{name}_{n}"), value)
                            }
                            (1, _) => (name, value),
                            _ => (format!("{name}_{nth}"), value),
                        }
                    }));
                }
                Err(e) => errors.push(e),
            }
        }
        let capacity = if errors.is_empty() { combine(self.combine, &capacities) } else { None };
        (capacity, metrics, errors)
    }
}

/// Combines capacities in [0, 1]; `None` when there are none.
fn combine(how: Combine, capacities: &[f64]) -> Option<f64> {
    let first = *capacities.first()?;
    let combined = match how {
        Combine::Min => capacities.iter().copied().fold(first, f64::min),
        Combine::Mean => capacities.iter().sum::<f64>() / capacities.len() as f64,
        Combine::Product => capacities.iter().product(),
    };
    Some(clamp_unit(combined))
}

/// Clamps to [0, 1]; NaN (a bug upstream, but never worth a weight) becomes 0.
fn clamp_unit(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// A module line's settings, checked against the keys the module takes.
struct Settings<'a> {
    conf: &'a ModuleConf,
}

impl<'a> Settings<'a> {
    /// Fails on a setting the module does not take, naming the ones it does.
    fn check(conf: &'a ModuleConf, known: &[&str]) -> Result<Settings<'a>, ConfError> {
        let settings = Settings { conf };
        if let Some((key, _)) = conf.settings.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            let takes = match known {
                [] => "no settings".to_owned(),
                _ => known.join(", "),
            };
            return Err(settings.error(format!("unknown setting `{key}`; it takes {takes}")));
        }
        Ok(settings)
    }

    /// The value of `key`, if written.
    fn get(&self, key: &str) -> Option<&'a str> {
        self.conf.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `key`'s value as a whole number in `range`, or `default`.
    fn whole(&self, key: &str, range: std::ops::RangeInclusive<u64>, default: u64) -> Result<u64, ConfError> {
        let Some(text) = self.get(key) else { return Ok(default) };
        match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(self.error(format!(
                "{key}={text:?} is not a whole number between {} and {}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// `scale=` (default 100): what a value of full spare capacity reads.
    fn scale(&self) -> Result<f64, ConfError> {
        let Some(text) = self.get("scale") else { return Ok(100.0) };
        match text.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
            _ => Err(self.error(format!(
                "scale={text:?} is not a positive number (100: the value is a percentage, \
                 1: a fraction)"
            ))),
        }
    }

    /// `metrics=yes|no` (default no): whether the lines after the first are metrics.
    fn metrics(&self) -> Result<bool, ConfError> {
        match self.get("metrics") {
            None | Some("no") => Ok(false),
            Some("yes") => Ok(true),
            Some(text) => Err(self.error(format!("metrics={text:?} is neither yes nor no"))),
        }
    }

    /// `path=`, required.
    fn path(&self) -> Result<&'a str, ConfError> {
        match self.get("path") {
            Some(path) if !path.is_empty() => Ok(path),
            _ => Err(self.error("needs `path=...`".to_owned())),
        }
    }

    /// An error on the module's line.
    fn error(&self, message: String) -> ConfError {
        ConfError {
            line: self.conf.line,
            message: format!("module {}: {message}", kind_name(self.conf.kind)),
        }
    }
}

/// Reads a procfs file, the error naming it.
fn read_proc(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The first word of a command's output or a file as a number, scaled into a capacity:
/// `(value, value / scale clamped to [0, 1])`. `what` names the source for the error.
fn scaled(text: &str, scale: f64, what: &str) -> Result<(f64, f64), String> {
    let Some(word) = text.split_whitespace().next() else {
        return Err(format!("{what} is empty, expected a number"));
    };
    match word.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((value, clamp_unit(value / scale))),
        _ => Err(format!("{what} starts with {:?}, not a number", shorten(word))),
    }
}

/// With `metrics=yes`: the lines after the first of a command's output or a file, each
/// `name value` (a metric name `[a-z0-9_]{1,32}`, a finite number); blank lines are
/// skipped. `own` is the module's own metric, which no line may repeat. `what` names the
/// source for the error.
fn line_metrics(text: &str, own: &str, what: &str) -> Result<Vec<(String, f64)>, String> {
    metric_lines(text, 1, own, what)
}

/// [`line_metrics`] from line `skip + 1` on.
fn metric_lines(text: &str, skip: usize, own: &str, what: &str) -> Result<Vec<(String, f64)>, String> {
    let mut metrics: Vec<(String, f64)> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(skip) {
        let at = || format!("{what}, line {}", i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, value) = match words[..] {
            [] => continue,
            [name, value] => (name, value),
            _ => return Err(format!("{}: expected `name value`, got {:?}", at(), shorten(line.trim()))),
        };
        if !wire::valid_metric_name(name) {
            let name = shorten(name);
            return Err(format!("{}: {name:?} is not a metric name (a-z, 0-9, _; at most 32)", at()));
        }
        if name == own || metrics.iter().any(|(n, _)| n == name) {
            return Err(format!("{}: metric {name:?} given twice", at()));
        }
        if metrics.len() + 1 >= wire::MAX_METRICS {
            return Err(format!("{}: more than {} metrics", at(), wire::MAX_METRICS - 1));
        }
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => metrics.push((name.to_owned(), v)),
            _ => return Err(format!("{}: {name} {:?} is not a number", at(), shorten(value))),
        }
    }
    Ok(metrics)
}

/// At most 60 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
