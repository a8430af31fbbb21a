//! The Lung-RADS v2022 baseline category that a phantom nodule's exact truth implies.
//! Deliberately small and local: pulmo-clinical owns Lung-RADS; this only labels ground truth.

use serde::{Deserialize, Serialize};

use crate::nodule::{Attachment, NoduleKind, NoduleShape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LungRads {
    #[serde(rename = "1")]
    One,
    #[serde(rename = "2")]
    Two,
    #[serde(rename = "3")]
    Three,
    #[serde(rename = "4A")]
    FourA,
    #[serde(rename = "4B")]
    FourB,
    #[serde(rename = "4X")]
    FourX,
}

/// What the baseline rules look at, all from the truth (diameters are Lung-RADS means,
/// already rounded to 0.1 mm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoduleFacts {
    pub kind: NoduleKind,
    pub shape: NoduleShape,
    pub attachment: Attachment,
    pub mean_diameter_mm: f64,
    /// Mean diameter of the solid component (part-solid nodules).
    pub solid_mean_diameter_mm: Option<f64>,
}

/// Baseline category of one nodule.
///
/// Choices where v2022 leaves room: the phantom's calcification is diffuse and dense, so it
/// is benign (1); a spherical (smooth) juxtapleural solid nodule < 10 mm is category 2; a
/// spiculated nodule whose size category is 3, 4A or 4B becomes 4X.
pub fn baseline_category(n: &NoduleFacts) -> LungRads {
    let size = size_category(n);
    let suspicious = n.shape == NoduleShape::Spiculated && size >= LungRads::Three;
    if suspicious {
        LungRads::FourX
    } else {
        size
    }
}

/// The category from type and size alone, before the 4X upgrade.
pub fn size_category(n: &NoduleFacts) -> LungRads {
    let d = n.mean_diameter_mm;
    match n.kind {
        NoduleKind::Calcified => LungRads::One,
        NoduleKind::GroundGlass => {
            if d < 30.0 {
                LungRads::Two
            } else {
                LungRads::Three
            }
        }
        NoduleKind::Solid => {
            let smooth_juxtapleural = n.attachment == Attachment::Juxtapleural && n.shape == NoduleShape::Spherical;
            if smooth_juxtapleural && d < 10.0 {
                return LungRads::Two;
            }
            solid_by_size(d)
        }
        NoduleKind::PartSolid => {
            let solid = n.solid_mean_diameter_mm.unwrap_or(0.0);
            if d < 6.0 {
                LungRads::Two
            } else if solid < 6.0 {
                LungRads::Three
            } else if solid < 8.0 {
                LungRads::FourA
            } else {
                LungRads::FourB
            }
        }
    }
}

fn solid_by_size(d: f64) -> LungRads {
    if d < 6.0 {
        LungRads::Two
    } else if d < 8.0 {
        LungRads::Three
    } else if d < 15.0 {
        LungRads::FourA
    } else {
        LungRads::FourB
    }
}

/// Study category: the most suspicious nodule's, or 1 without nodules.
pub fn study_category(categories: impl IntoIterator<Item = LungRads>) -> LungRads {
    categories.into_iter().max().unwrap_or(LungRads::One)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: NoduleKind, d: f64) -> NoduleFacts {
        NoduleFacts {
            kind,
            shape: NoduleShape::Lobulated,
            attachment: Attachment::Isolated,
            mean_diameter_mm: d,
            solid_mean_diameter_mm: None,
        }
    }

    #[test]
    fn solid_thresholds_are_half_open() {
        let cat = |d| baseline_category(&facts(NoduleKind::Solid, d));
        assert_eq!(cat(5.9), LungRads::Two);
        assert_eq!(cat(6.0), LungRads::Three);
        assert_eq!(cat(7.9), LungRads::Three);
        assert_eq!(cat(8.0), LungRads::FourA);
        assert_eq!(cat(14.9), LungRads::FourA);
        assert_eq!(cat(15.0), LungRads::FourB);
    }

    #[test]
    fn subsolid_calcified_juxtapleural_and_spiculated_rules() {
        assert_eq!(baseline_category(&facts(NoduleKind::GroundGlass, 29.9)), LungRads::Two);
        assert_eq!(baseline_category(&facts(NoduleKind::GroundGlass, 30.0)), LungRads::Three);
        assert_eq!(baseline_category(&facts(NoduleKind::Calcified, 9.0)), LungRads::One);
        let ps = |d, s| NoduleFacts { solid_mean_diameter_mm: Some(s), ..facts(NoduleKind::PartSolid, d) };
        assert_eq!(baseline_category(&ps(5.9, 3.0)), LungRads::Two);
        assert_eq!(baseline_category(&ps(12.0, 5.9)), LungRads::Three);
        assert_eq!(baseline_category(&ps(12.0, 6.0)), LungRads::FourA);
        assert_eq!(baseline_category(&ps(12.0, 8.0)), LungRads::FourB);
        let jp = NoduleFacts {
            shape: NoduleShape::Spherical,
            attachment: Attachment::Juxtapleural,
            ..facts(NoduleKind::Solid, 9.9)
        };
        assert_eq!(baseline_category(&jp), LungRads::Two);
        assert_eq!(baseline_category(&NoduleFacts { mean_diameter_mm: 10.0, ..jp }), LungRads::FourA);
        let spic = NoduleFacts { shape: NoduleShape::Spiculated, ..facts(NoduleKind::Solid, 7.0) };
        assert_eq!(baseline_category(&spic), LungRads::FourX);
        assert_eq!(baseline_category(&NoduleFacts { mean_diameter_mm: 5.0, ..spic }), LungRads::Two);
        assert_eq!(study_category([LungRads::Two, LungRads::FourX, LungRads::FourB]), LungRads::FourX);
        assert_eq!(study_category([]), LungRads::One);
    }
}
