//! One arbitrary message through every pgoutput and walsender decoder:
//! never panics, and what decodes re-encodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fluxbase_replication::fuzzing::decode_message(data);
});
