#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| supervisor_fuzz::review(data));
