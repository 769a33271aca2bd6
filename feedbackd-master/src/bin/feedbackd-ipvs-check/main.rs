//! `feedbackd-ipvs-check`: a test and benchmark tool for feedbackd-master's IPVS backends,
//! run as root against a kernel with IPVS (the project's VM, `tests/vm/lvsim-vm`). It is
//! not part of feedbackd.
//!
//! - `probe`: drives the netlink, ipvsadm and dry-run backends through the same sequence
//!   (list, add, edit, resets, refusals, batches, delete) on services made with `ipvsadm`,
//!   and checks each step three ways: the backend's own listing, the other backend's, and
//!   `ipvsadm -L -n` text. Prints `PASS name` / `FAIL name: why` lines and
//!   `SUMMARY pass=N fail=M`. Then virtual services added, edited and removed through each
//!   backend (checked against `ipvsadm -S -n`), and the counters and rates of real LVS-NAT
//!   traffic between two network namespaces, read through netlink and ipvsadm. It needs an empty IPVS table and refuses to run outside the
//!   VM (`LVSIM_VM=1`) unless given `--force`.
//! - `bench --updates N`: weight updates per second through netlink and through ipvsadm on
//!   a service of its own (`TCP 192.0.2.1:80`, removed afterwards).
//!
//! Exit status: 0 all checks passed, 1 a check failed, 2 the tool could not run.

mod bench;
mod probe;
mod report;
mod services;
mod traffic;

use clap::{Parser, Subcommand};

/// Checks and benchmarks feedbackd-master's IPVS backends against the kernel.
#[derive(Parser)]
#[command(name = "feedbackd-ipvs-check")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check every backend against the kernel (needs an empty IPVS table).
    Probe {
        /// Run outside the VM (LVSIM_VM unset): the probe adds and removes IPVS entries.
        #[arg(long)]
        force: bool,
    },
    /// Weight updates per second, netlink against ipvsadm.
    Bench {
        /// SET_DEST edits through each backend.
        #[arg(long, default_value_t = 1000)]
        updates: u32,
        /// Edits through ipvsadm (default: as many as --updates).
        #[arg(long)]
        ipvsadm_updates: Option<u32>,
        /// Real servers in the benchmark's service.
        #[arg(long, default_value_t = 10)]
        dests: u8,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Probe { force } => probe::run(force),
        Cmd::Bench { updates, ipvsadm_updates, dests } => {
            bench::run(updates, ipvsadm_updates.unwrap_or(updates), dests).map(|()| true)
        }
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("feedbackd-ipvs-check: {e:#}");
            std::process::exit(2);
        }
    }
}
