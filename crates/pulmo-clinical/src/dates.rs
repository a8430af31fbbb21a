//! Exam dates as DICOM writes them (DA/TM strings): validation, days between two exams (what
//! growth rates are computed over), adding days to a date, and PatientAge.
//! Civil-calendar arithmetic after H. Hinnant's days_from_civil, so no date crate is needed.

/// (year, month, day) of a "YYYYMMDD" string, or None when it is not a real date.
pub fn parse_da(s: &str) -> Option<(i64, u32, u32)> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[4..6].parse().ok()?;
    let d: u32 = s[6..8].parse().ok()?;
    let ok = (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m) && y >= 1800;
    ok.then_some((y, m, d))
}

pub fn valid_tm(s: &str) -> bool {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    n(0..2) < 24 && n(2..4) < 60 && n(4..6) < 60
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// `da` + `days`, as "YYYYMMDD"; None when `da` is not a valid date.
pub fn add_days(da: &str, days: i64) -> Option<String> {
    let (y, m, d) = parse_da(da)?;
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) + days);
    Some(format!("{y:04}{m:02}{d:02}"))
}

/// Whole days from `from` to `to`; None when either is not a valid date.
pub fn days_between(from: &str, to: &str) -> Option<i64> {
    let (y0, m0, d0) = parse_da(from)?;
    let (y1, m1, d1) = parse_da(to)?;
    Some(days_from_civil(y1, m1, d1) - days_from_civil(y0, m0, d0))
}

/// A DA date for reading, "20240131" as "2024-01-31"; anything else as it is.
pub fn display(da: &str) -> String {
    let da = da.trim();
    match parse_da(da) {
        Some((y, m, d)) => format!("{y:04}-{m:02}-{d:02}"),
        None => da.to_string(),
    }
}

/// PatientAge (AS) such as "061Y" on `study_date` for someone born on `birth_date`.
pub fn patient_age(birth_date: &str, study_date: &str) -> Option<String> {
    let (by, bm, bd) = parse_da(birth_date)?;
    let (sy, sm, sd) = parse_da(study_date)?;
    let mut years = sy - by;
    if (sm, sd) < (bm, bd) {
        years -= 1;
    }
    (0..=999).contains(&years).then(|| format!("{years:03}Y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_days_across_months_and_leap_years() {
        assert_eq!(add_days("20240115", 365).as_deref(), Some("20250114"));
        assert_eq!(add_days("20240228", 1).as_deref(), Some("20240229"));
        assert_eq!(add_days("20231231", 1).as_deref(), Some("20240101"));
        assert_eq!(days_between("20240115", "20250114"), Some(365));
        assert_eq!(add_days("20240230", 1), None);
        assert_eq!(display("20240131"), "2024-01-31");
        assert_eq!(display("2024"), "2024");
    }

    #[test]
    fn computes_patient_age_in_whole_years() {
        assert_eq!(patient_age("19600116", "20240115").as_deref(), Some("063Y"));
        assert_eq!(patient_age("19600115", "20240115").as_deref(), Some("064Y"));
        assert!(valid_tm("235959") && !valid_tm("240000"));
    }
}
