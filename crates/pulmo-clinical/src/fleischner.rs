//! Fleischner Society 2017 guidelines for incidental pulmonary nodules (MacMahon, Radiology
//! 2017): the recommended follow-up from nodule type, size, number and patient risk.
//! They apply to incidental nodules in adults 35 and older, not to lung cancer screening (that
//! is Lung-RADS), nor to patients with known cancer or immunosuppression.

use serde::{Deserialize, Serialize};

use crate::density::Density;

/// Who these recommendations are for; reports carry it next to the recommendation.
pub const APPLIES_TO: &str =
    "Fleischner 2017: incidental nodules, age >= 35; not for screening, known cancer or immunosuppression";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Multiplicity {
    Single,
    Multiple,
}

/// Clinical risk of lung cancer (smoking, exposure, family history, age): low or high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatientRisk {
    Low,
    High,
}

/// Size bands on the mean diameter rounded to the nearest millimetre, as the guideline
/// measures: < 6 mm, 6-8 mm, > 8 mm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SizeBand {
    #[serde(rename = "<6 mm")]
    Below6,
    #[serde(rename = "6-8 mm")]
    From6To8,
    #[serde(rename = ">8 mm")]
    Above8,
}

impl SizeBand {
    pub fn of(mean_diameter_mm: f64) -> SizeBand {
        match mean_diameter_mm.round() {
            mm if mm < 6.0 => SizeBand::Below6,
            mm if mm <= 8.0 => SizeBand::From6To8,
            _ => SizeBand::Above8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub size_band: SizeBand,
    pub text: &'static str,
}

/// The recommendation for the (most suspicious) nodule of an exam. For multiple nodules,
/// pass the size of the most suspicious one.
pub fn recommend(density: Density, mean_diameter_mm: f64, count: Multiplicity, risk: PatientRisk) -> Recommendation {
    use Multiplicity::*;
    use PatientRisk::*;
    use SizeBand::*;
    let band = SizeBand::of(mean_diameter_mm);
    let text = match (density, count, band, risk) {
        (Density::Solid, _, Below6, Low) => "No routine follow-up",
        (Density::Solid, _, Below6, High) => "Optional CT at 12 months",
        (Density::Solid, Single, From6To8, Low) => "CT at 6-12 months, then consider CT at 18-24 months",
        (Density::Solid, Single, From6To8, High) => "CT at 6-12 months, then CT at 18-24 months",
        (Density::Solid, Single, Above8, _) => "Consider CT at 3 months, PET/CT, or tissue sampling",
        (Density::Solid, Multiple, From6To8 | Above8, Low) => "CT at 3-6 months, then consider CT at 18-24 months",
        (Density::Solid, Multiple, From6To8 | Above8, High) => "CT at 3-6 months, then CT at 18-24 months",
        (Density::GroundGlass, Single, Below6, _) => "No routine follow-up",
        (Density::GroundGlass, Single, _, _) => {
            "CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years"
        }
        (Density::PartSolid, Single, Below6, _) => "No routine follow-up",
        (Density::PartSolid, Single, _, _) => {
            "CT at 3-6 months to confirm persistence; if unchanged and the solid component remains < 6 mm, \
             annual CT for 5 years"
        }
        (_, Multiple, Below6, _) => "CT at 3-6 months; if stable, consider CT at 2 and 4 years",
        (_, Multiple, _, _) => "CT at 3-6 months; subsequent management based on the most suspicious nodule(s)",
    };
    Recommendation { size_band: band, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Multiplicity::*;
    use PatientRisk::*;

    #[test]
    fn size_bands_round_to_whole_millimetres() {
        let table = [(5.4, SizeBand::Below6), (5.5, SizeBand::From6To8), (6.0, SizeBand::From6To8),
                     (8.0, SizeBand::From6To8), (8.4, SizeBand::From6To8), (8.5, SizeBand::Above8), (9.0, SizeBand::Above8)];
        for (mm, want) in table {
            assert_eq!(SizeBand::of(mm), want, "{mm} mm");
        }
    }

    #[test]
    fn solid_nodules() {
        let rec = |mm, count, risk| recommend(Density::Solid, mm, count, risk).text;
        assert_eq!(rec(5.4, Single, Low), "No routine follow-up");
        assert_eq!(rec(5.4, Single, High), "Optional CT at 12 months");
        assert!(rec(5.5, Single, Low).starts_with("CT at 6-12 months, then consider"));
        assert!(rec(8.4, Single, High).starts_with("CT at 6-12 months, then CT at 18-24"));
        assert!(rec(8.5, Single, Low).contains("PET/CT"));
        assert_eq!(rec(5.4, Multiple, Low), "No routine follow-up");
        assert!(rec(7.0, Multiple, Low).starts_with("CT at 3-6 months, then consider"));
        assert!(rec(12.0, Multiple, High).starts_with("CT at 3-6 months, then CT"));
    }

    #[test]
    fn subsolid_nodules() {
        let rec = |d, mm, count| recommend(d, mm, count, Low).text;
        assert_eq!(rec(Density::GroundGlass, 5.4, Single), "No routine follow-up");
        assert!(rec(Density::GroundGlass, 5.5, Single).contains("every 2 years"));
        assert_eq!(rec(Density::PartSolid, 5.4, Single), "No routine follow-up");
        assert!(rec(Density::PartSolid, 5.5, Single).contains("annual CT for 5 years"));
        assert!(rec(Density::GroundGlass, 5.4, Multiple).contains("2 and 4 years"));
        assert!(rec(Density::PartSolid, 5.5, Multiple).contains("most suspicious"));
    }
}
