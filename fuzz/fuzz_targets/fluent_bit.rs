#![no_main]
//! See kaudit_fuzz::hosts::fluent_bit.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::hosts::fluent_bit(data));
