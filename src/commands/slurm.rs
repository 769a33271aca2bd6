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

/// `<shards dir>/slurm/jobs.json`: what was submitted, for `lvsim status` and for the
/// next `--slurm --submit` (which submits only the shards not done).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Jobs {
    /// Shards of the split (`N`).
    pub shards: u32,
    /// Where the merge job writes the report.
    pub report_dir: String,
    /// Every submission, oldest first.
    pub submissions: Vec<Submission>,
}

/// One `--slurm --submit`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Submission {
    /// The array job's id.
    pub array_job: u64,
    /// The merge job's id (it depends on the array with `afterany`).
    pub merge_job: u64,
    /// The shards (`K`) the array runs.
    pub tasks: Vec<u32>,
    /// When [Unix seconds].
    pub at: u64,
}

/// Writes the scripts of `work`'s split into `<shards dir>/slurm/` and, with `--submit`,
/// submits them (see [`SlurmOpts`]).
pub fn campaign(c: &super::Common, opts: &SlurmOpts, work: &super::shard::Work) -> anyhow::Result<()> {
    let _ = (c, opts, work);
    Err(super::InputError("--slurm is not built yet".into()).into())
}
