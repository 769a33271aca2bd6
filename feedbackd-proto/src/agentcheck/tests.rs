use proptest::prelude::*;

use super::*;

fn reply(percent: Option<u32>, admin: Option<AdminState>, health: Option<Health>) -> AgentCheckReply {
    AgentCheckReply { percent, admin, health, ..AgentCheckReply::default() }
}

#[test]
fn the_words_of_haproxys_manual() {
    // Each example of the "agent-check" section of HAProxy 2.6's configuration manual.
    assert_eq!(parse_reply("75%\n").unwrap(), reply(Some(75), None, None));
    assert_eq!(parse_reply("maxconn:30").unwrap().maxconn, Some(30));
    assert_eq!(parse_reply("ready").unwrap(), reply(None, Some(AdminState::Ready), None));
    assert_eq!(parse_reply("drain").unwrap(), reply(None, Some(AdminState::Drain), None));
    assert_eq!(parse_reply("maint").unwrap(), reply(None, Some(AdminState::Maint), None));
    assert_eq!(parse_reply("up").unwrap(), reply(None, None, Some(Health::Up)));
    let r = parse_reply("down #missing process\r\n").unwrap();
    assert_eq!((r.health, r.description.as_deref()), (Some(Health::Down), Some("missing process")));
    assert_eq!(parse_reply("fail").unwrap().health, Some(Health::Fail));
    assert_eq!(
        parse_reply("stopped#by the operator").unwrap().description.as_deref(),
        Some("by the operator")
    );
    // "a series of words delimited by spaces, tabs or commas in any order".
    let r = parse_reply("up,\t 50% ,maxconn:10 DRAIN").unwrap();
    assert_eq!(
        r,
        AgentCheckReply { maxconn: Some(10), ..reply(Some(50), Some(AdminState::Drain), Some(Health::Up)) }
    );
    // 0% is a weight (HAProxy shows it as DRAIN); the last word of a kind counts.
    assert_eq!(parse_reply("0%").unwrap().percent, Some(0));
    assert_eq!(parse_reply("10% 20% ready maint").unwrap(), reply(Some(20), Some(AdminState::Maint), None));
}

#[test]
fn only_the_first_line_counts_and_an_empty_one_changes_nothing() {
    assert_eq!(parse_reply("").unwrap(), AgentCheckReply::default());
    assert_eq!(parse_reply("\n").unwrap(), AgentCheckReply::default());
    assert_eq!(parse_reply("   ,, \t").unwrap(), AgentCheckReply::default());
    assert_eq!(parse_reply("80%\nbogus words\n").unwrap().percent, Some(80));
    assert_eq!(parse_reply("80%\rdown").unwrap().health, None);
    // '#' begins the description, wherever it is.
    assert_eq!(parse_reply("#").unwrap(), AgentCheckReply::default());
    let r = parse_reply("up#x, y").unwrap();
    assert_eq!((r.health, r.description.as_deref()), (Some(Health::Up), Some("x, y")));
}

#[test]
fn bad_replies_say_what_is_wrong() {
    assert!(matches!(parse_reply("75 %"), Err(ReplyError::UnknownWord(w)) if w == "75"));
    for bad in ["7.5%", "75%%", "1%0", "25601%", "99999999999%"] {
        assert!(matches!(parse_reply(bad), Err(ReplyError::Percent(_))), "{bad}");
    }
    for bad in ["maxconn:", "maxconn:-1", "maxconn:x", "maxconn:99999999999"] {
        assert!(matches!(parse_reply(bad), Err(ReplyError::Maxconn(_))), "{bad}");
    }
    assert!(matches!(parse_reply("HTTP/1.1 200 OK"), Err(ReplyError::UnknownWord(_))));
    assert_eq!(parse_reply("up\0"), Err(ReplyError::Control(2)));
    assert_eq!(parse_reply(&"a".repeat(MAX_REPLY_BYTES)), Err(ReplyError::TooLong));
    assert_eq!(
        parse_reply(&format!("{}\n", " ".repeat(MAX_REPLY_BYTES - 1))),
        Ok(AgentCheckReply::default())
    );
    // A long unknown word is quoted shortened.
    let e = parse_reply(&"x".repeat(500)).unwrap_err().to_string();
    assert!(e.len() < 200, "{e}");
}

#[test]
fn an_agents_reply_reads_back() {
    assert_eq!(format_reply(Some(750), AdminState::Ready), "75% ready up\n");
    assert_eq!(format_reply(Some(0), AdminState::Drain), "0% drain up\n");
    assert_eq!(format_reply(Some(1000), AdminState::Maint), "100% maint up\n");
    assert_eq!(format_reply(None, AdminState::Ready), "ready up\n");
    assert_eq!(percent_of(994), 99);
    assert_eq!(percent_of(995), 100);
    assert_eq!(percent_of(u16::MAX), 100);
}

#[test]
fn a_checker_keeps_what_a_reply_does_not_say() {
    let mut a = Advertised::default();
    assert_eq!(a.for_master(), (AdminState::Ready, None));
    a.apply(&parse_reply("60%").unwrap());
    assert_eq!(a.for_master(), (AdminState::Ready, Some(600)));
    a.apply(&parse_reply("drain").unwrap());
    assert_eq!(a.for_master(), (AdminState::Drain, Some(600)));
    a.apply(&parse_reply("30%").unwrap());
    assert_eq!(a.for_master(), (AdminState::Drain, Some(300)), "drain stays until ready");
    a.apply(&parse_reply("ready").unwrap());
    assert_eq!(a.for_master(), (AdminState::Ready, Some(300)));
    a.apply(&parse_reply("down#gone").unwrap());
    assert_eq!(a.for_master(), (AdminState::Drain, Some(300)), "down drains");
    a.apply(&parse_reply("maint").unwrap());
    assert_eq!(a.for_master(), (AdminState::Maint, Some(300)));
    a.apply(&parse_reply("up ready 250%").unwrap());
    assert_eq!(a.for_master(), (AdminState::Ready, Some(1000)), "above 100% is full capacity");
    assert_eq!(a.to_string(), "250% ready up");
}

fn admin() -> impl Strategy<Value = AdminState> {
    prop_oneof![Just(AdminState::Ready), Just(AdminState::Drain), Just(AdminState::Maint)]
}

proptest! {
    #[test]
    fn format_then_parse_gives_back_the_percent_and_state(c in proptest::option::of(0u16..=1000), a in admin()) {
        let r = parse_reply(&format_reply(c, a)).unwrap();
        prop_assert_eq!(r.percent, c.map(percent_of));
        prop_assert_eq!(r.admin, Some(a));
        prop_assert_eq!(r.health, Some(Health::Up));
        let mut adv = Advertised::default();
        adv.apply(&r);
        let (admin, cap) = adv.for_master();
        prop_assert_eq!(admin, a);
        if let (Some(c), Some(back)) = (c, cap) {
            prop_assert!((i32::from(c) - i32::from(back)).abs() <= 5);
        }
    }

    #[test]
    fn any_text_parses_or_fails_without_panicking(s in ".{0,1200}") {
        let _ = parse_reply(&s);
    }

    #[test]
    fn word_soup_parses_or_fails_without_panicking(
        words in proptest::collection::vec(
            prop_oneof![
                Just("up".to_owned()), Just("DOWN".to_owned()), Just("#".to_owned()), Just(",".to_owned()),
                Just("maxconn:".to_owned()), "[0-9]{0,6}%?", "[a-z:%#]{1,8}", Just("\t".to_owned()),
            ],
            0..20,
        )
    ) {
        let line = words.join(" ");
        if let Ok(r) = parse_reply(&line) {
            prop_assert!(r.percent.is_none_or(|p| p <= MAX_PERCENT));
        }
    }
}
