//! [`Position`]: where a change sits in the log.
//!
//! A position is `(commit_end_lsn, index_in_transaction)`. Only commit LSNs
//! are monotonic in the WAL, so per-change LSNs are never used as cursors.
//! Text form: `<LSN>:<index>`, e.g. `16/B374D848:3`; it is the SSE event id
//! and what clients resume from.

use std::fmt;
use std::str::FromStr;

use fluxbase_replication::Lsn;

/// A change's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// The commit's end LSN.
    pub lsn: Lsn,
    /// Index of the change within its transaction.
    pub index: u32,
}

impl Position {
    /// The position before every change.
    pub const START: Position = Position { lsn: Lsn::ZERO, index: 0 };

    /// A position.
    pub fn new(lsn: Lsn, index: u32) -> Position {
        Position { lsn, index }
    }

    /// The position after every change of the transaction ending at `lsn`.
    pub fn end_of(lsn: Lsn) -> Position {
        Position { lsn, index: u32::MAX }
    }
}

/// A position text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position {0:?}: expected <LSN>:<index>, like 16/B374D848:3, or an LSN like 16/B374D848")]
pub struct ParsePositionError(pub String);

impl FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePositionError(s.to_owned());
        match s.split_once(':') {
            Some((lsn, idx)) => {
                let lsn: Lsn = lsn.parse().map_err(|_| err())?;
                let index: u32 = idx.parse().map_err(|_| err())?;
                Ok(Position { lsn, index })
            }
            // A bare LSN means "after everything committed at or before it".
            None => s.parse::<Lsn>().map(Position::end_of).map_err(|_| err()),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.lsn, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_order() {
        let p: Position = "16/B374D848:3".parse().expect("valid");
        assert_eq!(p.to_string(), "16/B374D848:3");
        assert!(p < "16/B374D848:4".parse().expect("valid"));
        assert!(p < "16/B374D849:0".parse().expect("valid"));
        let bare: Position = "16/B374D848".parse().expect("bare lsn");
        assert!(bare > p);
        for bad in ["", "x", "1/2:", "1/2:-1", "1/2:x", ":3", "1/2:3:4"] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?}");
        }
    }
}
