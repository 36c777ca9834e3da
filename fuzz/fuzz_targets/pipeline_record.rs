#![no_main]
//! See kaudit_fuzz::checks::pipeline_record.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::checks::pipeline_record(data));
