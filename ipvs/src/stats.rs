//! Traffic counters and their rate estimators, as `ipvsadm -L -n --stats` and `--rate`
//! show them (`ip_vs_est.c`).
//!
//! Every real server, every service and the table as a whole count connections created
//! (templates excluded), packets and bytes in each direction. Every 2 s of virtual time
//! the estimator of each counter set still linked takes the differences since its last
//! run and folds them into exponentially weighted averages, in the kernel's fixed point:
//! `rate = Δcount << 9` (packets, connections: 2^10 per unit, over 2 s) or
//! `Δbytes << 4` (2^5 per byte, over 2 s), then `avg += (rate - avg) >> 2` (weight 1/4,
//! signed shift). Reported rates are `(avg + 0x1FF) >> 10` and `(avg + 0xF) >> 5`.

use lvs_sched::Duration;

/// The estimator's period.
pub(crate) const EST_PERIOD: Duration = Duration::from_secs(2);

/// Counters of a real server, a service or the whole table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections created (templates excluded).
    pub conns: u64,
    /// Packets from clients.
    pub inpkts: u64,
    /// Packets to clients (seen only with NAT).
    pub outpkts: u64,
    /// Bytes from clients (L3 length) \[B\].
    pub inbytes: u64,
    /// Bytes to clients \[B\].
    pub outbytes: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    /// Counters of two tables together (a director's table before and after a reboot).
    fn add(self, o: Stats) -> Stats {
        Stats {
            conns: self.conns + o.conns,
            inpkts: self.inpkts + o.inpkts,
            outpkts: self.outpkts + o.outpkts,
            inbytes: self.inbytes + o.inbytes,
            outbytes: self.outbytes + o.outbytes,
        }
    }
}

/// Estimated rates, as the kernel reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections [1/s].
    pub cps: u64,
    /// Packets from clients [1/s].
    pub inpps: u64,
    /// Packets to clients [1/s].
    pub outpps: u64,
    /// Bytes from clients [B/s].
    pub inbps: u64,
    /// Bytes to clients [B/s].
    pub outbps: u64,
}

/// A counter set and its estimator (`struct ip_vs_stats` with its `ip_vs_estimator`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) stats: Stats,
    /// The counters at the estimator's last run.
    last: Stats,
    /// Scaled averages: cps, inpps, outpps (2^10 per unit), inbps, outbps (2^5).
    avg: [u64; 5],
    /// On the estimator list: the service or real server is linked.
    pub(crate) running: bool,
}

impl Counters {
    /// A running counter set, all zero.
    pub(crate) fn running() -> Counters {
        Counters { running: true, ..Counters::default() }
    }

    /// Count traffic in one direction.
    #[inline]
    pub(crate) fn add(&mut self, output: bool, pkts: u64, bytes: u64) {
        if output {
            self.stats.outpkts += pkts;
            self.stats.outbytes += bytes;
        } else {
            self.stats.inpkts += pkts;
            self.stats.inbytes += bytes;
        }
    }

    /// One estimator run (`estimation_timer()`); false if nothing moved and every
    /// average is 0, so that further runs without traffic change nothing.
    pub(crate) fn tick(&mut self) -> bool {
        let s = self.stats;
        let l = self.last;
        let rates = [
            (s.conns - l.conns) << 9,
            (s.inpkts - l.inpkts) << 9,
            (s.outpkts - l.outpkts) << 9,
            (s.inbytes - l.inbytes) << 4,
            (s.outbytes - l.outbytes) << 4,
        ];
        self.last = s;
        let mut busy = false;
        for (avg, rate) in self.avg.iter_mut().zip(rates) {
            // The kernel's `e->cps += ((s64)rate - (s64)e->cps) >> 2`: an arithmetic
            // shift, so a falling average rounds down and reaches 0.
            *avg = avg.wrapping_add_signed((rate as i64).wrapping_sub(*avg as i64) >> 2);
            busy |= *avg != 0 || rate != 0;
        }
        busy
    }

    /// The rates as `ip_vs_read_estimator()` reports them.
    pub(crate) fn rates(&self) -> Rates {
        let [cps, inpps, outpps, inbps, outbps] = self.avg;
        Rates {
            cps: (cps + 0x1FF) >> 10,
            inpps: (inpps + 0x1FF) >> 10,
            outpps: (outpps + 0x1FF) >> 10,
            inbps: (inbps + 0xF) >> 5,
            outbps: (outbps + 0xF) >> 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_follow_the_kernels_fixed_point() {
        let mut c = Counters::running();
        // 20 connections and 60 packets of 100 bytes per 2 s: rates 10240 (conns),
        // 30720 (packets) and 96000 (bytes) per run.
        let mut cps = Vec::new();
        for _ in 0..12 {
            c.stats.conns += 20;
            c.add(false, 60, 6000);
            assert!(c.tick());
            cps.push(c.rates().cps);
        }
        // avg: 2560, 4480, 5920, 7000, 7810, 8417, 8872, 9214, 9470, 9662, 9806, 9914;
        // reported (avg + 511) >> 10.
        assert_eq!(cps, [2, 4, 6, 7, 8, 8, 9, 9, 9, 9, 10, 10]);
        // Packets: 7680, 13440, 17760, ... (each run floored); the 12th is 29745,
        // reported (29745 + 511) >> 10 = 29.
        assert_eq!(c.rates().inpps, 29);
        // Bytes: 24000, 42000, 55500, ...; the 12th is 92958 (96000 * (1 - 0.75^12) =
        // 92959.4 before flooring), reported (92958 + 15) >> 5 = 2905 B/s.
        assert_eq!(c.rates().inbps, 2905);
        assert_eq!((c.rates().outpps, c.rates().outbps), (0, 0));
    }

    #[test]
    fn averages_decay_to_zero_without_traffic() {
        let mut c = Counters::running();
        c.stats.conns = 1;
        assert!(c.tick());
        // 512 >> 2 = 128, then 96, 72, 54, 40 (54 + (-54 >> 2) = 54 - 14), 30, 22, 16,
        // 12, 9, 6, 4, 3, 2, 1, 0: the signed shift rounds toward -inf, so the 16th run
        // reaches 0 and reports that nothing moves any more.
        let mut runs = 1;
        while c.tick() {
            runs += 1;
        }
        assert_eq!(runs + 1, 16);
        assert_eq!(c.avg, [0; 5]);
        assert_eq!(c.rates(), Rates::default());
    }
}
