//! The grammar: the original file, every extension, every error with its line.

use core::net::IpAddr;
use core::time::Duration;

use proptest::prelude::*;

use super::*;

const ORIGINAL: &str = "director = 192.168.6.1
service = http
        protocol = TCP
        port = 80
        module = cpuload.so
        forwarding = NAT
";

fn ok(text: &str) -> AgentConf {
    parse(text).unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
}

/// The error of `text`, as `(line, message)`.
fn fails(text: &str) -> (u32, String) {
    match parse(text) {
        Ok(conf) => panic!("parsed, but should not have: {conf:?}\n--- from ---\n{text}"),
        Err(e) => (e.line, e.message),
    }
}

/// `text` fails on `line` with a message holding every one of `parts`.
fn fails_with(text: &str, line: u32, parts: &[&str]) {
    let (got_line, message) = fails(text);
    assert_eq!(got_line, line, "wrong line for: {message}");
    for part in parts {
        assert!(message.contains(part), "{message:?} does not say {part:?}");
    }
}

/// A director line, then `body`: the line numbers in `body` start at 2.
fn with_director(body: &str) -> String {
    format!("director = 10.0.0.1\n{body}")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn service(conf: &AgentConf) -> &ServiceConf {
    assert_eq!(conf.services.len(), 1, "{conf:?}");
    &conf.services[0]
}

#[test]
fn original_example() {
    let conf = ok(ORIGINAL);
    assert_eq!(
        conf,
        AgentConf {
            directors: vec![DirectorConf { host: "192.168.6.1".into(), port: DEFAULT_MASTER_PORT, line: 1 }],
            agent_id: None,
            interval: Duration::from_secs(1),
            key_file: None,
            master_timeout: None,
            agent_checks: Vec::new(),
            services: vec![ServiceConf {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
                vip: None,
                fwmark: None,
                forwarding: Forwarding::Masq,
                address: None,
                modules: vec![ModuleConf { kind: ModuleKind::Cpuload, settings: vec![], line: 5 }],
                combine: Combine::Min,
                line: 2,
            }],
        }
    );
}

#[test]
fn comments_blank_lines_case_and_indentation_mean_nothing() {
    let text = "# feedbackd-agent.conf\r\n\
                \r\n\
                DIRECTOR=192.168.6.1   # the director\n\
                \tService = http\n\
                Protocol = tcp\n\
                \t  \t PORT   =   80#comment right after\n\
                   # a whole-line comment, indented\n\
                module = CPULOAD.SO\n\
                \n\
                forwarding\t=\tnat\n";
    let mut expected = ok(ORIGINAL);
    expected.directors[0].line = 3;
    expected.services[0].line = 4;
    expected.services[0].modules[0].line = 8;
    assert_eq!(ok(text), expected);
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    assert_eq!(ok(&format!("\u{feff}{ORIGINAL}")), ok(ORIGINAL));
}

#[test]
fn defaults() {
    let conf = ok(&with_director("service = web\nport = 8080\n"));
    assert_eq!(conf.interval, Duration::from_secs(1));
    let s = service(&conf);
    assert_eq!((s.protocol, s.forwarding, s.combine), (Protocol::Tcp, Forwarding::Masq, Combine::Min));
    assert_eq!((s.vip, s.fwmark, s.address), (None, None, None));
    assert!(s.modules.is_empty(), "none written: the agent picks cpuload");
}

#[test]
fn protocols_in_any_case() {
    for (text, expected) in [("TCP", Protocol::Tcp), ("udp", Protocol::Udp), ("Sctp", Protocol::Sctp)] {
        let conf = ok(&with_director(&format!("service = x\nport = 1\nprotocol = {text}\n")));
        assert_eq!(service(&conf).protocol, expected, "{text}");
    }
}

#[test]
fn every_forwarding_name() {
    let names = [
        ("NAT", Forwarding::Masq),
        ("masq", Forwarding::Masq),
        ("Masquerading", Forwarding::Masq),
        ("DR", Forwarding::DirectRouting),
        ("direct", Forwarding::DirectRouting),
        ("route", Forwarding::DirectRouting),
        ("gate", Forwarding::DirectRouting),
        ("gatewaying", Forwarding::DirectRouting),
        ("droute", Forwarding::DirectRouting),
        ("TUN", Forwarding::Tunnel),
        ("tunnel", Forwarding::Tunnel),
        ("IPIP", Forwarding::Tunnel),
    ];
    for (name, expected) in names {
        let conf = ok(&with_director(&format!("service = http\nforwarding = {name}\n")));
        assert_eq!(service(&conf).forwarding, expected, "{name}");
    }
}

#[test]
fn every_module_with_and_without_so() {
    let kinds = [
        ("cpuload", ModuleKind::Cpuload),
        ("loadavg", ModuleKind::Loadavg),
        ("memory", ModuleKind::Memory),
        ("psi", ModuleKind::Psi),
        ("connections", ModuleKind::Connections),
        ("command", ModuleKind::Command),
        ("file", ModuleKind::File),
        ("prequal", ModuleKind::Prequal),
    ];
    for (name, kind) in kinds {
        for written in [name.to_owned(), format!("{name}.so")] {
            let conf = ok(&with_director(&format!("service = http\nmodule = {written}\n")));
            assert_eq!(service(&conf).modules, vec![ModuleConf { kind, settings: vec![], line: 3 }]);
        }
    }
}

fn pairs(m: &ModuleConf) -> Vec<(&str, &str)> {
    m.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn module_settings_with_quotes() {
    let text = with_director(
        "service = http\n\
         module = command path=\"/usr/local/bin/load --fast\" timeout_ms=500 # a comment\n\
         module = file PATH=/run/spare scale=1\n\
         module = command path=\"echo \\\"50 # not a comment\\\" \\\\ done\" empty=\n",
    );
    let conf = ok(&text);
    let modules = &service(&conf).modules;
    assert_eq!(modules.len(), 3);
    assert_eq!(modules[0].kind, ModuleKind::Command);
    assert_eq!(pairs(&modules[0]), [("path", "/usr/local/bin/load --fast"), ("timeout_ms", "500")]);
    assert_eq!(modules[1].kind, ModuleKind::File);
    assert_eq!(pairs(&modules[1]), [("path", "/run/spare"), ("scale", "1")], "keys in lower case");
    assert_eq!(pairs(&modules[2]), [("path", "echo \"50 # not a comment\" \\ done"), ("empty", "")]);
    assert_eq!(modules.iter().map(|m| m.line).collect::<Vec<_>>(), [3, 4, 5]);
}

#[test]
fn directors_in_every_form() {
    let text = "director = 192.168.6.1
director = 192.168.6.2:9000
director = [2001:db8::1]:7000
director = [2001:db8::2]
director = 2001:db8::3
director = master.example.org
director = master-2.example.org:7001
service = http
";
    let got: Vec<(String, u16, u32)> =
        ok(text).directors.into_iter().map(|d| (d.host, d.port, d.line)).collect();
    let expected = [
        ("192.168.6.1", 7878, 1),
        ("192.168.6.2", 9000, 2),
        ("2001:db8::1", 7000, 3),
        ("2001:db8::2", 7878, 4),
        ("2001:db8::3", 7878, 5),
        ("master.example.org", 7878, 6),
        ("master-2.example.org", 7001, 7),
    ];
    let expected: Vec<(String, u16, u32)> = expected.iter().map(|&(h, p, l)| (h.to_owned(), p, l)).collect();
    assert_eq!(got, expected);
}

#[test]
fn global_extensions() {
    let text = "agent_id = web1.example.org
key_file = /etc/feedbackd/key
master_timeout = 10s
director = 10.0.0.1
service = http
";
    let conf = ok(text);
    assert_eq!(conf.agent_id.as_deref(), Some("web1.example.org"));
    assert_eq!(conf.key_file.as_deref(), Some("/etc/feedbackd/key"));
    assert_eq!(conf.master_timeout, Some(Duration::from_secs(10)));
    let quoted = ok(&with_director("key_file = \"/etc/feed backd/#key\"\nservice = http\n"));
    assert_eq!(quoted.key_file.as_deref(), Some("/etc/feed backd/#key"));
}

#[test]
fn interval_forms() {
    let cases = [
        ("interval = 1s", 1000),
        ("interval = 500ms", 500),
        ("interval = 2", 2000),
        ("interval = 1.5", 1500),
        ("interval = 0.25s", 250),
        ("interval = 2 S", 2000),
        ("interval = 1m", 60_000),
        ("interval = 1h", 3_600_000),
        ("interval = 50ms", 50),
        ("interval_ms = 750", 750),
        ("INTERVAL_MS = 3600000", 3_600_000),
    ];
    for (line, ms) in cases {
        let conf = ok(&with_director(&format!("{line}\nservice = http\n")));
        assert_eq!(conf.interval, Duration::from_millis(ms), "{line}");
    }
}

#[test]
fn service_extensions() {
    let text = with_director(
        "service = web
  port = 8080
  vip = 192.168.6.10
  address = 10.0.0.5
  combine = Product
  module = cpuload
  module = memory
service = marked
  port = 80
  fwmark = 0x10
  address = 2001:db8::5
  combine = mean
service = plain
  port = 81
  fwmark = 42
",
    );
    let conf = ok(&text);
    let [web, marked, plain] = &conf.services[..] else { panic!("{conf:?}") };
    assert_eq!(
        (web.port, web.vip, web.address, web.combine),
        (8080, Some(ip("192.168.6.10")), Some(ip("10.0.0.5")), Combine::Product)
    );
    assert_eq!(
        web.modules.iter().map(|m| m.kind).collect::<Vec<_>>(),
        [ModuleKind::Cpuload, ModuleKind::Memory]
    );
    assert_eq!(
        (marked.fwmark, marked.vip, marked.address, marked.combine),
        (Some(16), None, Some(ip("2001:db8::5")), Combine::Mean)
    );
    assert_eq!((plain.fwmark, plain.line), (Some(42), 14));
}

#[test]
fn well_known_names_give_the_port() {
    let names = [
        ("http", 80),
        ("https", 443),
        ("ftp", 21),
        ("smtp", 25),
        ("dns", 53),
        ("domain", 53),
        ("pop3", 110),
        ("imap", 143),
        ("ssh", 22),
        ("mysql", 3306),
        ("postgresql", 5432),
        ("HTTPS", 443),
    ];
    for (name, port) in names {
        let conf = ok(&with_director(&format!("service = {name}\n")));
        assert_eq!(service(&conf).port, port, "{name}");
        assert_eq!(service(&conf).name, name, "the name is kept as written");
    }
    let conf = ok(&with_director("service = http\nport = 8080\n"));
    assert_eq!(service(&conf).port, 8080, "a written port wins");
}

#[test]
fn global_keys_may_follow_a_service() {
    let conf = ok("service = http\nport = 80\ndirector = 10.0.0.1\ninterval = 2s\nservice = https\n");
    assert_eq!(conf.directors[0].line, 3);
    assert_eq!(conf.interval, Duration::from_secs(2));
    assert_eq!(conf.services.iter().map(|s| s.port).collect::<Vec<_>>(), [80, 443]);
}

#[test]
fn same_name_different_protocol_is_two_services() {
    let conf = ok(&with_director("service = dns\nprotocol = udp\nservice = dns\nprotocol = tcp\n"));
    assert_eq!(conf.services.len(), 2);
}

// ---- errors ----

#[test]
fn error_display_names_the_line() {
    let e = parse("director = 10.0.0.1\nservice = http\n\n\nport = 8o\n").unwrap_err();
    assert_eq!(e.to_string(), "line 5: port: \"8o\" is not a number between 1 and 65535");
}

#[test]
fn no_director() {
    let e = parse("service = http\n").unwrap_err();
    let message = "no `director = ADDRESS` line (nor `agent_check = ADDR:PORT`)";
    assert_eq!(e, ConfError { line: 0, message: message.into() });
    assert_eq!(e.to_string(), format!("line 0: {message}"));
    fails_with("", 0, &["no `director = ADDRESS` line"]);
}

#[test]
fn no_service() {
    fails_with("director = 10.0.0.1\n# nothing else\n", 0, &["no `service = NAME` line", "service = http"]);
}

#[test]
fn unknown_key_lists_the_valid_keys() {
    fails_with(
        "director = 10.0.0.1\nfrobnicate = 1\n",
        2,
        &[
            "unknown key `frobnicate`",
            "director, agent_id, interval, interval_ms, key_file, master_timeout",
            "service",
        ],
    );
    fails_with(
        &with_director("service = http\n  protcol = TCP\n"),
        3,
        &[
            "unknown key `protcol` in service \"http\"",
            "protocol, port, module, forwarding, vip, fwmark, address, combine",
        ],
    );
}

#[test]
fn service_key_outside_a_service() {
    fails_with(
        "director = 10.0.0.1\n\nport = 80\n",
        3,
        &["`port` is a service key", "start one with `service = NAME`"],
    );
    fails_with("module = cpuload.so\n", 1, &["`module`", "service = NAME"]);
}

#[test]
fn missing_equals() {
    fails_with("director 10.0.0.1\n", 1, &["missing `=` after `director`", "director = VALUE"]);
    fails_with(
        &with_director("service = http\nhello world\n"),
        3,
        &["missing `=`", "KEY = VALUE", "\"hello world\""],
    );
    fails_with(&with_director("= 5\n"), 2, &["expected a key before `=`"]);
}

#[test]
fn duplicate_keys_in_a_block() {
    fails_with(
        &with_director("service = http\nport = 80\nprotocol = tcp\nport = 81\n"),
        5,
        &["duplicate `port` in service \"http\"", "first given on line 3"],
    );
    for key in [
        "protocol = udp",
        "forwarding = DR",
        "vip = 10.0.0.9",
        "fwmark = 3",
        "address = 10.0.0.8",
        "combine = mean",
    ] {
        let text = with_director(&format!("service = x\nport = 1\n{key}\n{key}\n"));
        fails_with(&text, 5, &["duplicate", "first given on line 4"]);
    }
    fails_with(
        &with_director("agent_id = a\nservice = http\nagent_id = b\n"),
        4,
        &["duplicate `agent_id` in the file", "line 2"],
    );
    fails_with(&with_director("key_file = a\nkey_file = b\nservice = http\n"), 3, &["duplicate `key_file`"]);
    fails_with(
        &with_director("master_timeout = 5s\nmaster_timeout = 6s\nservice = http\n"),
        3,
        &["duplicate"],
    );
    fails_with(
        &with_director("interval = 1s\ninterval = 2s\nservice = http\n"),
        3,
        &["duplicate `interval`"],
    );
    fails_with(
        &with_director("interval = 1s\ninterval_ms = 500\nservice = http\n"),
        3,
        &["`interval_ms` repeats `interval` on line 2"],
    );
}

#[test]
fn a_firewall_mark_service_takes_port_0_as_ipvsadm_lists_its_real_servers() {
    // In either order: the check waits for the end of the block.
    for block in ["fwmark = 7\nport = 0\n", "port = 0\nfwmark = 7\n"] {
        let conf = ok(&with_director(&format!("service = fwmark-7\n{block}forwarding = DR\n")));
        let s = &conf.services[0];
        assert_eq!((s.fwmark, s.port, s.forwarding), (Some(7), 0, Forwarding::DirectRouting));
    }
    // A block without a mark does not, even when the next block has one.
    fails_with(
        &with_director("service = a\nport = 0\nservice = b\nfwmark = 7\nport = 0\n"),
        3,
        &["port: \"0\" is only for a firewall-mark service"],
    );
}

#[test]
fn a_new_service_block_resets_the_keys() {
    let conf = ok(&with_director("service = a\nport = 1\nservice = b\nport = 2\n"));
    assert_eq!(conf.services.iter().map(|s| s.port).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn bad_values() {
    let cases: &[(&str, &[&str])] = &[
        ("port = 8o", &["port: \"8o\" is not a number between 1 and 65535"]),
        ("port = 0", &["port: \"0\" is only for a firewall-mark service (`fwmark = N`)", "1 and 65535"]),
        ("port = 00", &["port: \"00\" is not a number between 1 and 65535"]),
        ("port = 65536", &["65535"]),
        ("port = -80", &["65535"]),
        ("port =", &["port: \"\" is not a number"]),
        ("protocol = icmp", &["protocol: \"icmp\" is not TCP, UDP or SCTP"]),
        ("forwarding = magic", &["forwarding: \"magic\" is not NAT", "DR", "TUN"]),
        // The kernel's local method (its own address) is never an agent's.
        ("forwarding = local", &["forwarding: \"local\" is not NAT", "DR", "TUN"]),
        ("vip = 10.0.0", &["vip: \"10.0.0\" is not an IPv4 or IPv6 address"]),
        ("address = host.example", &["address: \"host.example\" is not an IPv4 or IPv6 address"]),
        ("fwmark = 0", &["fwmark: \"0\" is not a mark between 1 and 4294967295"]),
        ("fwmark = 0x", &["fwmark"]),
        ("fwmark = 4294967296", &["fwmark"]),
        ("fwmark = ten", &["fwmark"]),
        ("combine = max", &["combine: \"max\" is not min, mean or product"]),
        ("module =", &["module: expected a module name"]),
        (
            "module = cpuload2.so",
            &[
                "module: unknown module \"cpuload2.so\"",
                "cpuload, loadavg, memory, psi, connections, command, file",
            ],
        ),
        ("module = command path", &["module: setting \"path\" is not KEY=VALUE"]),
        ("module = command path=\"/bin/x", &["module: unterminated double quote"]),
        ("module = command path=a path=b", &["module: setting `path` given twice"]),
        ("module = command pa-th=a", &["module: setting \"pa-th=a\"", "letters, digits and `_`"]),
    ];
    for (line, parts) in cases {
        fails_with(&with_director(&format!("service = http\n{line}\n")), 3, parts);
    }
}

#[test]
fn bad_global_values() {
    let cases: &[(&str, &[&str])] = &[
        ("director =", &["director: expected an address"]),
        ("director = 10.0.0.1:", &["director: port \"\" is not a number between 1 and 65535"]),
        ("director = 10.0.0.1:0", &["director: port \"0\""]),
        ("director = 10.0.0.1:http", &["director: port \"http\""]),
        ("director = 10.0.0.300", &["not a valid IPv4 address"]),
        ("director = 10.0.0.1 7878", &["director: \"10.0.0.1 7878\" is not ADDRESS[:PORT]"]),
        ("director = [10.0.0.1]:7878", &["in brackets is not an IPv6 address"]),
        ("director = [2001:db8::1]7878", &["is not ADDRESS[:PORT]"]),
        ("director = [2001:db8::1", &["is not ADDRESS[:PORT]"]),
        ("director = 2001:db8::zz", &["is not an IPv6 address", "[ADDRESS]:PORT"]),
        ("director = bad..host", &["labels"]),
        ("agent_id = web 1", &["agent_id: \"web 1\" is not one word"]),
        ("agent_id =", &["agent_id: expected a name"]),
        ("key_file =", &["key_file: expected a file name"]),
        ("key_file = \"/etc/key", &["key_file: unterminated double quote"]),
        ("interval = fast", &["interval: \"fast\" is not a duration such as 1s, 500ms or 2 (seconds)"]),
        ("interval = -1s", &["is not a duration"]),
        ("interval = 1.2.3", &["is not a duration"]),
        ("interval = 10ms", &["interval: 10ms is outside 50ms..1h"]),
        ("interval = 2h", &["interval: 2h is outside 50ms..1h"]),
        ("interval = 0", &["interval: 0ms is outside 50ms..1h"]),
        ("interval = 99999999999999999999999s", &["is not a duration"]),
        ("interval_ms = 1s", &["interval_ms: \"1s\" is not a whole number of milliseconds"]),
        ("interval_ms = 49", &["interval_ms: 49ms is outside 50ms..1h"]),
        ("master_timeout = 5 minutes", &["master_timeout: \"5 minutes\" is not a duration"]),
        ("master_timeout = 50ms", &["master_timeout: 50ms is outside 100ms..24h"]),
        ("service =", &["service: expected a name"]),
        ("service = two words", &["service: \"two words\" is not one word"]),
    ];
    for (line, parts) in cases {
        fails_with(&format!("# head\n{line}\nservice = http\n"), 2, parts);
    }
}

#[test]
fn service_without_port_or_well_known_name() {
    fails_with(
        &with_director("service = http\nservice = intranet\n  protocol = tcp\nservice = https\n"),
        3,
        &["service \"intranet\" has no `port = N` line", "not a well-known", "http, https"],
    );
    fails_with(&with_director("service = web\n"), 2, &["service \"web\" has no `port = N` line"]);
}

#[test]
fn fwmark_with_vip() {
    fails_with(
        &with_director("service = http\nvip = 10.0.0.10\nfwmark = 5\n"),
        4,
        &["fwmark: a service matches either a `fwmark` or a `vip`, not both (vip on line 3)"],
    );
    fails_with(
        &with_director("service = http\nfwmark = 5\n\nvip = 10.0.0.10\n"),
        5,
        &["vip: a service matches either a `fwmark` or a `vip`, not both (fwmark on line 3)"],
    );
}

#[test]
fn the_same_service_twice_is_accepted() {
    // The original agent took it, and lvsim's own exporter writes it when a server serves
    // a port both through a firewall mark and directly (it writes no `fwmark` line).
    let conf = ok(&with_director("service = fwmark-1\nport = 80\nservice = http\nport = 80\n"));
    assert_eq!(conf.services.len(), 2);
}

// ---- what a registration can carry (a larger file would be accepted, then panic) ----

/// `n` services, one per port from 1000, after one director line.
fn services(n: usize) -> String {
    with_director(&(0..n).map(|i| format!("service = s{i}\n  port = {}\n", 1000 + i)).collect::<String>())
}

#[test]
fn at_most_32_services_the_33rd_is_refused_on_its_line() {
    assert_eq!(ok(&services(MAX_SERVICES)).services.len(), 32);
    // Line 1 is the director, each service takes two lines: the 33rd starts on line 66.
    fails_with(&services(MAX_SERVICES + 1), 66, &["service: one service too many", "at most 32 services"]);
    // Global keys after the last service do not hide it.
    fails_with(&format!("{}interval = 2s\n", services(40)), 66, &["at most 32"]);
}

#[test]
fn at_most_16_directors_and_none_twice() {
    let directors = |n: usize| (0..n).map(|i| format!("director = 10.0.0.{}\n", i + 1)).collect::<String>();
    assert_eq!(ok(&format!("{}service = http\n", directors(MAX_DIRECTORS))).directors.len(), 16);
    fails_with(&format!("{}service = http\n", directors(17)), 17, &["one director too many", "at most 16"]);
    // The same master twice (the default port written out, the host in another case).
    fails_with(
        "director = lvs1\nservice = http\ndirector = LVS1:7878\n",
        3,
        &["repeats the director on line 1"],
    );
    fails_with("director = 10.0.0.1:9\ndirector = 10.0.0.1:9\nservice = http\n", 2, &["line 1"]);
    // Another port is another master.
    assert_eq!(ok("director = 10.0.0.1\ndirector = 10.0.0.1:7879\nservice = http\n").directors.len(), 2);
}

#[test]
fn at_most_16_modules_a_service() {
    let modules = |n: usize| "  module = cpuload\n".repeat(n);
    assert_eq!(service(&ok(&with_director(&format!("service = http\n{}", modules(16))))).modules.len(), 16);
    fails_with(
        &with_director(&format!("service = http\n{}", modules(17))),
        19,
        &["one module too many", "16"],
    );
}

#[test]
fn agent_ids_are_what_a_registration_carries() {
    let id = "a".repeat(64);
    assert_eq!(ok(&with_director(&format!("agent_id = {id}\nservice = http\n"))).agent_id, Some(id));
    fails_with(
        &with_director(&format!("agent_id = {}\nservice = http\n", "a".repeat(65))),
        2,
        &["65 bytes is longer than 64"],
    );
    fails_with(&with_director("agent_id = wéb1\nservice = http\n"), 2, &["agent_id:", "not printable ASCII"]);
    for id in ["web1.example.org", "rs-1_a", "10.0.0.5"] {
        assert!(wire::valid_agent_id(id), "{id}");
        ok(&with_director(&format!("agent_id = {id}\nservice = http\n")));
    }
}

#[test]
fn the_first_error_wins() {
    fails_with("port = 1\nbogus\n", 1, &["service key"]);
}

// ---- never panics ----

/// Lines made of the grammar's own words, so that the parser gets past `split_line`.
fn line_strategy() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "director",
        "service",
        "protocol",
        "port",
        "module",
        "forwarding",
        "vip",
        "fwmark",
        "address",
        "combine",
        "agent_id",
        "interval",
        "interval_ms",
        "key_file",
        "master_timeout",
        "bogus",
        "",
    ]);
    let val = prop::sample::select(vec![
        "",
        "http",
        "80",
        "0",
        "65536",
        "tcp",
        "udp",
        "NAT",
        "dr",
        "10.0.0.1",
        "[::1]:7",
        "::1",
        "[",
        "]:",
        "cpuload.so",
        "command path=\"x # y\" timeout_ms=5",
        "file path=",
        "\"",
        "\\",
        "0x1f",
        "1.5s",
        "10ms",
        "9999999999999999999999h",
        ".",
        "min",
        "é",
        "#",
        "=",
    ]);
    (key, val, "[ \t=#\"]{0,2}").prop_map(|(k, v, junk)| format!("{k}{junk} = {v}"))
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_ascii_lines_never_panic(text in "([ -~\t]{0,40}\n){0,8}") {
        let _ = parse(&text);
    }

    #[test]
    fn grammar_like_text_never_panics(lines in prop::collection::vec(line_strategy(), 0..12)) {
        let text = lines.join("\n");
        if let Err(e) = parse(&text) {
            let count = u32::try_from(lines.len()).unwrap();
            prop_assert!(e.line <= count, "line {} of {count}: {}", e.line, e.message);
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn errors_are_on_a_real_line_or_line_0(text in "(director = 10.0.0.1\n)?(service = http\n)?([a-z_]{0,12} ?=? ?[ -~]{0,12}\n){0,6}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.line as usize <= text.lines().count());
        }
    }
}

#[test]
fn agent_check_lines_name_a_service_and_may_replace_the_director() {
    // HAProxy only: no director needed.
    let conf = ok("agent_check = 0.0.0.0:5555/dns\nservice = http\nservice = dns\n  protocol = UDP\n");
    assert!(conf.directors.is_empty());
    let addr = "0.0.0.0:5555".parse().unwrap();
    assert_eq!(conf.agent_checks, vec![AgentCheckConf { addr, service: 1, line: 1 }]);
    let conf =
        ok(&with_director("service = http\nagent_check = [::1]:5555\nagent_check = 127.0.0.1:5556/80\n"));
    assert_eq!(conf.agent_checks.iter().map(|c| (c.service, c.line)).collect::<Vec<_>>(), [(0, 3), (0, 4)]);
    fails_with("service = http\n", 0, &["no `director", "agent_check"]);
    fails_with(
        &with_director("agent_check = 127.0.0.1:5555/ftp\nservice = http\n"),
        2,
        &["agent_check: no service \"ftp\"", "http (port 80)"],
    );
    fails_with(&with_director("agent_check = localhost:5555\nservice = http\n"), 2, &["not ADDR:PORT"]);
    fails_with(
        &with_director("service = http\nagent_check = 127.0.0.1:5555\nagent_check = 127.0.0.1:5555/http\n"),
        4,
        &["127.0.0.1:5555 is already on line 3"],
    );
    let many: String =
        (0..=MAX_AGENT_CHECKS).map(|i| format!("agent_check = 127.0.0.1:{}\n", 6000 + i)).collect();
    fails_with(&with_director(&format!("service = http\n{many}")), 35, &["at most 32"]);
}
