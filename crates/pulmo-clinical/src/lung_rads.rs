//! Lung-RADS v2022 (American College of Radiology) for lung cancer screening CT: the category of
//! each nodule from its type, size and status, the exam category, and the management each
//! category calls for. Stepped management of stable nodules comes with tracking.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::density::Density;
use crate::round_mm;

/// Ordered by suspicion, so the exam category is the maximum over nodules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
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

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Category::One => "1",
            Category::Two => "2",
            Category::Three => "3",
            Category::FourA => "4A",
            Category::FourB => "4B",
            Category::FourX => "4X",
        }
    }

    /// The management Lung-RADS v2022 recommends for an exam in this category.
    pub fn management(self) -> &'static str {
        match self {
            Category::One | Category::Two => "Continue annual screening with LDCT in 12 months",
            Category::Three => "LDCT in 6 months",
            Category::FourA => {
                "LDCT in 3 months; PET/CT may be considered if there is a >= 8 mm solid nodule or solid component"
            }
            Category::FourB | Category::FourX => {
                "Diagnostic chest CT with or without contrast; PET/CT may be considered if there is a >= 8 mm solid \
                 nodule or solid component; tissue sampling; and/or referral for further clinical evaluation"
            }
        }
    }

    /// Estimated probability of malignancy for the category, as Lung-RADS states it.
    pub fn malignancy_risk(self) -> &'static str {
        match self {
            Category::One | Category::Two => "< 1%",
            Category::Three => "1-2%",
            Category::FourA => "5-15%",
            Category::FourB | Category::FourX => "> 15%",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// When the nodule was first seen, relative to this exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// First screening exam, or no prior to compare with.
    Baseline,
    /// Not present on the prior exam.
    New,
    /// Mean diameter increased by more than 1.5 mm within 12 months (see [`is_growth`]).
    Growing,
}

/// Features that take a nodule out of the size table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Features {
    /// Benign calcification (complete, central, popcorn, concentric rings) or macroscopic fat.
    pub benign: bool,
    /// Juxtapleural or perifissural, solid, smooth margins, oval/lentiform/triangular shape.
    pub juxtapleural_benign_shape: bool,
    /// Additional features that raise suspicion (e.g. spiculation): 3 and 4 become 4X.
    pub suspicious: bool,
}

/// A nodule as Lung-RADS sees it; sizes are mean diameters in mm (rounded to 0.1 mm here).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nodule {
    pub density: Density,
    pub mean_diameter_mm: f64,
    /// Mean diameter of the solid component; used for part-solid nodules only.
    pub solid_component_mm: f64,
    pub status: Status,
    pub features: Features,
}

/// A category and the rule that gave it, in words a radiologist can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub category: Category,
    pub reason: String,
}

/// Lung-RADS v2022 growth: mean diameter up by more than 1.5 mm (sizes rounded to 0.1 mm).
/// The 12-month window is the caller's to check.
pub fn is_growth(previous_mean_mm: f64, current_mean_mm: f64) -> bool {
    round_mm(round_mm(current_mean_mm) - round_mm(previous_mean_mm)) > 1.5
}

/// The category of one nodule.
pub fn assess(nodule: &Nodule) -> Assessment {
    let size = round_mm(nodule.mean_diameter_mm);
    let solid_part = round_mm(nodule.solid_component_mm);
    if nodule.features.benign {
        return verdict(Category::One, "benign calcification or fat".into());
    }
    let juxtapleural = nodule.features.juxtapleural_benign_shape
        && nodule.density == Density::Solid
        && nodule.status != Status::Growing
        && size < 10.0;
    if juxtapleural {
        return verdict(Category::Two, format!("juxtapleural/perifissural solid nodule {size:.1} mm < 10 mm, benign shape"));
    }
    let (category, reason) = match nodule.density {
        Density::Solid => solid(size, nodule.status),
        Density::PartSolid => part_solid(size, solid_part, nodule.status),
        Density::GroundGlass => ground_glass(size, nodule.status),
    };
    let suspicious = nodule.features.suspicious && category >= Category::Three;
    if suspicious {
        return verdict(Category::FourX, format!("{reason}; additional suspicious features"));
    }
    verdict(category, reason)
}

fn verdict(category: Category, reason: String) -> Assessment {
    Assessment { category, reason }
}

fn solid(size: f64, status: Status) -> (Category, String) {
    let bands: &[(f64, Category)] = match status {
        Status::Baseline => &[(6.0, Category::Two), (8.0, Category::Three), (15.0, Category::FourA)],
        Status::New => &[(4.0, Category::Two), (6.0, Category::Three), (8.0, Category::FourA)],
        Status::Growing => &[(8.0, Category::FourA)],
    };
    let category = band(size, bands, Category::FourB);
    (category, format!("{} solid nodule, mean diameter {size:.1} mm", status_word(status)))
}

fn part_solid(size: f64, solid_part: f64, status: Status) -> (Category, String) {
    let what = format!(
        "{} part-solid nodule, mean diameter {size:.1} mm, solid component {solid_part:.1} mm",
        status_word(status)
    );
    let category = match status {
        Status::Baseline if size < 6.0 => Category::Two,
        Status::Baseline => band(solid_part, &[(6.0, Category::Three), (8.0, Category::FourA)], Category::FourB),
        Status::New | Status::Growing if solid_part >= 4.0 => Category::FourB,
        Status::New if size < 6.0 => Category::Three,
        Status::New | Status::Growing => Category::FourA,
    };
    (category, what)
}

/// Growing ground-glass nodules of 30 mm or more are not in the v2022 table (it lists them at
/// baseline, new, stable or slowly growing); they are taken as 3, like a new one.
fn ground_glass(size: f64, status: Status) -> (Category, String) {
    let category = if size < 30.0 { Category::Two } else { Category::Three };
    (category, format!("{} ground-glass nodule, mean diameter {size:.1} mm", status_word(status)))
}

/// The first category whose upper bound (exclusive) is above `size`, else `above`.
fn band(size: f64, bands: &[(f64, Category)], above: Category) -> Category {
    bands.iter().find(|(upper, _)| size < *upper).map_or(above, |(_, c)| *c)
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Baseline => "baseline",
        Status::New => "new",
        Status::Growing => "growing",
    }
}

/// The exam's category: its most suspicious nodule's, or 1 without nodules.
pub fn exam_category(nodules: &[Assessment]) -> Category {
    nodules.iter().map(|a| a.category).max().unwrap_or(Category::One)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category::*;

    fn nodule(density: Density, size: f64, solid_part: f64, status: Status) -> Nodule {
        Nodule { density, mean_diameter_mm: size, solid_component_mm: solid_part, status, features: Features::default() }
    }

    fn cat(density: Density, size: f64, solid_part: f64, status: Status) -> Category {
        assess(&nodule(density, size, solid_part, status)).category
    }

    /// (size just below, at, just above each threshold) -> category.
    #[test]
    fn solid_baseline_thresholds() {
        let table = [(5.9, Two), (6.0, Three), (6.1, Three), (7.9, Three), (8.0, FourA), (8.1, FourA),
                     (14.9, FourA), (15.0, FourB), (15.1, FourB), (3.0, Two), (40.0, FourB)];
        for (size, want) in table {
            assert_eq!(cat(Density::Solid, size, size, Status::Baseline), want, "{size} mm");
        }
        // Rounded to 0.1 mm first: 5.96 is 6.0, 5.94 is 5.9.
        assert_eq!(cat(Density::Solid, 5.96, 0.0, Status::Baseline), Three);
        assert_eq!(cat(Density::Solid, 5.94, 0.0, Status::Baseline), Two);
    }

    #[test]
    fn solid_new_and_growing_thresholds() {
        let new = [(3.9, Two), (4.0, Three), (4.1, Three), (5.9, Three), (6.0, FourA), (7.9, FourA), (8.0, FourB), (8.1, FourB)];
        for (size, want) in new {
            assert_eq!(cat(Density::Solid, size, size, Status::New), want, "new {size} mm");
        }
        let growing = [(3.0, FourA), (7.9, FourA), (8.0, FourB), (8.1, FourB)];
        for (size, want) in growing {
            assert_eq!(cat(Density::Solid, size, size, Status::Growing), want, "growing {size} mm");
        }
    }

    #[test]
    fn part_solid_thresholds() {
        let baseline = [
            ((5.9, 5.0), Two),
            ((6.0, 2.0), Three),
            ((12.0, 5.9), Three),
            ((12.0, 6.0), FourA),
            ((12.0, 6.1), FourA),
            ((12.0, 7.9), FourA),
            ((12.0, 8.0), FourB),
            ((12.0, 8.1), FourB),
        ];
        for ((size, part), want) in baseline {
            assert_eq!(cat(Density::PartSolid, size, part, Status::Baseline), want, "baseline {size}/{part}");
        }
        let new = [((5.9, 2.0), Three), ((6.0, 2.0), FourA), ((10.0, 3.9), FourA), ((10.0, 4.0), FourB), ((5.0, 4.1), FourB)];
        for ((size, part), want) in new {
            assert_eq!(cat(Density::PartSolid, size, part, Status::New), want, "new {size}/{part}");
        }
        let growing = [((10.0, 3.9), FourA), ((10.0, 4.0), FourB), ((4.0, 1.0), FourA)];
        for ((size, part), want) in growing {
            assert_eq!(cat(Density::PartSolid, size, part, Status::Growing), want, "growing {size}/{part}");
        }
    }

    #[test]
    fn ground_glass_thresholds() {
        for status in [Status::Baseline, Status::New, Status::Growing] {
            assert_eq!(cat(Density::GroundGlass, 29.9, 0.0, status), Two);
            assert_eq!(cat(Density::GroundGlass, 30.0, 0.0, status), Three);
            assert_eq!(cat(Density::GroundGlass, 30.1, 0.0, status), Three);
        }
    }

    #[test]
    fn features_override_the_size_table() {
        let mut n = nodule(Density::Solid, 20.0, 20.0, Status::Baseline);
        n.features.benign = true;
        assert_eq!(assess(&n).category, One);

        let mut n = nodule(Density::Solid, 9.9, 9.9, Status::Baseline);
        n.features.juxtapleural_benign_shape = true;
        assert_eq!(assess(&n).category, Two);
        n.mean_diameter_mm = 10.0;
        assert_eq!(assess(&n).category, FourA, "10 mm is no longer in the juxtapleural rule");
        n.mean_diameter_mm = 9.9;
        n.density = Density::PartSolid;
        assert_eq!(assess(&n).category, FourB, "the juxtapleural rule is for solid nodules only");

        let mut n = nodule(Density::Solid, 6.0, 6.0, Status::Baseline);
        n.features.suspicious = true;
        assert_eq!(assess(&n).category, FourX);
        n.mean_diameter_mm = 5.9;
        assert_eq!(assess(&n).category, Two, "4X only upgrades 3 and 4");
    }

    #[test]
    fn exam_takes_the_most_suspicious_nodule() {
        assert_eq!(exam_category(&[]), One);
        let a = [
            assess(&nodule(Density::Solid, 5.0, 5.0, Status::Baseline)),
            assess(&nodule(Density::Solid, 9.0, 9.0, Status::Baseline)),
            assess(&nodule(Density::GroundGlass, 12.0, 0.0, Status::Baseline)),
        ];
        assert_eq!(exam_category(&a), FourA);
        assert!(a[1].reason.contains("9.0 mm"), "{}", a[1].reason);
        assert!(FourX > FourB && FourB > FourA && FourA > Three);
    }

    #[test]
    fn growth_is_more_than_one_and_a_half_millimetres() {
        assert!(!is_growth(6.0, 7.5));
        assert!(is_growth(6.0, 7.6));
        assert!(!is_growth(6.04, 7.54)); // 6.0 -> 7.5 after rounding
    }

    #[test]
    fn categories_serialise_as_their_codes() {
        assert_eq!(serde_json::to_string(&FourA).unwrap(), "\"4A\"");
        assert_eq!(FourX.to_string(), "4X");
        assert!(Three.management().contains("6 months"));
    }
}
