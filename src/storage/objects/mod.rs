//! Object endpoints, one file per operation.

pub mod copy_move;
pub mod download;
pub mod info;
pub mod list;
pub mod remove;
pub mod upload;
