//! REST security tests.

#[allow(unused_imports)]
use super::*;
