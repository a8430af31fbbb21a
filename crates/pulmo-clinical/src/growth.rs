//! Change of a nodule's volume between two exams: volume doubling time (VDT) and what it
//! suggests. Stable and shrinking nodules are reported as such, never as a negative VDT.

use serde::{Deserialize, Serialize};

/// Relative volume changes smaller than this (either way) are within the repeatability of CT
/// volumetry and count as stable (the NELSON trial's 25% threshold for growth).
pub const SIGNIFICANT_VOLUME_CHANGE: f64 = 0.25;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum VolumeChange {
    Growing { doubling_time_days: f64 },
    Stable,
    Shrinking,
}

/// VDT bands used in screening (NELSON, BTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoublingClass {
    /// < 400 days.
    Suspicious,
    /// 400-600 days.
    Indeterminate,
    /// > 600 days.
    Reassuring,
}

/// Classifies the change from `previous_mm3` to `current_mm3` over `interval_days`;
/// VDT = interval * ln 2 / ln(V2 / V1). `None` when a volume or the interval is not positive.
pub fn volume_change(previous_mm3: f64, current_mm3: f64, interval_days: f64) -> Option<VolumeChange> {
    if !(previous_mm3 > 0.0 && current_mm3 > 0.0 && interval_days > 0.0) {
        return None;
    }
    let ratio = current_mm3 / previous_mm3;
    let change = if ratio >= 1.0 + SIGNIFICANT_VOLUME_CHANGE {
        VolumeChange::Growing { doubling_time_days: interval_days * std::f64::consts::LN_2 / ratio.ln() }
    } else if ratio <= 1.0 - SIGNIFICANT_VOLUME_CHANGE {
        VolumeChange::Shrinking
    } else {
        VolumeChange::Stable
    };
    Some(change)
}

pub fn doubling_class(doubling_time_days: f64) -> DoublingClass {
    match doubling_time_days {
        d if d < 400.0 => DoublingClass::Suspicious,
        d if d <= 600.0 => DoublingClass::Indeterminate,
        _ => DoublingClass::Reassuring,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_in_a_year_is_a_365_day_vdt() {
        let Some(VolumeChange::Growing { doubling_time_days }) = volume_change(100.0, 200.0, 365.0) else {
            panic!("growing")
        };
        assert!((doubling_time_days - 365.0).abs() < 1e-9);
        assert_eq!(doubling_class(doubling_time_days), DoublingClass::Suspicious);
    }

    #[test]
    fn small_changes_are_stable_and_losses_are_shrinking() {
        assert_eq!(volume_change(100.0, 124.0, 90.0), Some(VolumeChange::Stable));
        assert!(matches!(volume_change(100.0, 125.0, 90.0), Some(VolumeChange::Growing { .. })));
        assert_eq!(volume_change(100.0, 76.0, 90.0), Some(VolumeChange::Stable));
        assert_eq!(volume_change(100.0, 75.0, 90.0), Some(VolumeChange::Shrinking));
        assert_eq!(volume_change(0.0, 75.0, 90.0), None);
        assert_eq!(volume_change(100.0, 75.0, 0.0), None);
        assert_eq!(volume_change(f64::NAN, 75.0, 10.0), None);
    }

    #[test]
    fn vdt_bands() {
        assert_eq!(doubling_class(399.9), DoublingClass::Suspicious);
        assert_eq!(doubling_class(400.0), DoublingClass::Indeterminate);
        assert_eq!(doubling_class(600.0), DoublingClass::Indeterminate);
        assert_eq!(doubling_class(600.1), DoublingClass::Reassuring);
    }
}
