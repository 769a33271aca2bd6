//! Load modules: each measures one resource and turns it into a capacity in [0, 1]
//! (1 = idle, 0 = saturated); a service combines its modules' capacities.
//!
//! CONTRACT STUB: the public items below are fixed; the bodies are to be written.

use std::path::PathBuf;

use feedbackd_proto::conf::{Combine, ModuleConf, ServiceConf};

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
    _private: (),
}

impl Module {
    /// Builds a module from its configuration line, checking its settings (an unknown
    /// setting or a bad value is an error naming the line).
    pub fn from_conf(
        conf: &ModuleConf,
        service: &ServiceConf,
        sources: &Sources,
    ) -> Result<Module, feedbackd_proto::conf::ConfError> {
        let _ = (conf, service, sources);
        unimplemented!("contract stub")
    }

    /// The module's name as configured (`cpuload`, `loadavg`, ...).
    pub fn name(&self) -> &'static str {
        unimplemented!("contract stub")
    }

    /// Measures now. Blocking (may read files or run a command with a timeout).
    pub fn sample(&mut self) -> Result<Reading, LoadError> {
        unimplemented!("contract stub")
    }
}

/// A service's modules and how they combine.
#[derive(Debug)]
pub struct ServiceLoad {
    /// The modules, in configuration order (cpuload alone when none is configured).
    pub modules: Vec<Module>,
    /// How their capacities combine.
    pub combine: Combine,
}

impl ServiceLoad {
    /// Builds the modules of one configured service.
    pub fn from_conf(
        service: &ServiceConf,
        sources: &Sources,
    ) -> Result<ServiceLoad, feedbackd_proto::conf::ConfError> {
        let _ = (service, sources);
        unimplemented!("contract stub")
    }

    /// Samples every module and combines them. Errors from a module are returned (the
    /// capacity is then `None`) alongside the metrics of the modules that worked.
    pub fn sample(&mut self) -> (Option<f64>, Vec<(String, f64)>, Vec<LoadError>) {
        unimplemented!("contract stub")
    }
}
