//! A sweep's points: their product is bounded before any is built.

use std::path::Path;

use scenarios::load_str;

fn scenario(axes: &str) -> String {
    format!(
        "Scenario(\n    duration_s: 10.0,\n    topology: \"tutorial-nat\",\n    clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],\n    sweep: [{axes}],\n)\n"
    )
}

#[test]
fn a_sweep_of_too_many_points_is_refused_at_sweep_without_overflow() {
    // 2^100 points: the product overflows a usize; 100 axes of two values each.
    let axis = "Axis(field: \"seed\", values: [1, 2])";
    let text = scenario(&vec![axis; 100].join(", "));
    let l = load_str("s.ron", "s", &text, Path::new("."), &[]).expect("the scenario itself is valid");
    let e = l.sweep_points().expect_err("2^100 points accepted");
    assert!(e.to_string().starts_with("s.ron:5:"), "{e}");
    assert!(e.message.contains("at most 10000"), "{e}");
    // Within the limit, no overflow: 10,000 exactly is the most.
    let big = format!(
        "Axis(field: \"seed\", values: [{}])",
        (1..=101).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    );
    let l = load_str("s.ron", "s", &scenario(&[big.as_str(), big.as_str()].join(", ")), Path::new("."), &[])
        .unwrap();
    assert!(l.sweep_points().unwrap_err().message.contains("10201 points"));
    let ok = "Axis(field: \"seed\", values: [1, 2, 3])";
    let l = load_str("s.ron", "s", &scenario(&[ok, ok].join(", ")), Path::new("."), &[]).unwrap();
    assert_eq!(l.sweep_points().unwrap().len(), 9);
}
