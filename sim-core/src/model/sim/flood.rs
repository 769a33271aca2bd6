//! SYN floods in the run and the DoS measurements: each flood's SYNs reach its
//! director's IPVS in bursts (at most one event a millisecond), and each sample records
//! the tables' sizes, the defences' state and what the legitimate clients met.

use lvs_ipvs::NoDest;
use lvs_sched::{Duration, Flow, Protocol, Time};
use rand::Rng as _;

use super::breakdown::Outcome;
use super::{Event, Simulation};
use crate::model::config::ClusterConfig;
use crate::model::dos::source;
use crate::model::report::{DosDirectorReport, DosDirectorSample, DosReport, DosSample, FloodReport};
use crate::rng::{Rng, Streams};

/// A flood's SYNs due within this much of an event go in its burst.
const BURST: Duration = Duration::from_millis(1);

/// The floods of a run and the DoS measurements.
pub(super) struct Dos {
    floods: Vec<Flood>,
    /// Legitimate connections refused and dropped so far, and at the last sample.
    refused: u64,
    dropped: u64,
    sampled: (u64, u64, u64),
    peak_entries: Vec<u64>,
}

struct Flood {
    director: usize,
    /// Index in the director's `syn_floods`.
    index: usize,
    rng: Rng,
    /// SYNs sent so far (the next one's number).
    sent: u64,
    start: Time,
    stop: Time,
    report: FloodReport,
}

impl Flood {
    /// When SYN `k` is sent: `k / rate` after the start.
    fn time_of(&self, k: u64, rate: f64) -> Time {
        self.start + Duration((k as f64 * 1e9 / rate) as u64)
    }
}

impl Dos {
    /// The run's DoS side, if a director has a flood, a memory or a defence on.
    pub(super) fn new(cfg: &ClusterConfig, streams: &Streams) -> Option<Dos> {
        let on = cfg.directors.iter().any(|d| {
            let s = d.sysctls;
            !d.syn_floods.is_empty() || d.memory.is_some() || s.drop_entry + s.drop_packet + s.secure_tcp > 0
        });
        if !on {
            return None;
        }
        let mut floods = Vec::new();
        for (di, d) in cfg.directors.iter().enumerate() {
            for (index, f) in d.syn_floods.iter().enumerate() {
                floods.push(Flood {
                    director: di,
                    index,
                    rng: streams.stream(&format!("director/{}/syn-flood/{}", d.name, f.name)),
                    sent: 0,
                    start: Time::ZERO + f.start,
                    // A flood ends with the run at the latest (as the run budget counts it).
                    stop: Time::ZERO + f.stop.map_or(cfg.duration, |s| s.min(cfg.duration)),
                    report: FloodReport {
                        name: f.name.clone(),
                        director: d.name.clone(),
                        ..FloodReport::default()
                    },
                });
            }
        }
        Some(Dos {
            floods,
            refused: 0,
            dropped: 0,
            sampled: (0, 0, 0),
            peak_entries: vec![0; cfg.directors.len()],
        })
    }

    /// The first event of each flood.
    pub(super) fn first_events(&self) -> impl Iterator<Item = (Time, Event)> + '_ {
        self.floods.iter().enumerate().map(|(i, f)| (f.start, Event::Flood(i as u16)))
    }

    /// A legitimate connection ended with `outcome`.
    pub(super) fn ended(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Refused => self.refused += 1,
            Outcome::Dropped | Outcome::Lost => self.dropped += 1,
            Outcome::Completed => {}
        }
    }

    fn syns(&self) -> u64 {
        self.floods.iter().map(|f| f.sent).sum()
    }
}

impl Simulation {
    /// Flood `i`'s SYNs due by now (and within a millisecond) reach its director; the next
    /// burst is scheduled.
    pub(super) fn flood(&mut self, i: usize) {
        let now = self.now;
        let Some(dos) = self.dos.as_mut() else { return };
        let f = &mut dos.floods[i];
        let cfg = &self.cfg.directors[f.director].syn_floods[f.index];
        let horizon = now + BURST;
        let dir = &mut self.dirs[f.director];
        while f.time_of(f.sent, cfg.rate) < horizon.min(f.stop) {
            let k = f.rng.random_range(0..cfg.sources);
            let flow = Flow {
                protocol: Protocol::Tcp,
                saddr: source(cfg.first_source, k),
                sport: f.rng.random_range(1024..=u16::MAX),
                daddr: cfg.vip,
                dport: cfg.port,
            };
            f.sent += 1;
            f.report.syns += 1;
            if !(dir.alive && dir.holds && dir.ext_up) {
                f.report.lost += 1;
                continue;
            }
            // Expiries due first, so that the count moves by this SYN's entry only.
            dir.ipvs.advance(now);
            let before = dir.ipvs.conn_count();
            match dir.ipvs.new_conn(now, &flow, None) {
                Ok(s) => match s.conn {
                    Some(id) if dir.ipvs.conn_count() > before => {
                        f.report.entries += 1;
                        dir.ipvs.count(id, false, 1, 60);
                    }
                    _ => f.report.other += 1,
                },
                Err(NoDest::DefenseDrop) => f.report.defense_dropped += 1,
                Err(NoDest::NoMemory) => f.report.no_memory += 1,
                Err(_) => f.report.other += 1,
            }
        }
        let entries = dir.ipvs.conn_count() as u64;
        let peak = &mut dos.peak_entries[f.director];
        *peak = (*peak).max(entries);
        let next = f.time_of(f.sent, cfg.rate);
        if next < f.stop {
            self.queue.push(next.max(horizon), Event::Flood(i as u16));
        }
    }

    /// The DoS side of a sample at now.
    pub(super) fn dos_sample(&mut self) -> Option<DosSample> {
        let now = self.now;
        let dos = self.dos.as_mut()?;
        let directors = self
            .dirs
            .iter_mut()
            .zip(&mut dos.peak_entries)
            .map(|(d, peak)| {
                d.ipvs.advance(now);
                let entries = d.ipvs.conn_count() as u64;
                *peak = (*peak).max(entries);
                let s = d.ipvs.sysctls();
                DosDirectorSample {
                    entries,
                    level: d.ipvs.defense_level(),
                    modes: [s.drop_entry, s.drop_packet, s.secure_tcp],
                }
            })
            .collect();
        let syns = dos.syns();
        let (r, d, f) = dos.sampled;
        dos.sampled = (dos.refused, dos.dropped, syns);
        Some(DosSample {
            directors,
            refused: dos.refused - r,
            dropped: dos.dropped - d,
            flood_syns: syns - f,
        })
    }

    /// The DoS report at the end of the run.
    pub(super) fn dos_report(&self) -> Option<DosReport> {
        let dos = self.dos.as_ref()?;
        let directors = self
            .dirs
            .iter()
            .zip(&self.cfg.directors)
            .zip(&dos.peak_entries)
            .map(|((d, c), &peak)| DosDirectorReport {
                name: c.name.clone(),
                defense: d.ipvs.defense_stats(),
                peak_entries: peak,
            })
            .collect();
        Some(DosReport { directors, floods: dos.floods.iter().map(|f| f.report.clone()).collect() })
    }
}

/// What a legitimate client's first packet meets when IPVS cannot schedule it: the
/// defences and a full table drop the SYN silently (the client retransmits), anything
/// else is answered with a reset.
pub(super) fn refusal(e: NoDest) -> Outcome {
    match e {
        NoDest::DefenseDrop | NoDest::NoMemory => Outcome::Dropped,
        _ => Outcome::Refused,
    }
}
