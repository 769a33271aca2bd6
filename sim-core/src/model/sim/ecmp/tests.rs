//! The router against hand-computed ranges and buckets.

use super::*;
use lvs_sched::Protocol;

const ALL4: [bool; 4] = [true; 4];

#[test]
fn hash_threshold_ranges_split_the_31_bit_hash_and_rebalance_over_the_live_next_hops() {
    let q = 1i64 << 29;
    assert_eq!(threshold_bounds(&ALL4), vec![q - 1, 2 * q - 1, 3 * q - 1, 4 * q - 1]);
    // Next hop 1 dies: DIV_ROUND_CLOSEST(w << 31, 3) - 1 for w = 1, 2, 3.
    let three = threshold_bounds(&[true, false, true, true]);
    assert_eq!(three, vec![715_827_882, -1, 1_431_655_764, 2_147_483_647]);
    assert_eq!(threshold_select(&three, 0), Some(0));
    assert_eq!(threshold_select(&three, 715_827_882), Some(0));
    assert_eq!(threshold_select(&three, 715_827_883), Some(2));
    assert_eq!(threshold_select(&three, (1 << 31) - 1), Some(3));
    assert_eq!(threshold_select(&[-1, -1], 5), None);
}

#[test]
fn losing_a_next_hop_moves_a_third_or_a_half_of_the_flows_by_hash_threshold() {
    // The second of four dies: its quarter moves, and 1/12 of the survivors' flows with
    // it: the stay-put parts are 2^29 + 357913941 + 2^29 of 2^31.
    let mut r = Router::new(HashPolicy::L3L4, NexthopSelection::HashThreshold, ALL4.to_vec(), 1);
    let moved = r.set_member(1, false);
    assert_eq!(moved, 715_827_883.0 / 2_147_483_648.0);
    assert!((moved - 1.0 / 3.0).abs() < 1e-9);
    // The last of four: half of all flows move.
    let mut r = Router::new(HashPolicy::L3L4, NexthopSelection::HashThreshold, ALL4.to_vec(), 1);
    assert_eq!(r.set_member(3, false), 0.5);
    assert_eq!(r.set_member(3, false), 0.0, "no change, nothing moves");
}

#[test]
fn resilient_buckets_go_to_the_last_underweight_next_hop_first_and_only_the_dead_ones_move() {
    let mut b = vec![None; 8];
    resilient_rebalance(&mut b, &ALL4);
    assert_eq!(b, [3, 3, 2, 2, 1, 1, 0, 0].map(Some));
    // Next hop 1 leaves: wants 3, 2, 3 (DIV_ROUND_CLOSEST(8w, 3)); its two buckets go to
    // 3 then 0; nothing else moves.
    resilient_rebalance(&mut b, &[true, false, true, true]);
    assert_eq!(b, [3, 3, 2, 2, 3, 0, 0, 0].map(Some));
    // It comes back: the first bucket of each over-weight next hop (3, then 0) goes to it.
    resilient_rebalance(&mut b, &ALL4);
    assert_eq!(b, [1, 3, 2, 2, 3, 1, 0, 0].map(Some));
    let mut r = Router::new(HashPolicy::L3, NexthopSelection::Resilient { buckets: 128 }, ALL4.to_vec(), 9);
    assert_eq!(r.set_member(2, false), 0.25, "resilient 4 -> 3 moves the dead one's quarter only");
}

fn flow(i: u32, sport: u16) -> Flow {
    Flow {
        protocol: Protocol::Tcp,
        saddr: std::net::IpAddr::V4((0x0a01_0000 + i).into()),
        sport,
        daddr: "192.0.2.1".parse().unwrap(),
        dport: 80,
    }
}

#[test]
fn the_hash_covers_ports_under_l3l4_only_and_spreads_flows_evenly() {
    let l3 = Router::new(HashPolicy::L3, NexthopSelection::HashThreshold, ALL4.to_vec(), 7);
    let l4 = Router::new(HashPolicy::L3L4, NexthopSelection::HashThreshold, ALL4.to_vec(), 7);
    assert_eq!(l3.hash(&flow(1, 1000)), l3.hash(&flow(1, 2000)), "policy 0: addresses only");
    assert_ne!(l4.hash(&flow(1, 1000)), l4.hash(&flow(1, 2000)));
    let other = Router::new(HashPolicy::L3, NexthopSelection::HashThreshold, ALL4.to_vec(), 8);
    assert_ne!(l3.hash(&flow(1, 1000)), other.hash(&flow(1, 1000)), "the key is the seed's");
    let mut per = [0u32; 4];
    for i in 0..20_000 {
        assert!(l4.hash(&flow(i, 40_000)) < 1 << 31);
        per[l4.select(&flow(i, 40_000)).unwrap()] += 1;
    }
    // 5000 each, binomial sd ~61: within 5 sd.
    assert!(per.iter().all(|&n| (4700..=5300).contains(&n)), "{per:?}");
}

#[test]
fn flows_move_as_the_shares_say() {
    // Over many flows, hash-threshold 4 -> 3 (second dies) moves 1/3, resilient 1/4.
    let flows: Vec<Flow> = (0..40_000).map(|i| flow(i, 50_000)).collect();
    for (sel, want) in
        [(NexthopSelection::HashThreshold, 1.0 / 3.0), (NexthopSelection::Resilient { buckets: 256 }, 0.25)]
    {
        let mut r = Router::new(HashPolicy::L3L4, sel, ALL4.to_vec(), 3);
        let before: Vec<_> = flows.iter().map(|f| r.select(f)).collect();
        r.set_member(1, false);
        let moved = flows.iter().zip(&before).filter(|(f, b)| r.select(f) != **b).count();
        let share = moved as f64 / flows.len() as f64;
        assert!((share - want).abs() < 0.015, "{sel:?}: {share}");
        assert!(flows.iter().all(|f| r.select(f) != Some(1)), "nothing goes to the dead one");
    }
}
