#![no_main]
//! See kaudit_fuzz::checks::rule_pack.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::checks::rule_pack(data));
