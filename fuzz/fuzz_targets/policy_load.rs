#![no_main]
//! See kaudit_fuzz::checks::policy_load.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::checks::policy_load(data));
