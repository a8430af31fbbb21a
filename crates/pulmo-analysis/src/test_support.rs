//! Test fixtures shared by the crate's unit tests: plain nodule measurements, no CT behind
//! them.

use pulmo_findings::{HuStats, Measurements};
use pulmo_clinical::density::Density;
use pulmo_volume::{Geometry, Vec3, Volume};

use crate::LungMask;

/// A lung mask that is the right lung over the whole CT grid (`dims`, `geometry`); no extents,
/// carina or notes.
pub(crate) fn lung_everywhere(dims: [usize; 3], geometry: Geometry) -> LungMask {
    let labels = Volume::new(dims, geometry, vec![LungMask::RIGHT; dims.iter().product()]).expect("labels");
    LungMask { labels, right: None, left: None, carina_z_mm: None, laa950_fraction: 0.0, notes: Vec::new() }
}

/// A round nodule of `diameter` mm at `centre`, nothing else about it set.
pub(crate) fn measurements(centre: Vec3, diameter: f64, density: Density) -> Measurements {
    Measurements {
        centre_lps_mm: centre,
        long_axis_mm: diameter,
        short_axis_mm: diameter,
        long_axis_lps_mm: [centre; 2],
        short_axis_lps_mm: [centre; 2],
        mean_diameter_mm: diameter,
        axial_plane_z_mm: centre[2],
        longest_diameter_3d_mm: diameter,
        volume_mm3: std::f64::consts::PI / 6.0 * diameter.powi(3),
        hu: HuStats { mean: 20.0, sd: 10.0, min: -100.0, max: 60.0 },
        mass_mg: 0.0,
        solid_core: None,
        solid_fraction: 1.0,
        density,
        sphericity: 1.0,
        spiculated: None,
        spicules: None,
        spiculation_probability: None,
        margin_irregularity: Some(0.01),
        calcified: false,
        juxtapleural: false,
    }
}
