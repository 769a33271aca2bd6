//! The shipped example configuration parses and builds its load modules.

use feedbackd_agent::load::{ServiceLoad, Sources};
use lvs_ipvs::Forwarding;

#[test]
fn the_shipped_example_configuration_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/examples/feedbackd-agent.conf");
    let conf = feedbackd_proto::conf::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(conf.directors.len(), 2);
    assert_eq!(conf.directors[1].port, 7878);
    assert_eq!(conf.services.len(), 2);
    assert_eq!(conf.services[1].forwarding, Forwarding::DirectRouting);
    for s in &conf.services {
        ServiceLoad::from_conf(s, &Sources::default()).unwrap();
    }
}
