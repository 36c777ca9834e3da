#![no_main]
//! See kaudit_fuzz::hosts::envoy_settings.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kaudit_fuzz::hosts::envoy_settings(data));
