//! REST write tests.

#[allow(unused_imports)]
use super::*;
