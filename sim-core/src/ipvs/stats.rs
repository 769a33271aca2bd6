//! The counters and rate estimates `ipvsadm -L -n --stats` and `--rate` show, per real
//! server, per virtual service and in total.
//!
//! Mirrors `ip_vs_est.c`: every 2 seconds the estimator takes the counters' differences,
//! scales them (`Δcount << 9` for connections and packets, `Δbytes << 4` for bytes) and
//! moves an EWMA a quarter of the way (`avg += (rate − avg) >> 2`); the reported rates
//! are `(avg + 0x1FF) >> 10` and `(avg + 0xF) >> 5`. Ticks fall on multiples of 2 s of
//! virtual time and are caught up lazily by the table's `advance`.

use lvs_sched::{DestId, Duration, Time};

/// The estimator's period.
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

/// Cumulative counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections created (templates excluded).
    pub conns: u64,
    /// Packets client → server.
    pub inpkts: u64,
    /// Packets server → client (seen by the director only with NAT).
    pub outpkts: u64,
    /// Bytes client → server (L3, before any tunnel encapsulation).
    pub inbytes: u64,
    /// Bytes server → client.
    pub outbytes: u64,
}

/// Rates as `ipvsadm -L --rate` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// Counters with their estimator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    counters: Counters,
    last: Counters,
    /// Scaled averages (`struct ip_vs_estimator`): cps, inpps, outpps, inbps, outbps.
    avg: [i64; 5],
}

impl Stats {
    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The current rate estimates.
    pub fn rates(&self) -> Rates {
        let pps = |a: i64| (a.max(0) as u64 + 0x1FF) >> 10;
        let bps = |a: i64| (a.max(0) as u64 + 0xF) >> 5;
        Rates {
            cps: pps(self.avg[0]),
            inpps: pps(self.avg[1]),
            outpps: pps(self.avg[2]),
            inbps: bps(self.avg[3]),
            outbps: bps(self.avg[4]),
        }
    }

    pub(super) fn conn(&mut self) {
        self.counters.conns += 1;
    }

    pub(super) fn traffic(&mut self, output: bool, pkts: u64, bytes: u64) {
        let c = &mut self.counters;
        if output {
            c.outpkts += pkts;
            c.outbytes += bytes;
        } else {
            c.inpkts += pkts;
            c.inbytes += bytes;
        }
    }

    /// One estimator period (`estimation_timer()`).
    fn tick(&mut self) {
        let (now, last) = (self.counters, self.last);
        let rate = [
            ((now.conns - last.conns) << 9) as i64,
            ((now.inpkts - last.inpkts) << 9) as i64,
            ((now.outpkts - last.outpkts) << 9) as i64,
            ((now.inbytes - last.inbytes) << 4) as i64,
            ((now.outbytes - last.outbytes) << 4) as i64,
        ];
        for (avg, r) in self.avg.iter_mut().zip(rate) {
            *avg += (r - *avg) >> 2;
        }
        self.last = now;
    }
}

/// Every counter of a table: per service, per real server (by service and [`DestId`]),
/// and in total.
#[derive(Clone, Debug)]
pub(super) struct Accounts {
    pub(super) total: Stats,
    pub(super) services: Vec<Stats>,
    pub(super) dests: Vec<Vec<Stats>>,
    next_tick: Time,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            total: Stats::default(),
            services: Vec::new(),
            dests: Vec::new(),
            next_tick: Time::ZERO + ESTIMATOR_PERIOD,
        }
    }
}

impl Accounts {
    /// Runs every estimator tick at or before `now`.
    #[inline]
    pub(super) fn catch_up(&mut self, now: Time) {
        while self.next_tick <= now {
            self.total.tick();
            self.services.iter_mut().for_each(Stats::tick);
            self.dests.iter_mut().flatten().for_each(Stats::tick);
            self.next_tick += ESTIMATOR_PERIOD;
        }
    }

    pub(super) fn dest_mut(&mut self, svc: usize, dest: DestId) -> &mut Stats {
        if self.dests.len() <= svc {
            self.dests.resize(svc + 1, Vec::new());
        }
        let d = &mut self.dests[svc];
        if d.len() <= dest.0 as usize {
            d.resize(dest.0 as usize + 1, Stats::default());
        }
        &mut d[dest.0 as usize]
    }

    pub(super) fn service_mut(&mut self, svc: usize) -> &mut Stats {
        if self.services.len() <= svc {
            self.services.resize(svc + 1, Stats::default());
        }
        &mut self.services[svc]
    }

    /// Counts a new connection on a real server of a service.
    pub(super) fn conn(&mut self, svc: usize, dest: DestId) {
        self.total.conn();
        self.service_mut(svc).conn();
        self.dest_mut(svc, dest).conn();
    }

    /// Counts packets on a real server of a service.
    pub(super) fn traffic(&mut self, svc: usize, dest: DestId, output: bool, pkts: u64, bytes: u64) {
        self.total.traffic(output, pkts, bytes);
        self.service_mut(svc).traffic(output, pkts, bytes);
        self.dest_mut(svc, dest).traffic(output, pkts, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_converges_by_quarters_as_the_kernel_computes() {
        let mut s = Stats::default();
        // 10 connections a second, 20 packets of 100 bytes each a second.
        let mut expect_cps: i64 = 0;
        let mut expect_bps: i64 = 0;
        for tick in 1..=40 {
            for _ in 0..20 {
                s.conn();
            }
            s.traffic(false, 40, 4000);
            s.tick();
            // Δconns = 20 per 2 s: rate = 20 << 9 = 10 240 (10/s scaled by 1024).
            expect_cps += (20 * 512 - expect_cps) >> 2;
            expect_bps += (4000 * 16 - expect_bps) >> 2;
            assert_eq!(s.avg[0], expect_cps, "tick {tick}");
            assert_eq!(s.avg[3], expect_bps, "tick {tick}");
        }
        // After the first tick the average is a quarter of the way: 2560/1024 → 3 (rounded up).
        let mut first = Stats::default();
        (0..20).for_each(|_| first.conn());
        first.tick();
        assert_eq!(first.rates().cps, (2560 + 0x1FF) >> 10);
        assert_eq!(first.rates().cps, 2);
        // Converged (the byte average needs (3/4)^n · 64000 < 16, n >= 29): 10 conn/s,
        // 20 pkt/s, 2000 B/s.
        let r = s.rates();
        assert_eq!((r.cps, r.inpps, r.inbps, r.outpps), (10, 20, 2000, 0));
    }

    #[test]
    fn ticks_fall_on_multiples_of_two_seconds() {
        let mut a = Accounts::default();
        a.conn(0, DestId(0));
        a.catch_up(Time(1_999_999_999));
        assert_eq!(a.total.avg[0], 0, "no tick before 2 s");
        a.catch_up(Time::ZERO + Duration::from_secs(2));
        assert_eq!(a.total.avg[0], 512 >> 2);
        a.catch_up(Time::ZERO + Duration::from_secs(7));
        // Ticks at 4 s and 6 s with no new connection: the average decays.
        let mut e: i64 = 128;
        e += (0 - e) >> 2;
        e += (0 - e) >> 2;
        assert_eq!(a.total.avg[0], e);
        assert_eq!(a.dests[0][0].counters().conns, 1);
    }
}
