//! End-to-end tests of `lvsim ipvs replay` through the binary: output formats, stdin,
//! error messages that name file, line and column, and exit codes.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn lvsim(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning lvsim");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or("").as_bytes()).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("waiting for lvsim")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const WRR: &str = "-A -t 10.0.0.1:80 -s wrr\n\
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 4\n\
-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 3\n\
-a -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 2\n\
connect -t 10.0.0.1:80 from 192.168.0.7 x 12\n";

#[test]
fn wrr_follows_the_kernels_period_from_stdin() {
    let out = lvsim(&["ipvs", "replay", "-"], Some(WRR));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let picks: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().trim_end_matches(":80").to_owned())
        .collect();
    // Added one by one, wrr starts with cw = 1: one round over the list (most recently added
    // first), then the interleaved period A B A C B A C B A (SPEC 1.3).
    let expected = [
        "10.0.0.4", "10.0.0.3", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.4", "10.0.0.3",
        "10.0.0.2", "10.0.0.4", "10.0.0.3", "10.0.0.2",
    ];
    assert_eq!(picks, expected);
    assert!(text(&out.stdout).starts_with("#1 192.168.0.7:32768 TCP 10.0.0.1:80 -> 10.0.0.4:80\n"));
}

#[test]
fn json_lines_carry_every_field() {
    let input = format!(
        "{WRR}-e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 0\n-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0\n-e -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 0\nconnect -t 10.0.0.1:80 from 192.168.0.8:5000\nlist\n"
    );
    let out = lvsim(&["ipvs", "replay", "--json", "-"], Some(&input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 14);
    assert_eq!(lines[0]["conn"], 1);
    assert_eq!(lines[0]["line"], 5);
    assert_eq!(lines[0]["dest"], "10.0.0.4:80");
    assert_eq!(lines[12]["client"], "192.168.0.8:5000");
    assert_eq!(lines[12]["dest"], serde_json::Value::Null, "every server quiescent: none");
    assert!(lines[13]["list"].as_str().unwrap().contains("TCP  10.0.0.1:80 wrr"));
}

#[test]
fn malformed_file_names_file_line_and_column_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("lvsim-replay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.replay");
    std::fs::write(&path, "-A -t 10.0.0.1:80 -s wlc\n\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w lots\n").unwrap();
    let out = lvsim(&["ipvs", "replay", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:3:34:", path.display())), "{err}");
    assert!(err.contains("illegal weight \"lots\""), "{err}");
    assert!(out.stdout.is_empty(), "nothing is replayed from a malformed file");

    let out = lvsim(&["ipvs", "replay", "-"], Some("connect -t 10.0.0.1:80 frm 1.2.3.4\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("<stdin>:1:24: expected `connect"), "{}", text(&out.stderr));

    let out = lvsim(&["ipvs", "replay", "/nonexistent/x.replay"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading /nonexistent/x.replay"));
}

#[test]
fn refused_command_names_its_line_and_exits_1_after_earlier_output() {
    let input = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m\nconnect -t 10.0.0.1:80 from 1.1.1.1:1000\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m\n";
    let out = lvsim(&["ipvs", "replay", "-"], Some(input));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "#1 1.1.1.1:1000 TCP 10.0.0.1:80 -> 10.0.0.2:80\n");
    assert!(
        text(&out.stderr).contains("line 4: ipvsadm: real server already exists"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn expiry_in_virtual_time_changes_the_least_connection_choice() {
    // Two equal servers; a reset entry stays in InActConn for 10 s (CLOSE) and weighs 1 in
    // the overhead, so the next pick avoids its server until the entry expires.
    let input = "-A -t 10.0.0.1:80 -s lc\n\
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m\n\
-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m\n\
connect -t 10.0.0.1:80 from 1.1.1.1 x 2\n\
reset 1 2\n\
connect -t 10.0.0.1:80 from 1.1.1.2\n\
reset 3\n\
advance 9s\n\
connect -t 10.0.0.1:80 from 1.1.1.3\n\
reset 4\n\
advance 1s\n\
connect -t 10.0.0.1:80 from 1.1.1.4\n";
    let out = lvsim(&["ipvs", "replay", "-"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let picks: Vec<String> =
        text(&out.stdout).lines().map(|l| l.rsplit(' ').next().unwrap().to_owned()).collect();
    // #1 -> .3 (list front), #2 -> .2; #3: tie 1/1 -> .3; #4: .3 has 2 inactive -> .2;
    // after 10 s entries 1-3 expired, #4's (armed at 9 s) still counts -> .3.
    assert_eq!(picks, ["10.0.0.3:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.2:80", "10.0.0.3:80"]);
}

#[test]
fn help_explains_the_format() {
    let out = lvsim(&["ipvs", "replay", "--help"], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["connect -t VIP:PORT", "close N", "advance 120s", "--json", "--kernel", "docs/replay.md"] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
}

#[test]
fn list_options_print_ipvsadm_listings() {
    let input = "-A -t 10.0.0.1:80 -s rr -p 600 -M 255.255.255.0\n\
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -x 9 -y 3\n\
connect -t 10.0.0.1:80 from 192.168.0.7\n\
connect -t 10.0.0.1:80 from 192.168.0.8\n\
close 2\n\
advance 30s\n\
list --thresholds\n\
list --persistent-conn\n\
list --stats --exact\n\
list -c\n";
    let out = lvsim(&["ipvs", "replay", "-"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = concat!(
        "#1 192.168.0.7:32768 TCP 10.0.0.1:80 -> 10.0.0.2:80\n",
        "#2 192.168.0.8:32768 TCP 10.0.0.1:80 -> 10.0.0.2:80\n",
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
        "  -> RemoteAddress:Port\n",
        "TCP  10.0.0.1:80 rr persistent 600 mask 255.255.255.0\n",
        "  -> 10.0.0.2:80                  9          3          1          1         \n",
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
        "  -> RemoteAddress:Port\n",
        "TCP  10.0.0.1:80 rr persistent 600 mask 255.255.255.0\n",
        "  -> 10.0.0.2:80                  1         1           1          1         \n",
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  10.0.0.1:80                         2        0        0        0        0\n",
        "  -> 10.0.0.2:80                         2        0        0        0        0\n",
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(expected), "{stdout}");
    // One template for the /24 (assured: its first connection was established), the
    // open connection (900 s - 30 s) and the closed one in TIME_WAIT (120 s - 30 s).
    let mut rows: Vec<&str> = stdout[expected.len()..].lines().collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [
            "TCP 01:30  TIME_WAIT   192.168.0.8:32768  10.0.0.1:80        10.0.0.2:80",
            "TCP 09:30  ASSURED     192.168.0.0:0      10.0.0.1:80        10.0.0.2:80",
            "TCP 14:30  ESTABLISHED 192.168.0.7:32768  10.0.0.1:80        10.0.0.2:80",
        ]
    );
}

#[test]
fn bad_list_options_name_line_and_column() {
    let out = lvsim(&["ipvs", "replay", "-"], Some("-A -t 10.0.0.1:80\n  list -c --stats\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("<stdin>:2:8: options conflicts in the list command"), "{err}");
    let out = lvsim(&["ipvs", "replay", "-"], Some("list --stats --sats\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("<stdin>:1:14: unknown listing option \"--sats\""), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn syn_send_and_sysctl_lines_print_in_text_and_json() {
    let input = "-A -t 10.0.0.1:80 -s rr\n\
                 -a -t 10.0.0.1:80 -r 10.2.0.1:80 -m\n\
                 connect -t 10.0.0.1:80 from 10.3.0.1\n\
                 syn -t 10.0.0.1:80 from 10.9.0.1\n\
                 send 1\n\
                 sysctl net.ipv4.vs.amemthresh 1000000000\n\
                 sysctl drop_entry 1\n\
                 sysctl drop_entry\n\
                 -d -t 10.0.0.1:80 -r 10.2.0.1:80\n\
                 send 1\n";
    let out = lvsim(&["ipvs", "replay", "-"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "#1 10.3.0.1:32768 TCP 10.0.0.1:80 -> 10.2.0.1:80\n\
         #2 10.9.0.1:32768 TCP 10.0.0.1:80 -> 10.2.0.1:80\n\
         #1 send -> 10.2.0.1:80\n\
         net.ipv4.vs.drop_entry = 2\n\
         #1 send -> lost\n"
    );
    let out = lvsim(&["ipvs", "replay", "--json", "-"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines[2], serde_json::json!({"conn": 1, "line": 5, "send": "10.2.0.1:80"}));
    assert_eq!(lines[3], serde_json::json!({"line": 8, "sysctl": "drop_entry", "value": 2}));
    assert_eq!(lines[4], serde_json::json!({"conn": 1, "line": 10, "send": "lost"}));
    // A SYN is not a connection: sending on it is refused with its line and column.
    let out = lvsim(&["ipvs", "replay", "-"], Some("syn -t 10.0.0.1:80 from 10.9.0.1\nsend 1\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(":2:6: 1 is a lone SYN"), "{}", text(&out.stderr));
}
