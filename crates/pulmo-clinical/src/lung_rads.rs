//! Lung-RADS v2022 (American College of Radiology) for lung cancer screening CT: the category of
//! each nodule from its type, size and status, the exam category, and the management each
//! category calls for. Follow-up exams add the nodule's status against the patient's earlier
//! exams ([`follow_up_status`]) and stepped management of stable nodules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::density::Density;
use crate::round_mm;

/// Screening CT is read on slices at most this thick, mm (the ACR's technical parameters for
/// low-dose screening CT; 1 mm or less preferred): on thicker slices partial volume lowers a
/// small nodule's density and blurs its margin.
pub const MAX_SLICE_THICKNESS_MM: f64 = 2.5;

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
    pub const ALL: [Category; 6] =
        [Category::One, Category::Two, Category::Three, Category::FourA, Category::FourB, Category::FourX];

    /// The category whose [`code`](Category::code) is `code` ("1" .. "4X").
    pub fn from_code(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }

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

/// When the nodule was first seen, relative to this exam, and how it changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// First screening exam, or no prior to compare with.
    #[default]
    Baseline,
    /// Not present on the prior exam.
    New,
    /// Mean diameter increased by more than 1.5 mm within 12 months (see [`is_growth`]).
    Growing,
    /// Seen before and not growing (stable or smaller).
    Stable,
    /// Grew by more than 1.5 mm across several exams, though never within 12 months.
    SlowlyGrowing,
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
    /// The same nodule on the previous exam: what stepped management starts from.
    pub previous: Option<Previous>,
}

/// A nodule as the previous exam saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    pub category: Category,
    pub density: Density,
    pub mean_diameter_mm: f64,
    pub solid_component_mm: f64,
}

/// One exam's measurement of a nodule: `day` counts days on any fixed calendar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub day: f64,
    pub mean_diameter_mm: f64,
}

/// Lung-RADS' "within 12 months", in days.
pub const GROWTH_WINDOW_DAYS: f64 = 366.0;

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

/// A followed nodule's status from its measurements, oldest first, the current exam last;
/// `None` with fewer than two (the caller knows whether it is a baseline or a new nodule).
/// Growth since the previous exam counts whatever the interval (annual screens slip past 12
/// months); growth against an older exam counts within [`GROWTH_WINDOW_DAYS`], and beyond
/// that it is slow growth.
pub fn follow_up_status(history: &[Measured]) -> Option<Status> {
    let (current, earlier) = history.split_last()?;
    let previous = earlier.last()?;
    let grew = |m: &Measured| is_growth(m.mean_diameter_mm, current.mean_diameter_mm);
    let status = if grew(previous) || earlier.iter().any(|m| current.day - m.day <= GROWTH_WINDOW_DAYS && grew(m)) {
        Status::Growing
    } else if earlier.iter().any(grew) {
        Status::SlowlyGrowing
    } else {
        Status::Stable
    };
    Some(status)
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
        && !matches!(nodule.status, Status::Growing | Status::SlowlyGrowing)
        && size < 10.0;
    if juxtapleural {
        return verdict(Category::Two, format!("juxtapleural/perifissural solid nodule {size:.1} mm < 10 mm, benign shape"));
    }
    let word = status_word(nodule.status);
    let (category, reason) = match nodule.status {
        Status::Stable => stable(nodule, size, solid_part),
        Status::SlowlyGrowing => slowly_growing(nodule.density, describe(word, nodule.density, size, solid_part)),
        rules => (size_table(nodule.density, size, solid_part, rules), describe(word, nodule.density, size, solid_part)),
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

/// The size table for `rules` (baseline, new or growing).
fn size_table(density: Density, size: f64, solid_part: f64, rules: Status) -> Category {
    match density {
        Density::Solid => solid(size, rules),
        Density::PartSolid => part_solid(size, solid_part, rules),
        Density::GroundGlass => ground_glass(size),
    }
}

fn describe(word: &str, density: Density, size: f64, solid_part: f64) -> String {
    match density {
        Density::Solid => format!("{word} solid nodule, mean diameter {size:.1} mm"),
        Density::PartSolid => {
            format!("{word} part-solid nodule, mean diameter {size:.1} mm, solid component {solid_part:.1} mm")
        }
        Density::GroundGlass => format!("{word} ground-glass nodule, mean diameter {size:.1} mm"),
    }
}

/// Stepped management (v2022): a stable 4A nodule becomes 3 and a stable 3 becomes 2; 4B and
/// 4X stay, since their work-up, not the screening interval, decides. A stable nodule that has
/// reached a higher size category than before is classified by its size instead.
fn stable(nodule: &Nodule, size: f64, solid_part: f64) -> (Category, String) {
    let what = describe("stable", nodule.density, size, solid_part);
    let now = size_table(nodule.density, size, solid_part, Status::Baseline);
    let Some(previous) = nodule.previous else {
        return (now, format!("{what}; no previous category: baseline size rules"));
    };
    let then = size_table(
        previous.density,
        round_mm(previous.mean_diameter_mm),
        round_mm(previous.solid_component_mm),
        Status::Baseline,
    );
    if now > then {
        return (now, format!("{what}; reached a higher size category"));
    }
    let stepped = match previous.category {
        Category::FourA => Category::Three,
        Category::One | Category::Two | Category::Three => Category::Two,
        held => held,
    };
    (stepped, format!("{what}; category {} before", previous.category))
}

/// Slow growth over several screens is 4B for solid and part-solid nodules; a slowly growing
/// ground-glass nodule stays 2 at any size.
fn slowly_growing(density: Density, what: String) -> (Category, String) {
    let category = if density == Density::GroundGlass { Category::Two } else { Category::FourB };
    (category, what)
}

fn solid(size: f64, status: Status) -> Category {
    let bands: &[(f64, Category)] = match status {
        Status::New => &[(4.0, Category::Two), (6.0, Category::Three), (8.0, Category::FourA)],
        Status::Growing => &[(8.0, Category::FourA)],
        _ => &[(6.0, Category::Two), (8.0, Category::Three), (15.0, Category::FourA)],
    };
    band(size, bands, Category::FourB)
}

fn part_solid(size: f64, solid_part: f64, status: Status) -> Category {
    match status {
        Status::New | Status::Growing if solid_part >= 4.0 => Category::FourB,
        Status::New if size < 6.0 => Category::Three,
        Status::New | Status::Growing => Category::FourA,
        _ if size < 6.0 => Category::Two,
        _ => band(solid_part, &[(6.0, Category::Three), (8.0, Category::FourA)], Category::FourB),
    }
}

/// Growing ground-glass nodules of 30 mm or more are not in the v2022 table (it lists them at
/// baseline, new, stable or slowly growing); they are taken as 3, like a new one.
fn ground_glass(size: f64) -> Category {
    if size < 30.0 {
        Category::Two
    } else {
        Category::Three
    }
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
        Status::Stable => "stable",
        Status::SlowlyGrowing => "slowly growing",
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
        Nodule { density, mean_diameter_mm: size, solid_component_mm: solid_part, status, features: Features::default(), previous: None }
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

    /// Spiculation (a suspicious feature) makes 3, 4A and 4B into 4X, under every rule set,
    /// and leaves 1 and 2 alone.
    #[test]
    fn suspicious_features_make_three_and_four_into_4x() {
        let table = [
            ((Density::Solid, 5.9, 5.9, Status::Baseline), Two, Two),
            ((Density::Solid, 6.0, 6.0, Status::Baseline), Three, FourX),
            ((Density::Solid, 8.0, 8.0, Status::Baseline), FourA, FourX),
            ((Density::Solid, 15.0, 15.0, Status::Baseline), FourB, FourX),
            ((Density::PartSolid, 5.9, 5.0, Status::Baseline), Two, Two),
            ((Density::PartSolid, 12.0, 5.9, Status::Baseline), Three, FourX),
            ((Density::PartSolid, 12.0, 6.0, Status::Baseline), FourA, FourX),
            ((Density::PartSolid, 12.0, 8.0, Status::Baseline), FourB, FourX),
            ((Density::GroundGlass, 29.9, 0.0, Status::Baseline), Two, Two),
            ((Density::GroundGlass, 30.0, 0.0, Status::Baseline), Three, FourX),
            ((Density::Solid, 4.0, 4.0, Status::New), Three, FourX),
            ((Density::Solid, 3.0, 3.0, Status::Growing), FourA, FourX),
        ];
        for ((density, size, part, status), plain, with) in table {
            let mut n = nodule(density, size, part, status);
            assert_eq!(assess(&n).category, plain, "{density:?} {size}/{part} {status:?}");
            n.features.suspicious = true;
            let a = assess(&n);
            assert_eq!(a.category, with, "{density:?} {size}/{part} {status:?}, suspicious");
            assert_eq!(a.reason.contains("suspicious"), with == FourX, "{}", a.reason);
        }
        let mut benign = nodule(Density::Solid, 20.0, 20.0, Status::Baseline);
        benign.features = Features { benign: true, suspicious: true, ..Features::default() };
        assert_eq!(assess(&benign).category, One, "benign calcification outranks spiculation");
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

    fn history(points: &[(f64, f64)]) -> Vec<Measured> {
        points.iter().map(|&(day, mean_diameter_mm)| Measured { day, mean_diameter_mm }).collect()
    }

    #[test]
    fn follow_up_status_from_the_history() {
        assert_eq!(follow_up_status(&history(&[(0.0, 6.0)])), None);
        let table = [
            (vec![(0.0, 6.0), (365.0, 7.5)], Status::Stable),
            (vec![(0.0, 6.0), (365.0, 7.6)], Status::Growing),
            (vec![(0.0, 6.0), (365.0, 4.0)], Status::Stable),
            // Growth since the previous exam counts whatever the interval.
            (vec![(0.0, 6.0), (500.0, 7.6)], Status::Growing),
            // 1.6 mm within 12 months across two steps of 0.8 mm.
            (vec![(0.0, 6.0), (180.0, 6.8), (366.0, 7.6)], Status::Growing),
            (vec![(0.0, 6.0), (180.0, 6.8), (367.0, 7.6)], Status::SlowlyGrowing),
            (vec![(0.0, 6.0), (365.0, 7.0), (730.0, 8.0)], Status::SlowlyGrowing),
            (vec![(0.0, 6.0), (365.0, 7.0), (730.0, 7.5)], Status::Stable),
        ];
        for (points, want) in table {
            assert_eq!(follow_up_status(&history(&points)), Some(want), "{points:?}");
        }
    }

    fn followed(density: Density, size: f64, part: f64, status: Status, previous: (Category, f64, f64)) -> Category {
        let (category, mean_diameter_mm, solid_component_mm) = previous;
        let mut n = nodule(density, size, part, status);
        n.previous = Some(Previous { category, density, mean_diameter_mm, solid_component_mm });
        assess(&n).category
    }

    #[test]
    fn stable_nodules_step_down() {
        use Density::*;
        let table = [
            ((Solid, 10.0, 10.0, (FourA, 10.0, 10.0)), Three),
            ((Solid, 7.0, 7.0, (Three, 7.0, 7.0)), Two),
            ((Solid, 7.0, 7.0, (Two, 7.0, 7.0)), Two),
            ((Solid, 20.0, 20.0, (FourB, 20.0, 20.0)), FourB),
            ((Solid, 4.0, 4.0, (Three, 4.0, 4.0)), Two),
            // Stable by the growth rule but across the 8 mm threshold: size decides.
            ((Solid, 8.0, 8.0, (Three, 7.9, 7.9)), FourA),
            ((Solid, 7.9, 7.9, (Three, 7.9, 7.9)), Two),
            ((PartSolid, 12.0, 7.0, (FourA, 12.0, 7.0)), Three),
            ((GroundGlass, 32.0, 0.0, (Three, 31.0, 0.0)), Two),
        ];
        for ((density, size, part, previous), want) in table {
            assert_eq!(followed(density, size, part, Status::Stable, previous), want, "{density:?} {size} {previous:?}");
        }
        assert_eq!(cat(Density::Solid, 10.0, 10.0, Status::Stable), FourA, "without a previous category: baseline rules");
    }

    #[test]
    fn slow_growth_is_4b_except_for_ground_glass() {
        assert_eq!(cat(Density::Solid, 6.0, 6.0, Status::SlowlyGrowing), FourB);
        assert_eq!(cat(Density::PartSolid, 9.0, 3.0, Status::SlowlyGrowing), FourB);
        assert_eq!(cat(Density::GroundGlass, 35.0, 0.0, Status::SlowlyGrowing), Two);
        let mut n = nodule(Density::Solid, 7.0, 7.0, Status::SlowlyGrowing);
        n.features.juxtapleural_benign_shape = true;
        assert_eq!(assess(&n).category, FourB, "the juxtapleural rule is for nodules that do not grow");
        assert!(assess(&n).reason.starts_with("slowly growing solid nodule"), "{}", assess(&n).reason);
    }

    #[test]
    fn categories_serialise_as_their_codes() {
        assert_eq!(serde_json::to_string(&FourA).unwrap(), "\"4A\"");
        assert_eq!(FourX.to_string(), "4X");
        assert!(Three.management().contains("6 months"));
    }
}
