//! DICOM UIDs, validated once at the boundary: the only strings the spool builds file names from.
//! Syntax per PS3.5 §9.1: 1..64 chars of digits and dots, no empty component, no leading zero.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A syntactically valid DICOM UID. Because it contains only digits and dots and never an empty
/// component, it can be used as a path component without any risk of traversal (`.`/`..`/`/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uid(String);

/// Why a string is not a DICOM UID. The offending value is kept (truncated) for the error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DICOM UID {value:?}: {reason}")]
pub struct UidError {
    pub value: String,
    pub reason: UidErrorReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UidErrorReason {
    #[error("empty")]
    Empty,
    #[error("longer than 64 characters")]
    TooLong,
    #[error("contains a character other than a digit or '.'")]
    BadCharacter,
    #[error("has an empty component")]
    EmptyComponent,
    #[error("has a multi-digit component with a leading zero")]
    LeadingZero,
}

pub const MAX_UID_LEN: usize = 64;

impl Uid {
    /// Strict parse: the string must be exactly a UID.
    pub fn parse(s: &str) -> Result<Uid, UidError> {
        match check(s) {
            Ok(()) => Ok(Uid(s.to_owned())),
            Err(reason) => Err(UidError {
                value: shorten(s),
                reason,
            }),
        }
    }

    /// Parse a value as read from a DICOM UI element: UI values are padded to even length with a
    /// trailing NUL, and some writers pad with spaces; that padding is removed, nothing else.
    pub fn from_dicom(s: &str) -> Result<Uid, UidError> {
        Uid::parse(s.trim_end_matches(['\0', ' ']))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(s: &str) -> Result<(), UidErrorReason> {
    if s.is_empty() {
        return Err(UidErrorReason::Empty);
    }
    if s.len() > MAX_UID_LEN {
        return Err(UidErrorReason::TooLong);
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(UidErrorReason::BadCharacter);
    }
    for component in s.split('.') {
        if component.is_empty() {
            return Err(UidErrorReason::EmptyComponent);
        }
        if component.len() > 1 && component.starts_with('0') {
            return Err(UidErrorReason::LeadingZero);
        }
    }
    Ok(())
}

/// Error messages carry the rejected value, but never more than a UID's worth of it.
fn shorten(s: &str) -> String {
    s.chars().take(MAX_UID_LEN + 8).collect()
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Uid {
    type Error = UidError;
    fn try_from(s: String) -> Result<Self, UidError> {
        check(&s)
            .map(|()| Uid(s.clone()))
            .map_err(|reason| UidError {
                value: shorten(&s),
                reason,
            })
    }
}

impl std::str::FromStr for Uid {
    type Err = UidError;
    fn from_str(s: &str) -> Result<Self, UidError> {
        Uid::parse(s)
    }
}

impl From<Uid> for String {
    fn from(u: Uid) -> String {
        u.0
    }
}

impl rusqlite::ToSql for Uid {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.as_str().into())
    }
}

/// Reading back re-validates: a UID column edited by hand cannot smuggle a path into the spool.
impl rusqlite::types::FromSql for Uid {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = value.as_str()?;
        Uid::parse(s).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_uids() {
        for s in [
            "1.3.6.1.4.1.14519.5.2.1.6655.2359.122259036515695905512549026864",
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.840.10008.1.2.1",
            "0",
            "0.0.10",
            "2.25.329800735698586629295641978511506172918",
        ] {
            assert_eq!(Uid::parse(s).unwrap().as_str(), s);
        }
        let max = format!("1.{}", "2".repeat(62));
        assert_eq!(max.len(), 64);
        assert!(Uid::parse(&max).is_ok());
    }

    #[test]
    fn rejects_non_uids() {
        let long = format!("1.{}", "2".repeat(63));
        assert_eq!(long.len(), 65);
        let cases = [
            ("../x", UidErrorReason::BadCharacter),
            ("1..2", UidErrorReason::EmptyComponent),
            ("01.2", UidErrorReason::LeadingZero),
            ("1.02", UidErrorReason::LeadingZero),
            ("", UidErrorReason::Empty),
            (long.as_str(), UidErrorReason::TooLong),
            ("1.2.abc", UidErrorReason::BadCharacter),
            ("1.2/3", UidErrorReason::BadCharacter),
            (".1.2", UidErrorReason::EmptyComponent),
            ("1.2.", UidErrorReason::EmptyComponent),
            ("..", UidErrorReason::EmptyComponent),
            (".", UidErrorReason::EmptyComponent),
            ("1.2\0", UidErrorReason::BadCharacter),
            ("1.٣", UidErrorReason::BadCharacter),
        ];
        for (s, reason) in cases {
            assert_eq!(Uid::parse(s).unwrap_err().reason, reason, "{s:?}");
        }
    }

    #[test]
    fn from_dicom_strips_padding_only() {
        assert_eq!(Uid::from_dicom("1.2.3\0").unwrap().as_str(), "1.2.3");
        assert_eq!(Uid::from_dicom("1.2.3 ").unwrap().as_str(), "1.2.3");
        assert!(Uid::from_dicom(" 1.2.3").is_err());
        assert!(Uid::from_dicom("\0").is_err());
    }

    #[test]
    fn serde_validates() {
        let u: Uid = serde_json::from_str("\"1.2.3\"").unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"1.2.3\"");
        assert!(serde_json::from_str::<Uid>("\"../etc\"").is_err());
    }
}
