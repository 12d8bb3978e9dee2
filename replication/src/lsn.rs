//! [`Lsn`]: a position in PostgreSQL's write-ahead log.
//!
//! PostgreSQL prints an LSN as two hexadecimal halves separated by a slash
//! (`16/B374D848`); on the wire it is a big-endian `u64`. Ordering of LSNs is
//! the ordering of WAL positions.

use std::fmt;
use std::str::FromStr;

/// A WAL position (log sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The invalid position `0/0`, used by PostgreSQL for "none".
    pub const ZERO: Lsn = Lsn(0);

    /// True for `0/0`.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// An LSN text that is not of the form `X/X` with hexadecimal halves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hexadecimal numbers separated by '/', like 16/B374D848")]
pub struct ParseLsnError(pub String);

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(s.to_owned());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let valid = |h: &str| !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid(hi) || !valid(lo) {
            return Err(err());
        }
        let hi = u64::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((hi << 32) | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl From<u64> for Lsn {
    fn from(v: u64) -> Self {
        Lsn(v)
    }
}

impl From<Lsn> for u64 {
    fn from(l: Lsn) -> Self {
        l.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_form() {
        for s in ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/1"] {
            let l: Lsn = s.parse().expect("valid");
            assert_eq!(l.to_string(), s);
        }
        assert_eq!("16/B374D848".parse::<Lsn>().map(u64::from), Ok(0x16_B374_D848));
    }

    #[test]
    fn rejects_malformed_text() {
        for s in ["", "/", "1/", "/1", "1", "g/0", "1/2/3", "123456789/0", " 1/0", "-1/0"] {
            assert!(s.parse::<Lsn>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn orders_by_position() {
        assert!(Lsn(1) < Lsn(2));
        assert!("1/0".parse::<Lsn>().expect("valid") > "0/FFFFFFFF".parse::<Lsn>().expect("valid"));
    }
}
