//! Nodule density classes and the Hounsfield thresholds behind them: which voxels form a
//! nodule's solid component, when a nodule counts as solid, part-solid or ground-glass, and
//! which lung voxels count as emphysema.

use serde::{Deserialize, Serialize};

/// Voxels at or above this are the solid component of a nodule (the usual -300 HU split
/// between ground-glass and solid attenuation on CT; soft tissue is around +40 HU).
pub const SOLID_COMPONENT_MIN_HU: f64 = -300.0;

/// Nodule voxels are at or above this: ground-glass opacity starts where aerated lung
/// (-850 HU and below) ends.
pub const NODULE_MIN_HU: f64 = -750.0;

/// A nodule whose solid component is at least this fraction of its volume is solid.
pub const SOLID_FRACTION: f64 = 0.8;

/// A solid component with a mean diameter below this is not measurable on CT (Lung-RADS
/// measures to 0.1 mm, but a core under about 1.5 mm is partial volume, not tissue): the
/// nodule is ground-glass.
pub const MIN_SOLID_COMPONENT_MM: f64 = 1.5;

/// Lung voxels at or below this are emphysematous (low-attenuation area, LAA-950).
pub const EMPHYSEMA_MAX_HU: f64 = -950.0;

/// Emphysema counts as present for the Brock model when at least this fraction of the lung is
/// LAA-950 (the Brock model used a radiologist's visual call; 5% is a commonly used automated
/// equivalent).
pub const EMPHYSEMA_FRACTION: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Density {
    Solid,
    PartSolid,
    /// Non-solid: ground-glass only.
    GroundGlass,
}

impl Density {
    pub const ALL: [Density; 3] = [Density::Solid, Density::PartSolid, Density::GroundGlass];

    /// Classifies a nodule from its solid component: the fraction of the nodule's volume at or
    /// above [`SOLID_COMPONENT_MIN_HU`] and that component's mean diameter in mm. Where the
    /// nodule has an interior that partial volume does not reach, `interior_solid_share` is the
    /// share of it that is solid: at least [`SOLID_FRACTION`] makes the nodule solid whatever
    /// its rim, which partial volume pulls towards lung density (on thick slices a small solid
    /// nodule's rim alone would make it part-solid).
    pub fn classify(solid_fraction: f64, solid_component_mean_mm: f64, interior_solid_share: Option<f64>) -> Density {
        if solid_fraction >= SOLID_FRACTION || interior_solid_share.is_some_and(|s| s >= SOLID_FRACTION) {
            Density::Solid
        } else if solid_component_mean_mm < MIN_SOLID_COMPONENT_MM {
            Density::GroundGlass
        } else {
            Density::PartSolid
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Density::Solid => "solid",
            Density::PartSolid => "part-solid",
            Density::GroundGlass => "ground-glass",
        }
    }
}

/// Whether a lung with this fraction of LAA-950 voxels counts as emphysematous.
pub fn emphysema_present(laa_950_fraction: f64) -> bool {
    laa_950_fraction >= EMPHYSEMA_FRACTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_at_their_thresholds() {
        assert_eq!(Density::classify(0.80, 0.0, None), Density::Solid);
        assert_eq!(Density::classify(0.79, 5.0, None), Density::PartSolid);
        assert_eq!(Density::classify(0.79, 1.5, None), Density::PartSolid);
        assert_eq!(Density::classify(0.79, 1.4, None), Density::GroundGlass);
        assert_eq!(Density::classify(0.0, 0.0, None), Density::GroundGlass);
        assert_eq!(Density::classify(1.0, 10.0, None), Density::Solid);
    }

    #[test]
    fn a_solid_interior_makes_a_solid_nodule_at_its_threshold() {
        assert_eq!(Density::classify(0.6, 5.0, Some(0.80)), Density::Solid);
        assert_eq!(Density::classify(0.6, 5.0, Some(0.79)), Density::PartSolid);
        assert_eq!(Density::classify(0.6, 1.0, Some(0.79)), Density::GroundGlass);
        assert_eq!(Density::classify(0.85, 5.0, Some(0.2)), Density::Solid);
    }

    #[test]
    fn emphysema_at_its_threshold() {
        assert!(!emphysema_present(0.049));
        assert!(emphysema_present(0.05));
        assert!(emphysema_present(0.2));
    }

    #[test]
    fn labels_match_the_serde_names() {
        for d in [Density::Solid, Density::PartSolid, Density::GroundGlass] {
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.label()));
        }
    }
}
