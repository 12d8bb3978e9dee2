//! REST rpc tests.

#[allow(unused_imports)]
use super::*;
