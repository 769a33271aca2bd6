//! A farm of identical real servers for the scale measurements (the `scale` bench and the
//! `scale_memory` test): one director, one TCP service with direct routing, N servers of
//! 2 cores, Poisson arrivals, exponential demand. Each measurement runs in a child process
//! (this same executable with `--child ...`) so that its peak resident set (VmHWM) is its
//! own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::model::{
    ClusterConfig, DestConfig, DirectorConfig, PopulationConfig, ServerConfig, ServerDetail, ServiceConfig,
    Simulation,
};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

/// One measured run.
#[derive(Clone, Copy, Debug)]
pub struct Farm {
    pub servers: usize,
    pub scheduler: SchedulerKind,
    /// Connections per second.
    pub rate: f64,
    /// Mean demand [s].
    pub demand_s: f64,
    pub duration_s: f64,
    pub detail: ServerDetail,
}

/// What a child measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Connections that arrived.
    pub conns: u64,
    /// Wall time of `Simulation::new` [s].
    pub setup_s: f64,
    /// Wall time of the run (the event loop and the report) [s].
    pub run_s: f64,
    /// Peak resident set [bytes].
    pub peak_rss: u64,
    /// Whether the report kept full per-server detail.
    pub detail: bool,
}

impl Farm {
    /// The cluster: servers `rs0..`, added so that the kernel's list is in index order.
    pub fn config(&self) -> ClusterConfig {
        let servers: Vec<ServerConfig> = (0..self.servers)
            .map(|i| {
                ServerConfig::new(
                    format!("rs{i}"),
                    IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i as u32 + 1)),
                    CpuConfig { cores: 2, speed: 1.0, max_in_service: None, backlog: None },
                )
            })
            .collect();
        let dests = (0..self.servers)
            .rev()
            .map(|server| DestConfig::new(server, 80, Forwarding::DirectRouting))
            .collect();
        let duration = Duration((self.duration_s * 1e9).round() as u64);
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
        ClusterConfig {
            warmup: Duration(duration.as_nanos() / 10),
            // A scenario's default for the 10 s headline run (about 200 samples).
            sample_interval: Some(Duration::from_millis(50)),
            directors: vec![DirectorConfig::new(
                "lvs",
                "lan",
                vec![ServiceConfig::new(key, self.scheduler, dests)],
            )],
            servers,
            populations: vec![PopulationConfig {
                clients: 1_000_000,
                first_client: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
                demand: Dist::Exponential { mean: self.demand_s },
                ..PopulationConfig::new("http", ArrivalProcess::Poisson { rate: self.rate }, VIP, 80)
            }],
            server_detail: self.detail,
            ..ClusterConfig::new(1, duration)
        }
    }

    /// The child's arguments.
    pub fn args(&self) -> Vec<String> {
        let detail = match self.detail {
            ServerDetail::Auto => "auto",
            ServerDetail::Full => "full",
            ServerDetail::Aggregate => "aggregate",
        };
        vec![
            "--child".into(),
            self.servers.to_string(),
            self.scheduler.name().to_string(),
            self.rate.to_string(),
            self.demand_s.to_string(),
            self.duration_s.to_string(),
            detail.into(),
        ]
    }

    /// Parses [`Farm::args`] (after `--child`).
    pub fn parse(args: &[String]) -> Farm {
        let num =
            |i: usize| -> f64 { args[i].parse().unwrap_or_else(|_| panic!("argument {i}: {:?}", args[i])) };
        Farm {
            servers: num(0) as usize,
            scheduler: args[1].parse().unwrap_or_else(|_| panic!("scheduler {:?}", args[1])),
            rate: num(2),
            demand_s: num(3),
            duration_s: num(4),
            detail: match args[5].as_str() {
                "full" => ServerDetail::Full,
                "aggregate" => ServerDetail::Aggregate,
                _ => ServerDetail::Auto,
            },
        }
    }

    /// Runs it in this process and prints what [`Farm::measure`] reads.
    pub fn child(&self) {
        let t0 = Instant::now();
        let sim = Simulation::new(self.config()).expect("a valid farm");
        let setup_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let report = sim.run();
        let run_s = t1.elapsed().as_secs_f64();
        let across = report.series.iter().all(|s| s.servers.is_empty() == s.across.is_some());
        assert!(across, "a sample has both or neither of per-server entries and the spread");
        println!(
            "{} {setup_s} {run_s} {} {}",
            report.ref1.arrivals,
            crate::rss::peak_rss(),
            u8::from(report.server_detail)
        );
    }

    /// Runs it in a child process (`exe --child ...`).
    pub fn measure(&self, exe: &std::path::Path) -> Measured {
        let out = std::process::Command::new(exe).args(self.args()).output().expect("the child runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child {:?} failed: {text}{}",
            self.args(),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text.lines().last().expect("the child prints its figures");
        let w: Vec<&str> = line.split_whitespace().collect();
        let f = |i: usize| -> f64 { w[i].parse().unwrap_or_else(|_| panic!("child printed {line:?}")) };
        Measured {
            conns: f(0) as u64,
            setup_s: f(1),
            run_s: f(2),
            peak_rss: f(3) as u64,
            detail: w[4] == "1",
        }
    }
}
