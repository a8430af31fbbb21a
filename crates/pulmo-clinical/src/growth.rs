//! Change of a nodule's volume between two exams: volume doubling time (VDT) and what it
//! suggests. Stable and shrinking nodules are reported as such, never as a negative VDT.

use serde::{Deserialize, Serialize};

use crate::density::Density;

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

/// VDT bands used in screening (NELSON, BTS), per density class (see [`doubling_class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoublingClass {
    /// < 400 days.
    Suspicious,
    /// 400-600 days for a solid nodule; 400 days or more for a subsolid one.
    Indeterminate,
    /// > 600 days, solid nodules only.
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

/// The band of a growing nodule's doubling time. For solid nodules the NELSON/BTS bands:
/// under 400 days suspicious, 400-600 indeterminate, over 600 reassuring. Subsolid cancers grow
/// more slowly (malignant median VDT 598 days part-solid, 848 days ground-glass), so a long VDT
/// does not reassure about them: under 400 days is suspicious, anything longer indeterminate.
pub fn doubling_class(doubling_time_days: f64, density: Density) -> DoublingClass {
    match (doubling_time_days, density) {
        (d, _) if d < 400.0 => DoublingClass::Suspicious,
        (d, Density::Solid) if d <= 600.0 => DoublingClass::Indeterminate,
        (_, Density::Solid) => DoublingClass::Reassuring,
        (_, Density::PartSolid | Density::GroundGlass) => DoublingClass::Indeterminate,
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
        assert_eq!(doubling_class(doubling_time_days, Density::Solid), DoublingClass::Suspicious);
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
        assert_eq!(doubling_class(399.9, Density::Solid), DoublingClass::Suspicious);
        assert_eq!(doubling_class(400.0, Density::Solid), DoublingClass::Indeterminate);
        assert_eq!(doubling_class(600.0, Density::Solid), DoublingClass::Indeterminate);
        assert_eq!(doubling_class(600.1, Density::Solid), DoublingClass::Reassuring);
        for subsolid in [Density::PartSolid, Density::GroundGlass] {
            assert_eq!(doubling_class(399.9, subsolid), DoublingClass::Suspicious);
            assert_eq!(doubling_class(400.0, subsolid), DoublingClass::Indeterminate);
            assert_eq!(doubling_class(600.1, subsolid), DoublingClass::Indeterminate, "a slow subsolid nodule is not reassuring");
            assert_eq!(doubling_class(3000.0, subsolid), DoublingClass::Indeterminate);
        }
    }
}
