//! The clinical rules pulmo applies to measured nodules, as pure functions with no I/O, no
//! images and no models: what a radiologist would look up in a table, written once and tested
//! at every threshold (just below, at, just above).
//!
//! - [`density`]: solid / part-solid / ground-glass from the measured solid component, and the
//!   HU thresholds that define a solid component and emphysema.
//! - [`lung_rads`]: Lung-RADS v2022 category per nodule and per exam, with management.
//! - [`fleischner`]: Fleischner Society 2017 recommendations for incidental nodules.
//! - [`risk`]: malignancy probability by the Brock (PanCan) full model and the Mayo model, with
//!   every input and every assumption made for an unknown input.
//! - [`growth`]: volume doubling time and its interpretation.
//! - [`dates`]: exam dates (DICOM DA) and the days between them.
//!
//! Sizes follow Lung-RADS: axes and mean diameter in millimetres rounded to 0.1 mm
//! ([`round_mm`]) before any threshold is applied, so a 5.96 mm nodule is a 6.0 mm nodule.

pub mod dates;
pub mod density;
pub mod fleischner;
pub mod growth;
pub mod lung_rads;
pub mod risk;

pub use density::Density;

/// Rounds a length to 0.1 mm, as Lung-RADS reports and compares it.
pub fn round_mm(mm: f64) -> f64 {
    (mm * 10.0).round() / 10.0
}

/// Lung-RADS mean diameter: the average of the long and short axes, to 0.1 mm.
pub fn mean_diameter(long_axis_mm: f64, short_axis_mm: f64) -> f64 {
    round_mm((round_mm(long_axis_mm) + round_mm(short_axis_mm)) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_to_a_tenth_of_a_millimetre() {
        assert_eq!(round_mm(5.96), 6.0);
        assert_eq!(round_mm(5.94), 5.9);
        assert_eq!(mean_diameter(7.0, 5.0), 6.0);
        assert_eq!(mean_diameter(6.04, 5.86), 6.0); // 6.0 and 5.9 average 5.95 -> 6.0
    }
}
