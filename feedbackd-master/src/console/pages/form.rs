//! The console's forms: `application/x-www-form-urlencoded` bodies (and query strings)
//! decoded within bounds, and each form's fields checked into a [`Change`] before anything
//! is sent to the daemon loop. Services and servers' settings are checked by lvs-ipvs's
//! ipvsadm parser, so a form accepts exactly what `ipvsadm -A/-E/-e` would.

use feedbackd_proto::types::{RsKey, ServerAction, parse_rs_key, parse_service};
use lvs_ipvs::ServiceKey;
use lvs_ipvs::ipvsadm::{self, Command, ServiceArg};

use crate::console::Change;

/// The most fields a form or query may have.
pub const MAX_FIELDS: usize = 32;

/// The longest value of one field [bytes, decoded].
pub const MAX_VALUE: usize = 256;

/// A decoded form: its fields in order, each name at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Decodes `a=1&b=x+y%21`: at most [`MAX_FIELDS`] fields of at most [`MAX_VALUE`] bytes,
    /// valid UTF-8 after decoding, no name twice.
    pub fn parse(raw: &[u8]) -> Result<Form, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if fields.len() == MAX_FIELDS {
                return Err(format!("too many fields (at most {MAX_FIELDS})"));
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let (name, value) = (decode(name)?, decode(value)?);
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(format!("the field {name:?} is given twice"));
            }
            fields.push((name, value));
        }
        Ok(Form { fields })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, which must be given and not blank.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("the field {name:?} is missing")),
        }
    }
}

/// Percent-decodes one name or value (`+` is a space).
fn decode(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len().min(MAX_VALUE));
    let mut i = 0;
    while i < raw.len() {
        if out.len() >= MAX_VALUE {
            return Err(format!("a field is longer than {MAX_VALUE} bytes"));
        }
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(byte.ok_or("a bad %-escape in the form")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    let s = String::from_utf8(out).map_err(|_| "the form is not UTF-8".to_owned())?;
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err("a field holds a control character".to_owned());
    }
    Ok(s)
}

/// The real server named by the field `rs` ([`RsKeyText`](feedbackd_proto::types::RsKeyText)).
pub fn rs(form: &Form) -> Result<RsKey, String> {
    parse_rs_key(form.required("rs")?)
}

/// `/server/action`: `action` (drain, maintenance, return, pin, unpin) and, to pin,
/// `weight` (0 to 65535).
pub fn server_action(form: &Form) -> Result<Change, String> {
    let key = rs(form)?;
    let action = match form.required("action")? {
        "drain" => ServerAction::Drain,
        "maintenance" => ServerAction::Maintenance,
        "return" => ServerAction::Return,
        "unpin" => ServerAction::Unpin,
        "pin" => {
            let w = form.required("weight").map_err(|_| "to pin, give a weight (0 to 65535)".to_owned())?;
            let weight = w
                .parse::<u32>()
                .ok()
                .filter(|w| *w <= 65535)
                .ok_or_else(|| format!("weight {w:?} is not a number from 0 to 65535"))?;
            ServerAction::Pin(weight)
        }
        other => {
            return Err(format!("{other:?} is not an action (drain, maintenance, return, pin, unpin)"));
        }
    };
    Ok(Change::Server { key, action })
}

/// The forwarding methods the edit form offers, with ipvsadm's switch for each.
pub const FORWARDING: [(&str, &str, &str); 3] = [
    ("route", "-g", "direct routing"),
    ("masq", "-m", "NAT (masquerading)"),
    ("tunnel", "-i", "tunnel (IPIP)"),
];

/// `/server/edit`: `forwarding` (route, masq, tunnel), `u_threshold`, `l_threshold`
/// (empty: 0), checked as `ipvsadm -e` checks them.
pub fn server_edit(form: &Form) -> Result<Change, String> {
    let key = rs(form)?;
    let fwd = form.required("forwarding")?;
    let switch = FORWARDING
        .iter()
        .find(|(name, _, _)| *name == fwd)
        .map(|(_, s, _)| *s)
        .ok_or_else(|| format!("{fwd:?} is not a forwarding method (route, masq, tunnel)"))?;
    let real = lvs_ipvs::AddrPort(key.addr, key.port).to_string();
    let mut words = vec!["-e".to_owned()];
    words.extend(ServiceArg(&key.service).to_string().split(' ').map(str::to_owned));
    words.extend(["-r".to_owned(), real, switch.to_owned()]);
    for (field, opt) in [("u_threshold", "-x"), ("l_threshold", "-y")] {
        if let Some(v) = optional_word(form, field)? {
            words.extend([opt.to_owned(), v.to_owned()]);
        }
    }
    match run_ipvsadm(&words)? {
        Command::EditDest(_, d) => Ok(Change::EditServer {
            key,
            forwarding: d.fwd,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
        }),
        other => unreachable!("-e parses as EditDest, not {other:?}"),
    }
}

/// `/service/add` and `/service/edit`: `service` ([`ServiceText`](feedbackd_proto::types::ServiceText)),
/// `scheduler`, `persistence` (seconds; empty: not persistent), `netmask` (dotted IPv4 or
/// an IPv6 prefix length; empty: /32 or /128), `flags` (comma-separated: sh-fallback,
/// sh-port, mh-fallback, mh-port, flag-1..3, one-packet), checked as `ipvsadm -A/-E`.
pub fn service(form: &Form, edit: bool) -> Result<Change, String> {
    let key = parse_service(form.required("service")?)?;
    let mut words = vec![if edit { "-E" } else { "-A" }.to_owned()];
    words.extend(ServiceArg(&key).to_string().split(' ').map(str::to_owned));
    words.extend(["-s".to_owned(), word(form.required("scheduler")?, "scheduler")?.to_owned()]);
    if let Some(p) = optional_word(form, "persistence")? {
        if p.parse::<u32>().is_err() {
            return Err(format!("persistence {p:?} is not a number of seconds"));
        }
        words.extend(["-p".to_owned(), p.to_owned()]);
    }
    if let Some(m) = optional_word(form, "netmask")? {
        words.extend(["-M".to_owned(), m.to_owned()]);
    }
    let flags = form.get("flags").unwrap_or("");
    let mut sched_flags = Vec::new();
    for f in flags.split([',', ' ']).map(str::trim).filter(|f| !f.is_empty()) {
        match f {
            "one-packet" | "ops" => words.push("-o".to_owned()),
            f => sched_flags.push(word(f, "flag")?),
        }
    }
    if !sched_flags.is_empty() {
        words.extend(["-b".to_owned(), sched_flags.join(",")]);
    }
    match run_ipvsadm(&words)? {
        Command::AddService(key, config) => Ok(Change::AddService { key, config }),
        Command::EditService(key, config) => Ok(Change::EditService { key, config }),
        other => unreachable!("-A/-E parse as services, not {other:?}"),
    }
}

/// `/service/remove`: `service` and `confirm` (checked).
pub fn service_remove(form: &Form) -> Result<Change, String> {
    let key: ServiceKey = parse_service(form.required("service")?)?;
    if form.get("confirm") != Some("yes") {
        return Err("tick the box to confirm the removal".to_owned());
    }
    Ok(Change::RemoveService { key })
}

/// An optional single-word field: `None` when empty.
fn optional_word<'f>(form: &'f Form, name: &str) -> Result<Option<&'f str>, String> {
    match form.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => word(v, name).map(Some),
    }
}

/// A value given to ipvsadm's parser as one word: never an option of its own.
fn word<'v>(v: &'v str, what: &str) -> Result<&'v str, String> {
    if v.starts_with('-') || v.contains(char::is_whitespace) || v.contains('#') {
        return Err(format!("{what} {v:?} is not a single value"));
    }
    Ok(v)
}

/// Parses the words as one ipvsadm command line (each form value one word, never split).
fn run_ipvsadm(words: &[String]) -> Result<Command, String> {
    let ws: Vec<ipvsadm::Word<'_>> = words.iter().map(|w| (0, w.as_str())).collect();
    ipvsadm::parse(&ws).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use lvs_ipvs::{Forwarding, SchedulerKind, SvcFlags};

    use super::*;

    fn form(s: &str) -> Form {
        Form::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn decoding() {
        let f = form("a=1&b=x+y%21&c=&d");
        assert_eq!(f.get("b"), Some("x y!"));
        assert_eq!(f.get("c"), Some(""));
        assert_eq!(f.get("d"), Some(""));
        assert!(Form::parse(b"a=%zz").is_err());
        assert!(Form::parse(b"a=%4").is_err());
        assert!(Form::parse(b"a=%ff%fe").is_err(), "not UTF-8");
        assert!(Form::parse(b"a=1&a=2").is_err(), "twice");
        assert!(Form::parse(b"a=%00").is_err(), "control character");
        assert!(Form::parse("a=b&".repeat(MAX_FIELDS + 1).as_bytes()).is_err());
        assert!(Form::parse(format!("a={}", "x".repeat(MAX_VALUE + 1)).as_bytes()).is_err());
    }

    #[test]
    fn server_actions() {
        let rs = "rs=tcp%3A10.0.0.1%3A80%2F10.0.0.5%3A80";
        let c = server_action(&form(&format!("{rs}&action=pin&weight=7"))).unwrap();
        assert!(matches!(c, Change::Server { action: ServerAction::Pin(7), .. }));
        let c = server_action(&form(&format!("{rs}&action=drain"))).unwrap();
        assert!(matches!(c, Change::Server { action: ServerAction::Drain, .. }));
        for bad in
            ["action=pin&weight=65536", "action=pin&weight=-1", "action=pin", "action=explode", "action="]
        {
            let e = server_action(&form(&format!("{rs}&{bad}"))).unwrap_err();
            assert!(!e.is_empty());
        }
        assert!(server_action(&form("rs=nonsense&action=drain")).is_err());
        assert!(server_action(&form("action=drain")).is_err());
    }

    #[test]
    fn server_edit_as_ipvsadm_checks_it() {
        let rs = "rs=tcp%3A10.0.0.1%3A80%2F10.0.0.5%3A80";
        let c = server_edit(&form(&format!("{rs}&forwarding=masq&u_threshold=100&l_threshold=50"))).unwrap();
        assert_eq!(
            c,
            Change::EditServer {
                key: parse_rs_key("tcp:10.0.0.1:80/10.0.0.5:80").unwrap(),
                forwarding: Forwarding::Masq,
                u_threshold: 100,
                l_threshold: 50
            }
        );
        assert!(server_edit(&form(&format!("{rs}&forwarding=weight"))).is_err());
        assert!(server_edit(&form(&format!("{rs}&forwarding=route&u_threshold=-5"))).is_err());
        assert!(server_edit(&form(&format!("{rs}&forwarding=route&u_threshold=lots"))).is_err());
        assert!(server_edit(&form(&format!("{rs}&forwarding=route&u_threshold=1+-w+9"))).is_err());
    }

    #[test]
    fn services_as_ipvsadm_checks_them() {
        let c = service(&form("service=udp%3A10.0.0.1%3A53&scheduler=sh&persistence=300&netmask=255.255.255.0&flags=sh-port%2Cone-packet"), false).unwrap();
        let Change::AddService { key, config } = c else { panic!("{c:?}") };
        assert_eq!(key, parse_service("udp:10.0.0.1:53").unwrap());
        assert_eq!(config.scheduler, SchedulerKind::Sh);
        assert_eq!(config.persistence, Some(feedbackd_proto::Duration::from_secs(300)));
        assert_eq!(config.netmask, u32::from(std::net::Ipv4Addr::new(255, 255, 255, 0)));
        assert!(config.flags.has(SvcFlags::SCHED2 | SvcFlags::ONEPACKET | SvcFlags::PERSISTENT));
        let c = service(&form("service=fwm6%3A3&scheduler=wlc"), true).unwrap();
        assert!(matches!(c, Change::EditService { .. }));
        for bad in [
            "service=tcp%3A10.0.0.1%3A80&scheduler=nope",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc+-p+5",
            "service=tcp%3A10.0.0.1%3A80&scheduler=-p",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc&flags=sh-port",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc&flags=one-packet",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc&persistence=99999999",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc&persistence=x",
            "service=tcp%3A10.0.0.1%3A80&scheduler=wlc&netmask=255.0.255.300",
            "service=tcp%3A10.0.0.1%3A0&scheduler=wlc",
            "service=http&scheduler=wlc",
            "scheduler=wlc",
        ] {
            assert!(service(&form(bad), false).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn removal_needs_confirmation() {
        assert!(service_remove(&form("service=tcp%3A10.0.0.1%3A80")).is_err());
        let c = service_remove(&form("service=tcp%3A10.0.0.1%3A80&confirm=yes")).unwrap();
        assert!(matches!(c, Change::RemoveService { .. }));
    }

    /// Field values a hostile or careless user types.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[ -~]{0,40}",
            Just("-p".to_owned()),
            Just("--tun-type".to_owned()),
            Just("wlc -p 5".to_owned()),
            Just("tcp:10.0.0.1:80/10.0.0.5:80".to_owned()),
            Just("fwm6:1".to_owned()),
            Just("4294967296".to_owned()),
            Just("sh-port,one-packet,flag-3".to_owned()),
            "[0-9]{1,12}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(f) = Form::parse(&raw) {
                let _ = (server_action(&f), server_edit(&f), service(&f, false), service(&f, true), service_remove(&f));
            }
        }

        #[test]
        fn any_field_values_never_panic(
            rs in value(), action in value(), weight in value(), fwd in value(), service_v in value(),
            sched in value(), persistence in value(), netmask in value(), flags in value(),
        ) {
            let mut raw = String::new();
            for (k, v) in [("rs", &rs), ("action", &action), ("weight", &weight), ("forwarding", &fwd),
                ("u_threshold", &weight), ("service", &service_v), ("scheduler", &sched),
                ("persistence", &persistence), ("netmask", &netmask), ("flags", &flags), ("confirm", &action)] {
                raw.push_str(&format!("{k}={}&", crate::console::pages::html::UrlEnc(v)));
            }
            let f = Form::parse(raw.as_bytes()).unwrap();
            let _ = (server_action(&f), server_edit(&f), service(&f, false), service(&f, true), service_remove(&f));
        }
    }
}
