//! `lvsim`: the command line of the LVS cluster simulator and scheduling testbed.
//!
//! Exit codes: 0 success; 1 the run failed (a command refused, an I/O error); 2 bad
//! usage or a malformed input file (the message names the file, line and column).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use lvsim::commands::{self, Common};
use lvsim::replay;

/// Linux Virtual Server (LVS/IPVS) cluster simulator and feedback-scheduling testbed.
///
/// Write a scenario (a RON file: a topology, virtual services, clients, events), run it,
/// open the report. `lvsim list` shows the scenario library, the built-in topologies and
/// the schedulers; docs/scenarios.md describes the format.
///
/// Exit codes: 0 success; 1 the run failed (I/O error, a refused command); 2 bad usage
/// or a malformed or invalid scenario (the message names file, line and column); 3 the
/// run finished but an `expect` check in the scenario did not hold.
#[derive(Parser)]
#[command(
    name = "lvsim",
    version,
    about,
    long_about,
    after_help = "Quick start: lvsim run quickstart (then open lvsim-out/quickstart/report.html); \
                  lvsim list shows the scenario library"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of every subcommand that loads a scenario.
#[derive(Args, Clone, Debug)]
struct ScenarioArgs {
    /// The scenario: a RON file, or the name of a library scenario (`quickstart`,
    /// `ha/vrrp-failover`; `lvsim list scenarios`). A path that exists wins over a name.
    #[arg(value_name = "SCENARIO", value_hint = clap::ValueHint::FilePath)]
    file: PathBuf,
    /// Override a field before running: `--set clients[0].arrival.rate=800`,
    /// `--set 'directors[0].services[*].scheduler=rr'`, `--set topology="tutorial-dr"`.
    /// The value is RON, as in the file; a missing field is added. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Allow the files the scenario names (import_ipvsadm, Trace(file:)) in DIR too, not
    /// only in the scenario's own directory. Repeatable.
    #[arg(long = "allow-path", value_name = "DIR")]
    allow_paths: Vec<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    /// Print machine-readable JSON on standard output instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bars (they are only drawn on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

/// Options of the subcommands that write a report directory and run in parallel.
#[derive(Args, Clone, Debug)]
struct OutputArgs {
    /// Report directory [default: lvsim-out/NAME/, NAME-sweep/, NAME-plan/; with --set,
    /// NAME@LABEL, e.g. lvsim-out/quickstart@scheduler=wlc/]. An earlier report there is
    /// replaced, saying so on stderr; a non-empty directory that is not a report is refused.
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Simulations run at once [default: every core].
    #[arg(short, long, value_name = "N", default_value_t = 0)]
    jobs: usize,
    /// How a connection's messages are simulated: `fast` passes a message at once where
    /// every hop is ideal and keeps link and fixed-delay events in FIFO lanes;
    /// `per-message` walks every message stage by stage through one event heap (the
    /// reference). Same results bit for bit, fast is faster (docs/simulator.md).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = ExchangeArg::Fast)]
    exchange: ExchangeArg,
}

/// Options that split a command's runs into shards (docs/cluster.md).
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Splitting the work (docs/cluster.md)")]
struct SplitArgs {
    /// Run only shard K of N: the runs j with j mod N = K-1 (of the sweep's points x
    /// replications, the run's replications, or the plan's grid of trials), written to
    /// DIR/shard-K-of-N.json; `lvsim merge DIR` then writes the report the whole command
    /// would have. K counts from 1.
    #[arg(long, value_name = "K/N", conflicts_with = "slurm")]
    shard: Option<commands::shard::ShardSpec>,
    /// Where shard files go [default: the report directory with `.shards` added, e.g.
    /// lvsim-out/NAME-sweep.shards/].
    #[arg(long, value_name = "DIR")]
    shards_dir: Option<PathBuf>,
    /// Write a Slurm job array that runs the shards and a job that merges them when they
    /// end (into the shards directory's slurm/); with --submit, submit both with sbatch.
    /// Running it again with --submit submits only the shards not yet done.
    #[arg(long)]
    slurm: bool,
    /// With --slurm: submit the scripts with sbatch (else only write them).
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// With --slurm: array tasks [default: one per run, at most 1000].
    #[arg(long, value_name = "N", requires = "slurm")]
    shards: Option<u32>,
    /// With --slurm: CPUs per task; each task runs its runs on that many threads [default: 1].
    #[arg(long, value_name = "N", requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// With --slurm: memory per task, as sbatch reads it (`4G`) [default: from the
    /// scenario's estimated memory per run].
    #[arg(long, value_name = "SIZE", requires = "slurm")]
    mem: Option<String>,
    /// With --slurm: time limit per task, as sbatch reads it (`30`, `2:00:00`) [default:
    /// from the scenario's estimated events per task].
    #[arg(long, value_name = "LIMIT", requires = "slurm")]
    time: Option<String>,
    /// With --slurm: the partition.
    #[arg(long, value_name = "NAME", requires = "slurm")]
    partition: Option<String>,
    /// With --slurm: the account charged.
    #[arg(long, value_name = "NAME", requires = "slurm")]
    account: Option<String>,
    /// With --slurm: the lvsim binary the nodes run [default: this one's absolute path,
    /// which a shared file system makes the same on every node].
    #[arg(long, value_name = "PATH", requires = "slurm")]
    lvsim: Option<PathBuf>,
    /// With --slurm: another sbatch option for both jobs, written as an #SBATCH line
    /// (`--sbatch-arg=--qos=short`). Repeatable.
    #[arg(long, value_name = "ARG", requires = "slurm", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
}

impl SplitArgs {
    fn split(self) -> commands::Split {
        use commands::Split;
        if let Some(spec) = self.shard {
            return Split::Shard { spec, dir: self.shards_dir };
        }
        if !self.slurm {
            return Split::Local;
        }
        let opts = commands::slurm::SlurmOpts {
            submit: self.submit,
            shards: self.shards,
            cpus_per_task: self.cpus_per_task,
            mem: self.mem,
            time: self.time,
            partition: self.partition,
            account: self.account,
            lvsim: self.lvsim,
            sbatch_args: self.sbatch_arg,
        };
        Split::Slurm { opts, dir: self.shards_dir }
    }
}

/// `--exchange`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExchangeArg {
    Fast,
    PerMessage,
}

impl From<ExchangeArg> for sim_core::model::Exchange {
    fn from(e: ExchangeArg) -> Self {
        match e {
            ExchangeArg::Fast => Self::Fast,
            ExchangeArg::PerMessage => Self::PerMessage,
        }
    }
}

/// The run budget that `validate` checks and `run`, `sweep` and `plan` check before they
/// start (docs/scenarios.md, "Bounds and the run budget").
#[derive(Args, Clone, Debug, Default)]
struct BudgetArgs {
    /// Refuse a command whose runs together are estimated to simulate more than N events
    /// [default: 2e10].
    #[arg(long, value_name = "N", value_parser = parse_events)]
    max_events: Option<f64>,
    /// Refuse a command whose runs at once are estimated to hold more than SIZE of
    /// memory (`8G`, `512M`) [default: half the machine's memory, else 8G].
    #[arg(long, value_name = "SIZE", value_parser = scenarios::budget::parse_size)]
    max_memory: Option<f64>,
}

fn parse_events(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number of events > 0 (such as 2e10)")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario and write its report: summary.json, CSV time series and a
    /// self-contained report.html with charts; print a summary with ipvsadm-style tables.
    ///
    /// With `replications: N` in the scenario (or --replications), runs seeds SEED..SEED+N-1
    /// in parallel and adds 95% confidence intervals (replications.json). `expect` checks
    /// in the scenario are evaluated on the first seed's results: a failed one exits 3.
    ///
    /// Warnings about the configuration (real servers an sh, dh or mh service's lookup
    /// table never names, so they stay idle, as in the kernel) are printed with the summary
    /// and kept in summary.json's `warnings` and on the page.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        budget: BudgetArgs,
        #[command(flatten)]
        split: SplitArgs,
        /// Master seed (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Replications (overrides the scenario's).
        #[arg(long, value_name = "N")]
        replications: Option<u32>,
    },
    /// Check scenario files without running them: syntax, unknown fields, names, segments,
    /// weights, distributions, sweep points, the bounds of every value and the run budget
    /// (--max-events, --max-memory). Prints one line per file, then its warnings (such as
    /// mh real servers past the 4093 slots of its table, which stay idle); exits 2 if any
    /// is invalid (a warning does not make a file invalid).
    Validate {
        /// Scenario files, or names of library scenarios (as for `run`).
        #[arg(required = true, value_name = "SCENARIO", value_hint = clap::ValueHint::FilePath)]
        files: Vec<PathBuf>,
        /// Override a field (as for `run`), in every file.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Allow the files a scenario names in DIR too (as for `run`). Repeatable.
        #[arg(long = "allow-path", value_name = "DIR")]
        allow_paths: Vec<PathBuf>,
        /// Print only errors.
        #[arg(short, long)]
        quiet: bool,
        /// Print a JSON array of results.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// Run every point of the scenario's `sweep` (the product of its axes' values, each
    /// point replicated) in parallel on all cores; write a comparison report (table and
    /// charts of latency and throughput against the axes).
    ///
    /// Every point is checked before the first run; each is built when it runs and written
    /// to sweep.json as soon as it and the points before it are done, so a sweep holds
    /// about `--jobs` runs at once however many points it has. The files are the same
    /// whatever `--jobs` (but for each run's wall_s).
    Sweep {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        budget: BudgetArgs,
        #[command(flatten)]
        split: SplitArgs,
    },
    /// Combine the shards of a split (`--shard K/N`, `--slurm`) into the report the whole
    /// command writes, byte for byte but for wall times.
    ///
    /// Reads every shard-K-of-N.json in the directories (shards may be gathered from
    /// several machines into several directories), reloads the scenario they name and
    /// checks: the same scenario (its fingerprint: text after overrides and the
    /// configuration it builds), the same lvsim version, one split into N, each shard once,
    /// none missing, no run failed. A refusal names the shard files, the missing shards, or
    /// the failed points and their errors (exit 2).
    Merge {
        /// Directories holding shard files.
        #[arg(required = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        dirs: Vec<PathBuf>,
        /// Report directory [default: the first DIR without its `.shards` suffix, else the
        /// command's default, lvsim-out/NAME-sweep/].
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
        /// Print machine-readable JSON on standard output instead of text.
        #[arg(long)]
        json: bool,
    },
    /// How far a split is: shards done, failed (with the points and errors), running,
    /// pending or missing, from the shard files in DIR and, for a --slurm split, squeue and
    /// sacct (or scontrol when accounting is off).
    Status {
        /// A shards directory (or the report directory beside it).
        #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        dir: PathBuf,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Capacity planning: the cheapest cluster, and the scheduler, that keep a service
    /// level objective at the scenario's load, with every trial as evidence.
    ///
    /// The scenario's `plan` section sets the search: one `count` group (`servers: "web",
    /// min, max`) or several groups sized together, each unit at a cost (`sizes:
    /// [Servers(name: "app", min: 1, max: 8, cost: 1.0), BackendCores(name: "db", min: 2,
    /// max: 16, cost: 0.25)]`). One group is bisected; two or more are searched by a
    /// staircase walk over the monotone frontier (never the full grid), assuming more of
    /// anything never hurts; one search per scheduler, in parallel.
    ///
    /// Every trial runs 5 replications by default; a check holds when its 95% interval
    /// lies within the bound ("unclear" counts as not met). Among the cheapest meeting
    /// configurations the answer is the one that is significantly better (Welch's t test,
    /// 95%), or, if they are indistinguishable, the simpler scheduler (rr < wrr < lc < wlc
    /// < sed < nq < ...), said in words. SLO metrics are summary.json paths, the
    /// breakdowns by name included (`services[web].latency_ms.p99`,
    /// `populations[mobile].loss_fraction`, `backends[db].utilization`).
    /// The report: lvsim-out/NAME-plan/{plan.json, plan.csv, report.html, summary.txt}.
    /// These options override the section.
    ///
    /// Split (--shard K/N, --slurm), a plan runs its full grid at once (every scheduler x
    /// size x replication, at most 100000 runs, all within the budget) and `lvsim merge`
    /// replays the search over the stored runs: the same report (docs/cluster.md).
    Plan {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        budget: BudgetArgs,
        #[command(flatten)]
        split: SplitArgs,
        /// The objective, `METRIC<=VALUE` or `METRIC>=VALUE` on a summary.json value
        /// (`latency_ms.p99<=200`, `throughput_cps>=900`). Repeatable: all must hold.
        #[arg(long, value_name = "METRIC<=VALUE")]
        slo: Vec<String>,
        /// The server entry (a `count` group) whose count is searched (the single-group
        /// form; replaces the section's `sizes`).
        #[arg(long, value_name = "NAME")]
        servers: Option<String>,
        /// Smallest count tried (single-group form; for `sizes`: --set plan.sizes[I].min=N).
        #[arg(long)]
        min: Option<u32>,
        /// Largest count tried (single-group form; for `sizes`: --set plan.sizes[I].max=N).
        #[arg(long)]
        max: Option<u32>,
        /// Schedulers compared, comma-separated (`rr,wlc,sed`).
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        schedulers: Option<Vec<String>>,
        /// Runs (seeds) per trial [default: the section's `replications`, else 5].
        #[arg(long, value_name = "N")]
        replications: Option<u32>,
    },
    /// Deployment files from a scenario's topology: per director an idempotent ipvsadm
    /// script (ipvsadm.sh, or ipvsadm-DIRECTOR.sh with several directors; mode 0755) and
    /// the ipvsadm-restore rules file `ipvsadm -S -n` prints once it has run
    /// (ipvsadm.rules, ipvsadm-DIRECTOR.rules), keepalived.conf (keepalived-DIRECTOR.conf per director of a VRRP
    /// group), ldirectord.cf (with ldirectord checks or a heartbeat group), heartbeat's
    /// ha.cf and haresources, piranha's lvs.cf (with a pulse group or nanny checks), and a
    /// feedbackd-agent.conf per real server, written to a directory; or one of them on
    /// standard output.
    Export {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Directory [default: lvsim-out/NAME-export/].
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print one file instead: `ipvsadm`, `ipvsadm:DIRECTOR`, `ipvsadm-rules`,
        /// `ipvsadm-rules:DIRECTOR`, `keepalived`, `keepalived:DIRECTOR`, `ldirectord`,
        /// `ldirectord:DIRECTOR`, `ha.cf`, `haresources`, `lvs.cf` or `agent:SERVER`.
        #[arg(long, value_name = "WHAT")]
        stdout: Option<String>,
        /// The system the files are for: `debian12` (Debian 12: keepalived 2.2.7,
        /// ldirectord 4.12.0, heartbeat 3.0.6, ipvsadm 1.31; what CI checks every file
        /// with) or `debian11`. Each file's first lines say what it assumed.
        #[arg(long, value_name = "SYSTEM", default_value = "debian12")]
        target: topologies::export::Target,
    },
    /// A scenario from an existing configuration: keepalived.conf (one per director of a
    /// VRRP pair), ldirectord.cf (with heartbeat's ha.cf and haresources), ipvsadm rules
    /// (`ipvsadm -S -n` output, a rules file, a script of ipvsadm commands) or piranha's
    /// lvs.cf.
    ///
    /// The scenario holds the directors, virtual services, real servers (weights,
    /// forwarding), health checks and fail-over settings the files describe; what they say
    /// that it cannot hold is listed, by file and line, on standard error and in the
    /// scenario's comments. The files say nothing of the load: the scenario has a
    /// placeholder client population to replace with yours. A directory is read for the
    /// files of one tool (give --format if it holds several, as an `lvsim export`
    /// directory does).
    Import {
        /// Files, or a directory, of one tool.
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Write the scenario to FILE instead of standard output (refused if FILE exists,
        /// unless --force).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace --out's file if it exists.
        #[arg(long)]
        force: bool,
        /// The files' format, instead of telling it from their names and first lines:
        /// keepalived, ldirectord, ha.cf, haresources, ipvsadm or lvs.cf.
        #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
        format: Option<topologies::import::Format>,
        /// Do not list what could not be mapped.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the scenario library, the built-in topologies and the IPVS schedulers.
    List {
        /// `scenarios`, `topologies` or `schedulers` [default: all three].
        #[arg(value_parser = ["all", "scenarios", "topologies", "schedulers"])]
        what: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Two runs (or two sweeps) side by side: every headline metric, the difference and
    /// whether it is significant (Welch's t test at 95% over replications); prints a
    /// table and writes a report directory.
    ///
    /// A and B are directories of `lvsim run` (summary.json, and replications.json when the
    /// run had several seeds) or of `lvsim sweep` (sweep.json; points are matched by their
    /// axis values, the unmatched ones listed). Per metric it prints A, B, B - A, the 95%
    /// interval of B - A and a verdict: "significant", "not significant", or "cannot tell
    /// (one run each: use --replications)" (one run's mean response time is tested with its
    /// batch means). Writes compare.json, compare.csv, report.html (a dot plot per metric)
    /// and summary.txt. Exit 2 when A or B is not a run or sweep report, or they differ in
    /// kind. docs/reports.md, "Comparing runs".
    ///
    /// Example: lvsim run quickstart.ron --replications 5; lvsim run quickstart.ron
    /// --replications 5 --set 'directors[0].services[0].scheduler=wlc'; lvsim compare
    /// lvsim-out/quickstart lvsim-out/quickstart@scheduler=wlc
    Compare {
        /// The first report directory (of `lvsim run` or `lvsim sweep`).
        a: PathBuf,
        /// The second report directory.
        b: PathBuf,
        /// Report directory [default: lvsim-out/compare-A-vs-B/, A and B the directories'
        /// names]; an earlier report there is replaced (said on stderr), other files refused.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a report directory's terminal summary again, without rerunning.
    ///
    /// Prints DIR/summary.txt: byte for byte what `run`, `sweep`, `plan` or `compare`
    /// printed when it wrote DIR. Exit 2 when DIR is not a report or has no summary.txt.
    Show {
        /// A report directory (of `run`, `sweep`, `plan` or `compare`).
        dir: PathBuf,
        /// Print its summary.json (or sweep.json, plan.json) instead.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell
    /// (docs/install.md says where each shell looks for it).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (lvsim.1 and one per subcommand) to a directory, or print lvsim.1.
    Man {
        /// Directory to write the pages to [default: print lvsim.1 on standard output].
        #[arg(short, long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        out: Option<PathBuf>,
    },
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
    ///   syn -t VIP:PORT from SRC[:PORT] [x N]   lone SYNs nobody answers (a flood)
    ///
    ///   send N...      the client sends data: `-> RIP:PORT` (served), `reset`, `lost`
    ///
    ///   sysctl NAME [VALUE]   set or print net.ipv4.vs.NAME (sloppy_tcp, conn_reuse_mode,
    ///                  expire_nodest_conn, amemthresh, am_droprate, drop_entry,
    ///                  drop_packet, secure_tcp, ...)
    ///
    ///   advance 120s   virtual time passes; entries expire
    ///
    ///   list [OPTS]    print the table as `ipvsadm -L -n [OPTS]` does; OPTS: --stats,
    ///                  --rate, --thresholds, --persistent-conn, --tun-info, -c
    ///                  (connection entries), --exact, --nosort
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`lvsim list --json | head -1`) is the reader's choice, not an error.
        Err(e) if commands::pipe::closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!, which panics (exit 101) when standard error is a closed pipe
            // too (`lvsim validate ... 2>&1 | head -1`): the exit code says it all.
            let _ = writeln!(std::io::stderr(), "lvsim: error: {e:#}");
            ExitCode::from(commands::exit_code(&e))
        }
    }
}

fn common(s: ScenarioArgs, out: Option<PathBuf>, jobs: usize, b: BudgetArgs) -> Common {
    Common {
        file: s.file,
        sets: s.sets,
        allow_paths: s.allow_paths,
        out,
        quiet: s.quiet,
        json: s.json,
        progress: !s.no_progress,
        jobs,
        max_events: b.max_events,
        max_memory: b.max_memory,
        exchange: sim_core::model::Exchange::default(),
        split: commands::Split::Local,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { scenario, output, budget, split, seed, replications } => {
            let mut c = common(scenario, output.out, output.jobs, budget);
            c.split = split.split();
            c.exchange = output.exchange.into();
            if let Some(s) = seed {
                c.sets.push(format!("seed={s}"));
            }
            if let Some(n) = replications {
                c.sets.push(format!("replications={n}"));
            }
            commands::run::run(&c)
        }
        Command::Validate { files, sets, allow_paths, quiet, json, budget } => {
            let c = Common {
                sets,
                allow_paths,
                quiet,
                json,
                max_events: budget.max_events,
                max_memory: budget.max_memory,
                ..Common::default()
            };
            commands::run::validate(&c, &files)
        }
        Command::Sweep { scenario, output, budget, split } => {
            let (exchange, split) = (output.exchange.into(), split.split());
            commands::sweep::sweep(&Common {
                exchange,
                split,
                ..common(scenario, output.out, output.jobs, budget)
            })
        }
        Command::Plan {
            scenario,
            output,
            budget,
            split,
            slo,
            servers,
            min,
            max,
            schedulers,
            replications,
        } => {
            let o = commands::plan::PlanOpts { slo, servers, min, max, schedulers, replications };
            let (exchange, split) = (output.exchange.into(), split.split());
            commands::plan::plan(
                &Common { exchange, split, ..common(scenario, output.out, output.jobs, budget) },
                &o,
            )
        }
        Command::Merge { dirs, out, quiet, json } => commands::merge::merge(&dirs, out, quiet, json),
        Command::Status { dir, json } => commands::status::status(&dir, json),
        Command::Export { scenario, out, stdout, target } => {
            let what = match stdout.as_deref() {
                None => commands::export::What::All,
                Some(w) => commands::export::What::parse(w)?,
            };
            commands::export::export(&common(scenario, out, 0, BudgetArgs::default()), &what, target)
        }
        Command::Import { paths, out, force, format, quiet } => {
            commands::import::run(&commands::import::ImportOpts { paths, format, out, force, quiet })
        }
        Command::List { what, json } => {
            use commands::list::What;
            let w = match what.as_deref() {
                None | Some("all") => What::All,
                Some("scenarios") => What::Scenarios,
                Some("topologies") => What::Topologies,
                Some("schedulers") => What::Schedulers,
                Some(o) => {
                    return Err(commands::InputError(format!(
                        "list {o:?}: expected scenarios, topologies or schedulers"
                    ))
                    .into());
                }
            };
            commands::list::list(w, json)
        }
        Command::Compare { a, b, out, json, quiet } => {
            commands::compare::compare(&commands::compare::CompareOpts { a, b, out, json, quiet })
        }
        Command::Show { dir, json } => commands::show::show(&dir, json),
        Command::Completions { shell } => commands::install::completions(Cli::command(), shell),
        Command::Man { out } => commands::install::man(Cli::command(), out.as_deref()),
        Command::Ipvs(IpvsCommand::Replay { file, json, seed, kernel }) => {
            let name =
                if file.as_os_str() == "-" { "<stdin>".to_owned() } else { file.display().to_string() };
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
            } else {
                text = std::fs::read_to_string(&file).with_context(|| format!("reading {name}"))?;
            }
            let script = replay::parse(&text).map_err(|e| commands::InputError(format!("{name}:{e}")))?;
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

/// `--format`'s value.
fn parse_format(s: &str) -> Result<topologies::import::Format, String> {
    use topologies::import::Format;
    Format::parse(s)
        .ok_or_else(|| format!("unknown format {s:?}: expected {}", Format::ALL.map(Format::name).join(", ")))
}
