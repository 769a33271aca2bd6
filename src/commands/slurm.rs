//! `--slurm`: a split's shards as a Slurm job array, and a dependent job that merges them.

use std::path::PathBuf;

/// `--slurm` and its resources (each default comes from the scenario's size).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOpts {
    /// `--submit`: run `sbatch` too (else only write the scripts).
    pub submit: bool,
    /// `--shards N`: array tasks [default: from the number of units].
    pub shards: Option<u32>,
    /// `--cpus-per-task N` (each task runs its units on that many threads).
    pub cpus_per_task: Option<u32>,
    /// `--mem SIZE` per task, as Slurm reads it (`4G`, `512M`).
    pub mem: Option<String>,
    /// `--time LIMIT` per task, as Slurm reads it (`30`, `1:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// `--partition NAME`.
    pub partition: Option<String>,
    /// `--account NAME`.
    pub account: Option<String>,
    /// `--lvsim PATH`: the lvsim the nodes run [default: this one's absolute path].
    pub lvsim: Option<PathBuf>,
    /// `--sbatch-arg ARG`: more `#SBATCH` options, as given. Repeatable.
    pub sbatch_args: Vec<String>,
}
