//! libFuzzer entry for `vdi_fuzz::webhook_review` (see the crate's documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vdi_fuzz::webhook_review(data));
