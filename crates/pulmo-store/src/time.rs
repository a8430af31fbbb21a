//! Timestamps as the store persists them: integer milliseconds since the Unix epoch (UTC).
//! Every time-dependent method takes `now` explicitly, so tests and replays are deterministic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z. Integers (not RFC 3339 text) because the store
/// compares and adds times in SQL (`last_received_at <= ?`), and integers sort and add exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The wall clock; clamps to the epoch if the clock is set before 1970.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(duration_millis(since))
    }

    /// UTC date and time as DICOM DA and TM values: ("YYYYMMDD", "HHMMSS").
    pub fn dicom_date_time(self) -> (String, String) {
        let text = self.to_string(); // "YYYY-MM-DD HH:MM:SSZ"
        (text[..10].replace('-', ""), text[11..19].replace(':', ""))
    }

    /// `self + d`, saturating instead of overflowing.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating instead of overflowing.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }
}

/// UTC, as operators read it: `2026-11-29 03:12:45Z`.
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A duration in whole milliseconds, saturating at `i64::MAX` (about 292 million years).
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.into())
    }
}

impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

#[cfg(test)]
mod display_tests {
    use super::Timestamp;

    #[test]
    fn formats_utc() {
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01 00:00:00Z");
        assert_eq!(Timestamp::from_millis(1_796_000_000_000).to_string(), "2026-11-30 00:53:20Z");
        assert_eq!(Timestamp::from_millis(951_782_400_000).to_string(), "2000-02-29 00:00:00Z");
        assert_eq!(Timestamp::from_millis(1_796_000_000_000).dicom_date_time(), ("20261130".into(), "005320".into()));
    }
}
