#![no_main]
//! See kaudit_fuzz::checks::pipeline_batch.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::checks::pipeline_batch(data));
