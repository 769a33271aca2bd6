//! Any byte stream into a master, with and without a key: must never panic, and without
//! the key must never change a weight.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    feedbackd_proto::fuzzing::master(data, true);
    feedbackd_proto::fuzzing::master(data, false);
});
