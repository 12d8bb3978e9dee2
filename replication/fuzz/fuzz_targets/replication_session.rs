//! An arbitrary sequence of messages through the stateful decoder and the
//! transaction assembler: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fluxbase_replication::fuzzing::decode_session(data);
});
