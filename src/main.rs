//! `lvsim`: the command line of the LVS cluster simulator and scheduling testbed.
//!
//! Exit codes: 0 success; 1 the run failed (a command refused, an I/O error); 2 bad
//! usage or a malformed input file (the message names the file, line and column).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lvsim::replay;

/// Linux Virtual Server (LVS/IPVS) cluster simulator and feedback-scheduling testbed.
#[derive(Parser)]
#[command(name = "lvsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tools that speak kernel IPVS: what-if replays of ipvsadm configurations.
    #[command(subcommand)]
    Ipvs(IpvsCommand),
}

#[derive(Subcommand)]
enum IpvsCommand {
    /// Replay ipvsadm-save lines and connection events; print the real server IPVS
    /// would choose for every new connection (or `none`).
    ///
    /// The file holds ipvsadm lines (`-A/-E/-D -t|-u|-f ... -s SCHED -b FLAGS -p [T]`,
    /// `-a/-e/-d ... -r RIP[:PORT] -g|-i|-m -w W -x U -y L`, `--set tcp tcpfin udp`) and
    /// events:
    ///
    ///   connect -t VIP:PORT from CLIENT[:PORT] [x N]   new connection(s)
    ///
    ///   close N...     connections finish (FIN): active -> inactive, expire later
    ///
    ///   reset N...     connections are reset (RST): inactive, expire after 10 s
    ///
    ///   advance 120s   virtual time passes; entries expire
    ///
    ///   list           print the table as `ipvsadm -L -n` does
    ///
    /// Output: one line per new connection, `#N CLIENT:PORT PROTO VIP:PORT -> RIP:PORT`
    /// (or `-> none`). See docs/replay.md for the full format.
    Replay {
        /// Replay file, or `-` for standard input.
        file: PathBuf,
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Seed of the generator the twos scheduler draws from.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run against this machine's kernel IPVS instead of the model: builds throwaway
        /// network namespaces (director, clients, real servers), runs ipvsadm in the
        /// director's and opens real TCP/UDP connections. Needs root, ip_vs, ipvsadm
        /// and iproute2; used by the conformance tests inside a VM.
        #[arg(long)]
        kernel: bool,
    },
}

/// A malformed input file (exit code 2); the message names file, line and column.
#[derive(Debug)]
struct InputError(String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<InputError>().is_some() { 2 } else { 1 };
            eprintln!("lvsim: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ipvs(IpvsCommand::Replay { file, json, seed, kernel }) => {
            let name =
                if file.as_os_str() == "-" { "<stdin>".to_owned() } else { file.display().to_string() };
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
            } else {
                text = std::fs::read_to_string(&file).with_context(|| format!("reading {name}"))?;
            }
            let script = replay::parse(&text).map_err(|e| InputError(format!("{name}:{e}")))?;
            let format = if json { replay::Format::Json } else { replay::Format::Text };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let result = if kernel {
                run_kernel(&script, format, &mut out)
            } else {
                let mut model = replay::model::Model::new(seed);
                replay::run(&script, &mut model, format, &mut out)
            };
            out.flush()?;
            result.with_context(|| format!("replaying {name}"))
        }
    }
}

#[cfg(target_os = "linux")]
fn run_kernel(
    script: &replay::Script,
    format: replay::Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut k = replay::kernel::Kernel::new(script)?;
    replay::run(script, &mut k, format, out)
}

#[cfg(not(target_os = "linux"))]
fn run_kernel(_: &replay::Script, _: replay::Format, _: &mut dyn std::io::Write) -> anyhow::Result<()> {
    anyhow::bail!("--kernel needs Linux IPVS")
}
