//! The `net.ipv4.vs` sysctls by name: [`Sysctl`] names one, with the values the kernel
//! accepts; [`Sysctls::get`] and [`Sysctls::set`] read and write it by that name, and
//! [`Sysctls::changed`] lists those that differ from the kernel's defaults in an order
//! safe to write them (the thresholds before the defence modes, since writing a mode runs
//! the defence with the thresholds in force). The replay, the exporters, the importers and
//! the scenario checks all go through here.

use core::fmt;
use core::ops::RangeInclusive;

use super::Sysctls;

/// One of the `net.ipv4.vs` sysctls the model honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sysctl {
    /// `expire_nodest_conn` (0 or 1).
    ExpireNodestConn,
    /// `expire_quiescent_template` (0 or 1).
    ExpireQuiescentTemplate,
    /// `sloppy_tcp` (0 or 1).
    SloppyTcp,
    /// `sloppy_sctp` (0 or 1).
    SloppySctp,
    /// `conn_reuse_mode` (0..=3).
    ConnReuseMode,
    /// `amemthresh` [pages] (any `int`).
    Amemthresh,
    /// `am_droprate` (0..=2^31-1).
    AmDroprate,
    /// `drop_entry` (0..=3).
    DropEntry,
    /// `drop_packet` (0..=3).
    DropPacket,
    /// `secure_tcp` (0..=3).
    SecureTcp,
}

impl Sysctl {
    /// Every sysctl, in the order [`Sysctls::changed`] lists them.
    pub const ALL: [Sysctl; 10] = [
        Sysctl::ExpireNodestConn,
        Sysctl::ExpireQuiescentTemplate,
        Sysctl::SloppyTcp,
        Sysctl::SloppySctp,
        Sysctl::ConnReuseMode,
        Sysctl::Amemthresh,
        Sysctl::AmDroprate,
        Sysctl::DropEntry,
        Sysctl::DropPacket,
        Sysctl::SecureTcp,
    ];

    /// The name under `net.ipv4.vs.`.
    pub const fn name(self) -> &'static str {
        match self {
            Sysctl::ExpireNodestConn => "expire_nodest_conn",
            Sysctl::ExpireQuiescentTemplate => "expire_quiescent_template",
            Sysctl::SloppyTcp => "sloppy_tcp",
            Sysctl::SloppySctp => "sloppy_sctp",
            Sysctl::ConnReuseMode => "conn_reuse_mode",
            Sysctl::Amemthresh => "amemthresh",
            Sysctl::AmDroprate => "am_droprate",
            Sysctl::DropEntry => "drop_entry",
            Sysctl::DropPacket => "drop_packet",
            Sysctl::SecureTcp => "secure_tcp",
        }
    }

    /// The sysctl called `name`, with or without the `net.ipv4.vs.` prefix.
    pub fn from_name(name: &str) -> Option<Sysctl> {
        let short = name.strip_prefix("net.ipv4.vs.").unwrap_or(name);
        Sysctl::ALL.into_iter().find(|s| s.name() == short)
    }

    /// The values it takes: the kernel's for the modes and thresholds (`proc_do_defense_mode()`
    /// refuses a mode outside 0..=3, `amemthresh` is any `int`); 0 or 1 for the switches,
    /// which the model holds as booleans.
    pub fn range(self) -> RangeInclusive<i64> {
        match self {
            Sysctl::ExpireNodestConn
            | Sysctl::ExpireQuiescentTemplate
            | Sysctl::SloppyTcp
            | Sysctl::SloppySctp => 0..=1,
            Sysctl::ConnReuseMode | Sysctl::DropEntry | Sysctl::DropPacket | Sysctl::SecureTcp => 0..=3,
            Sysctl::Amemthresh => i64::from(i32::MIN)..=i64::from(i32::MAX),
            Sysctl::AmDroprate => 0..=i64::from(i32::MAX),
        }
    }

    /// Whether writing it runs the defence update at once (`proc_do_defense_mode()`).
    pub fn is_defense_mode(self) -> bool {
        matches!(self, Sysctl::DropEntry | Sysctl::DropPacket | Sysctl::SecureTcp)
    }
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value outside what a sysctl takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{sysctl} must be in {lo}..={hi}, got {value}", lo = range.start(), hi = range.end())]
pub struct OutOfRange {
    /// The sysctl.
    pub sysctl: Sysctl,
    /// The value refused.
    pub value: i64,
    /// What it takes.
    pub range: RangeInclusive<i64>,
}

impl Sysctls {
    /// The value of `s`, as `sysctl net.ipv4.vs.NAME` prints it.
    pub fn get(&self, s: Sysctl) -> i64 {
        match s {
            Sysctl::ExpireNodestConn => i64::from(self.expire_nodest_conn),
            Sysctl::ExpireQuiescentTemplate => i64::from(self.expire_quiescent_template),
            Sysctl::SloppyTcp => i64::from(self.sloppy_tcp),
            Sysctl::SloppySctp => i64::from(self.sloppy_sctp),
            Sysctl::ConnReuseMode => i64::from(self.conn_reuse_mode),
            Sysctl::Amemthresh => self.amemthresh,
            Sysctl::AmDroprate => i64::from(self.am_droprate),
            Sysctl::DropEntry => i64::from(self.drop_entry),
            Sysctl::DropPacket => i64::from(self.drop_packet),
            Sysctl::SecureTcp => i64::from(self.secure_tcp),
        }
    }

    /// Writes `value` into `s`, refused outside [`Sysctl::range`]. (Writing a defence
    /// mode into a running table also runs [`crate::Ipvs::update_defense_level`]: the
    /// caller's business.)
    pub fn set(&mut self, s: Sysctl, value: i64) -> Result<(), OutOfRange> {
        if !s.range().contains(&value) {
            return Err(OutOfRange { sysctl: s, value, range: s.range() });
        }
        // In range, so every conversion below holds.
        let small = value as u8;
        match s {
            Sysctl::ExpireNodestConn => self.expire_nodest_conn = value != 0,
            Sysctl::ExpireQuiescentTemplate => self.expire_quiescent_template = value != 0,
            Sysctl::SloppyTcp => self.sloppy_tcp = value != 0,
            Sysctl::SloppySctp => self.sloppy_sctp = value != 0,
            Sysctl::ConnReuseMode => self.conn_reuse_mode = small,
            Sysctl::Amemthresh => self.amemthresh = value,
            Sysctl::AmDroprate => self.am_droprate = value as u32,
            Sysctl::DropEntry => self.drop_entry = small,
            Sysctl::DropPacket => self.drop_packet = small,
            Sysctl::SecureTcp => self.secure_tcp = small,
        }
        Ok(())
    }

    /// Every sysctl whose value is outside its range (a configuration built field by
    /// field), first first.
    pub fn check(&self) -> Result<(), OutOfRange> {
        for s in Sysctl::ALL {
            let value = self.get(s);
            if !s.range().contains(&value) {
                return Err(OutOfRange { sysctl: s, value, range: s.range() });
            }
        }
        Ok(())
    }

    /// The sysctls that differ from the kernel's defaults, with their values, in
    /// [`Sysctl::ALL`]'s order (thresholds before modes).
    pub fn changed(&self) -> impl Iterator<Item = (Sysctl, i64)> + '_ {
        let default = Sysctls::default();
        Sysctl::ALL.into_iter().filter(move |&s| self.get(s) != default.get(s)).map(|s| (s, self.get(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for s in Sysctl::ALL {
            assert_eq!(Sysctl::from_name(s.name()), Some(s));
            assert_eq!(Sysctl::from_name(&format!("net.ipv4.vs.{s}")), Some(s));
        }
        assert_eq!(Sysctl::from_name("ip_forward"), None);
        assert_eq!(Sysctl::from_name("net.ipv4.vs."), None);
    }

    #[test]
    fn set_then_get_gives_the_value_and_out_of_range_is_refused_untouched() {
        let mut s = Sysctls::default();
        for sysctl in Sysctl::ALL {
            let hi = *sysctl.range().end();
            s.set(sysctl, hi).unwrap();
            assert_eq!(s.get(sysctl), hi, "{sysctl}");
        }
        let before = s;
        let e = s.set(Sysctl::DropEntry, 4).unwrap_err();
        assert_eq!(e.to_string(), "drop_entry must be in 0..=3, got 4");
        assert!(s.set(Sysctl::SloppyTcp, 2).is_err());
        assert!(s.set(Sysctl::AmDroprate, -1).is_err());
        assert!(s.set(Sysctl::Amemthresh, i64::from(i32::MAX) + 1).is_err());
        assert_eq!(s, before, "a refused write changes nothing");
    }

    #[test]
    fn changed_lists_only_non_defaults_thresholds_before_modes() {
        assert_eq!(Sysctls::default().changed().count(), 0);
        let mut s = Sysctls::default();
        s.set(Sysctl::SecureTcp, 2).unwrap();
        s.set(Sysctl::Amemthresh, 4096).unwrap();
        s.set(Sysctl::ConnReuseMode, 0).unwrap();
        s.set(Sysctl::SloppyTcp, 1).unwrap();
        let v: Vec<(Sysctl, i64)> = s.changed().collect();
        assert_eq!(
            v,
            [
                (Sysctl::SloppyTcp, 1),
                (Sysctl::ConnReuseMode, 0),
                (Sysctl::Amemthresh, 4096),
                (Sysctl::SecureTcp, 2)
            ]
        );
        let bad = Sysctls { drop_packet: 7, ..Sysctls::default() };
        assert_eq!(bad.check().unwrap_err().to_string(), "drop_packet must be in 0..=3, got 7");
    }
}
