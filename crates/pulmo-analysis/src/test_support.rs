//! Test fixtures shared by the crate's unit tests: plain nodule measurements, no CT behind
//! them.

use pulmo_findings::{HuStats, Measurements};
use pulmo_clinical::density::Density;
use pulmo_volume::Vec3;

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
        calcified: false,
        juxtapleural: false,
    }
}
