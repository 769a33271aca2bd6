//! Any bytes through every decoder: must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| feedbackd_proto::fuzzing::decode(data));
