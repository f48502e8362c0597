//! libFuzzer entry for `vdi_fuzz::agent_messages` (see the crate's documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vdi_fuzz::agent_messages(data));
