#![no_main]
//! See kaudit_fuzz::checks::query.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::checks::query(data));
