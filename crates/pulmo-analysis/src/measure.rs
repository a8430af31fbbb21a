//! What pulmo reports about one segmented nodule: the Lung-RADS axes on the axial slice of
//! largest extent, volume with partial volume, density statistics, solid core, shape.

use pulmo_clinical::density::{Density, SOLID_COMPONENT_MIN_HU, SOLID_FRACTION};
use pulmo_clinical::mean_diameter;
use pulmo_volume::mesh::Mesh;
use pulmo_volume::{mask, vec3, Geometry, Vec3, Volume};
pub use pulmo_findings::{HuStats, Measurements, SolidCore};

use crate::nodule::NoduleMask;
use crate::{lobulation, spiculation};

/// Calcified: density at or above this, HU (bone-like; soft tissue is below 100), over the
/// whole nodule or at its centre (a small calcification's rim is partial volume with lung).
const CALCIFIED_MIN_HU: f64 = 200.0;
/// Below this mean diameter, mm, a nodule is also calcified where its brightest voxel reaches
/// [`CALCIFIED_MIN_HU`]: a 3 mm calcified granuloma on 2 mm slices is mostly partial volume,
/// so even its centre reads below 200 HU. Only small nodules: in a larger one a bright spot is
/// no benign pattern (eccentric calcification, an enhanced vessel's stub). Below 6 mm a solid
/// nodule is category 2, the same 12-month screening as category 1, so where noise lifts one
/// voxel of a small solid nodule that high the call changes no management.
const SMALL_CALCIFIED_MAX_MM: f64 = 6.0;
/// Juxtapleural: at least this many nodule voxels touch dense tissue outside the lungs (the
/// chest wall, mediastinum or diaphragm; the lung mask keeps the nodule itself inside).
const MIN_PLEURAL_CONTACT_VOXELS: usize = 3;
/// A nodule's voxels counted whole decide its density from this many on (see [`interior_solid_share`]).
const MIN_INTERIOR_VOXELS: usize = 8;
/// Surface points used for the 3D longest diameter (pairwise distances), at most.
const MAX_SURFACE_POINTS: usize = 1500;

/// Measures a segmented nodule of the CT whose geometry is `geometry`; also returns its
/// surface (the 0.5 iso-surface of the tissue fractions, LPS mm), which sphericity comes from.
pub fn measure(nodule: &NoduleMask, geometry: &Geometry) -> (Measurements, Mesh) {
    let voxel_mm3 = geometry.voxel_volume_mm3();
    let volume_mm3 = nodule.fraction.iter().map(|f| f64::from(*f)).sum::<f64>() * voxel_mm3;
    let axes = axial_axes(nodule, &nodule.inside, geometry, Outline::TissueFraction);
    let core = solid_core(nodule, geometry);
    let solid_fraction = core.map_or(0.0, |c| (c.volume_mm3 / volume_mm3.max(f64::MIN_POSITIVE)).min(1.0));
    let hu = hu_stats(nodule);
    let surface = surface(nodule, geometry);
    let density = Density::classify(solid_fraction, core.map_or(0.0, |c| c.mean_diameter_mm), interior_solid_share(nodule));
    let mean_diameter_mm = mean_diameter(axes.long, axes.short);
    let calcified = is_calcified(nodule, &hu, mean_diameter_mm);
    // A calcified nodule is dense whatever partial volume makes of its mean.
    let density = if calcified { Density::Solid } else { density };
    // A ground-glass margin is too faint to tell strands from noise and vessels. The count's
    // spiculation call below stands until the pipeline's margin model makes its own.
    let spicules = (density != Density::GroundGlass).then(|| spiculation::count(nodule, geometry.spacing)).flatten();
    let centre_lps_mm = centre(nodule, geometry);
    let measurements = Measurements {
        centre_lps_mm,
        long_axis_mm: axes.long,
        short_axis_mm: axes.short,
        long_axis_lps_mm: axes.long_line,
        short_axis_lps_mm: axes.short_line,
        mean_diameter_mm,
        axial_plane_z_mm: axes.plane_z,
        longest_diameter_3d_mm: longest_3d(nodule, geometry),
        volume_mm3,
        mass_mg: mass(nodule, voxel_mm3),
        density,
        solid_core: core,
        solid_fraction,
        sphericity: surface.sphericity(),
        spiculated: spicules.map(|n| spiculation::is_spiculated(n, mean_diameter_mm)),
        spicules,
        spiculation_probability: None,
        margin_irregularity: lobulation::margin_irregularity(nodule, geometry, &surface, centre_lps_mm),
        calcified,
        juxtapleural: pleural_contact(nodule) >= MIN_PLEURAL_CONTACT_VOXELS,
        hu,
    };
    (measurements, surface)
}

struct Axes {
    long: f64,
    short: f64,
    long_line: [Vec3; 2],
    short_line: [Vec3; 2],
    plane_z: f64,
}

impl Axes {
    fn none(plane_z: f64, at: Vec3, size: f64) -> Axes {
        Axes { long: size, short: size, long_line: [at; 2], short_line: [at; 2], plane_z }
    }

    /// Both axes `k` times as long, their lines about their midpoints.
    fn scaled(self, k: f64) -> Axes {
        let stretch = |[a, b]: [Vec3; 2]| {
            let (mid, half) = (vec3::scale(vec3::add(a, b), 0.5), vec3::scale(vec3::sub(b, a), 0.5 * k));
            [vec3::sub(mid, half), vec3::add(mid, half)]
        };
        Axes { long: self.long * k, short: self.short * k, long_line: stretch(self.long_line), short_line: stretch(self.short_line), ..self }
    }
}

/// Largest factor by which [`slab_scale`] enlarges a slice's axes: a 5 mm sphere whose centre
/// lies midway between 2.5 mm slices shows 87% of its diameter there (the scale found is 1.08).
const MAX_SLAB_SCALE: f64 = 1.15;

/// How much larger the nodule's largest cross-section is than what slice `z` (the one of most
/// tissue, `areas` per slice) shows. A slice averages the CT over its thickness, so a small
/// nodule's outline there is that of a section smaller than its largest, the more so the
/// thicker the slice and the farther its centre from the nodule's widest plane: on 2.5 mm
/// slices spheres of 5-10 mm measured 0.1-0.7 mm small. The slices' areas are averages of the
/// cross-sectional area over each slice; through the largest and its neighbours a parabola
/// (a sphere's area profile) gives the peak of the cross-section, above the peak of the slice
/// averages by a twelfth of the curvature (taking the slice thickness as the spacing). The axes
/// grow by the square root of the peak over the slice's own area: by up to 3% on slices 1.25 mm
/// apart for nodules of 5 mm or more.
fn slab_scale(areas: &[f64], z: usize) -> f64 {
    let at = |k: Option<usize>| k.and_then(|k| areas.get(k)).copied().unwrap_or(0.0);
    let (below, here, above) = (at(z.checked_sub(1)), areas[z], at(Some(z + 1)));
    let curvature = (below + above) / 2.0 - here;
    if here <= 0.0 || curvature >= 0.0 {
        return 1.0;
    }
    let tilt = (above - below) / 2.0;
    let peak = here - tilt * tilt / (4.0 * curvature) - curvature / 12.0;
    (peak / here).sqrt().clamp(1.0, MAX_SLAB_SCALE)
}

/// Where the callipers find a set of voxels' outline, at sub-pixel precision.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outline {
    /// Where the nodule's tissue fraction crosses one half (partial volume with the lung).
    TissueFraction,
    /// Where the CT crosses the solid-component level between a core pixel and its neighbour:
    /// a core has no tissue fractions of its own, and that level is about halfway between
    /// ground glass and soft tissue.
    SolidLevel,
}

/// Lung-RADS axes of the voxels `which` of the nodule's box, on the slice where they are
/// largest: for the whole nodule the slice of most tissue (the sum of its fractions, not a
/// count of voxels over the threshold: a lobulated nodule's area changes little across slices
/// while its long axis does, and the count picked slices a millimetre off the largest), for a
/// solid core the slice of most core pixels. The callipers go on the `outline` (see
/// [`contour`]); edge pixels, half a pixel out, where it has under three points. Callipers on
/// edge pixels measured solid cores 0.45 mm large (median, tuning phantoms): the farthest pair
/// of a digitised disc's pixels lies beyond its diameter more often than not. The whole
/// nodule's axes are then scaled to its largest cross-section ([`slab_scale`]).
fn axial_axes(nodule: &NoduleMask, which: &[bool], geometry: &Geometry, outline: Outline) -> Axes {
    let [nz, ny, nx] = nodule.dims;
    let plane = ny * nx;
    let area = |z: usize| -> f64 {
        let voxels = z * plane..(z + 1) * plane;
        match outline {
            Outline::TissueFraction => voxels.map(|i| tissue_fraction(nodule, i)).sum(),
            Outline::SolidLevel => voxels.filter(|&i| which[i]).count() as f64,
        }
    };
    let areas: Vec<f64> = (0..nz).map(area).collect();
    let Some(z) = (0..nz).max_by(|&a, &b| areas[a].total_cmp(&areas[b])) else {
        return Axes::none(0.0, [0.0; 3], 0.0);
    };
    let axes = slice_axes(nodule, which, geometry, outline, z);
    match outline {
        Outline::TissueFraction => axes.scaled(slab_scale(&areas, z)),
        Outline::SolidLevel => axes,
    }
}

/// The Lung-RADS axes of the voxels `which` on slice `z` of the nodule's box.
fn slice_axes(nodule: &NoduleMask, which: &[bool], geometry: &Geometry, outline: Outline, z: usize) -> Axes {
    let [_, ny, nx] = nodule.dims;
    let plane = ny * nx;
    let slice = &which[z * plane..(z + 1) * plane];
    let edge: Vec<Vec3> = (0..plane)
        .filter(|&p| slice[p] && in_plane_edge(slice, p, ny, nx))
        .map(|p| nodule.lps(z * plane + p, geometry))
        .collect();
    let pixel = (geometry.spacing[1] + geometry.spacing[2]) / 2.0;
    let plane_z = edge.first().map_or(0.0, |p| p[2]);
    let contour = contour(nodule, z, geometry, |i, j| crossing(nodule, which, outline, i, j));
    let axes = match contour.len() {
        0..=2 => callipers(&edge, pixel, geometry.slice_normal(), plane_z),
        _ => callipers(&contour, 0.0, geometry.slice_normal(), plane_z),
    };
    axes.unwrap_or_else(|| {
        let single = if edge.is_empty() { 0.0 } else { pixel };
        Axes::none(plane_z, edge.first().copied().unwrap_or([0.0; 3]), single)
    })
}

/// Where between box voxels `i` and `j` (in-plane neighbours) the outline crosses, as a share
/// of the way from `i` to `j`; `None` where it does not. Tissue cut off the nodule (a vessel,
/// denser than the segmentation's threshold) counts as none, so the outline stops where the
/// cut did. A core pixel beside solid tissue that is not core (a vessel the core touches) has
/// no level crossing between them: the edge is taken halfway.
fn crossing(nodule: &NoduleMask, which: &[bool], outline: Outline, i: usize, j: usize) -> Option<f64> {
    match outline {
        Outline::TissueFraction => {
            let (a, b) = (tissue_fraction(nodule, i), tissue_fraction(nodule, j));
            ((a >= 0.5) != (b >= 0.5)).then(|| (a - 0.5) / (a - b))
        }
        Outline::SolidLevel => (which[i] != which[j]).then(|| {
            let (a, b) = (f64::from(nodule.hu[i]), f64::from(nodule.hu[j]));
            match (a >= SOLID_COMPONENT_MIN_HU) != (b >= SOLID_COMPONENT_MIN_HU) {
                true => (a - SOLID_COMPONENT_MIN_HU) / (a - b),
                false => 0.5,
            }
        }),
    }
}

/// The points where `crossing` finds the outline between neighbouring pixels of slice `z`
/// (linear between their centres), LPS mm.
fn contour(nodule: &NoduleMask, z: usize, geometry: &Geometry, crossing: impl Fn(usize, usize) -> Option<f64>) -> Vec<Vec3> {
    let [_, ny, nx] = nodule.dims;
    let at = |y: usize, x: usize| (z * ny + y) * nx + x;
    let right = (0..ny).flat_map(|y| (1..nx).map(move |x| (at(y, x - 1), at(y, x))));
    let down = (1..ny).flat_map(|y| (0..nx).map(move |x| (at(y - 1, x), at(y, x))));
    right
        .chain(down)
        .filter_map(|(i, j)| {
            let t = crossing(i, j)?;
            let (p, q) = (nodule.lps(i, geometry), nodule.lps(j, geometry));
            Some(vec3::add(p, vec3::scale(vec3::sub(q, p), t)))
        })
        .collect()
}

/// The nodule's tissue fraction at box voxel `i`; tissue cut off the nodule (a vessel, denser
/// than the segmentation's threshold) counts as none.
fn tissue_fraction(nodule: &NoduleMask, i: usize) -> f64 {
    match nodule.inside[i] || nodule.hu[i] < nodule.threshold_hu() {
        true => f64::from(nodule.fraction[i]),
        false => 0.0,
    }
}

/// Callipers on in-plane points: the long axis between the farthest pair, the short axis the
/// extent across it; each `margin` mm longer (the points are pixel centres, half a pixel
/// inside the edge on average, or 0 for points on the edge), on the plane at LPS z `plane_z`.
/// `None` below two points.
fn callipers(points: &[Vec3], margin: f64, normal: Vec3, plane_z: f64) -> Option<Axes> {
    let (a, b) = farthest_pair(points)?;
    let long = vec3::dist(a, b) + margin;
    let along = vec3::normalize(vec3::sub(b, a));
    let across = vec3::normalize(vec3::cross(normal, along));
    let (lo, hi) = points.iter().map(|p| vec3::dot(*p, across)).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| (lo.min(d), hi.max(d)));
    let short = (hi - lo + margin).min(long);
    // Lines drawn edge to edge: the long axis through its end points, the short axis across
    // the long axis's midpoint.
    let half = vec3::scale(along, margin / 2.0);
    let mid = vec3::scale(vec3::add(a, b), 0.5);
    let centre_across = vec3::add(mid, vec3::scale(across, (lo + hi) / 2.0 - vec3::dot(mid, across)));
    let short_half = vec3::scale(across, short / 2.0);
    Some(Axes {
        long,
        short,
        long_line: [vec3::sub(a, half), vec3::add(b, half)],
        short_line: [vec3::sub(centre_across, short_half), vec3::add(centre_across, short_half)],
        plane_z,
    })
}

fn in_plane_edge(slice: &[bool], p: usize, ny: usize, nx: usize) -> bool {
    let (y, x) = (p / nx, p % nx);
    x == 0 || y == 0 || x + 1 == nx || y + 1 == ny || !slice[p - 1] || !slice[p + 1] || !slice[p - nx] || !slice[p + nx]
}

fn farthest_pair(points: &[Vec3]) -> Option<(Vec3, Vec3)> {
    let mut best: Option<(f64, Vec3, Vec3)> = None;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let d = vec3::dist(*a, *b);
            if best.is_none_or(|(bd, _, _)| d > bd) {
                best = Some((d, *a, *b));
            }
        }
    }
    best.map(|(_, a, b)| (a, b))
}

/// Nodule voxels with a face neighbour outside the lungs that is tissue, not air.
fn pleural_contact(nodule: &NoduleMask) -> usize {
    (0..nodule.inside.len())
        .filter(|&i| nodule.inside[i] && mask::face_neighbours(i, nodule.dims).any(|j| nodule.is_wall(j)))
        .count()
}

/// Fraction-weighted centroid.
fn centre(nodule: &NoduleMask, geometry: &Geometry) -> Vec3 {
    let (mut sum, mut weight) = ([0.0; 3], 0.0);
    for (i, f) in nodule.fraction.iter().enumerate().filter(|(_, f)| **f > 0.0) {
        let p = nodule.lps(i, geometry);
        sum = vec3::add(sum, vec3::scale(p, f64::from(*f)));
        weight += f64::from(*f);
    }
    vec3::scale(sum, 1.0 / weight.max(f64::MIN_POSITIVE))
}

fn longest_3d(nodule: &NoduleMask, geometry: &Geometry) -> f64 {
    let surface: Vec<usize> = (0..nodule.inside.len())
        .filter(|&i| nodule.inside[i] && mask::face_neighbours(i, nodule.dims).filter(|&j| nodule.inside[j]).count() < 6)
        .collect();
    let stride = surface.len().div_ceil(MAX_SURFACE_POINTS).max(1);
    let points: Vec<Vec3> = surface.iter().step_by(stride).map(|&i| nodule.lps(i, geometry)).collect();
    let voxel = (geometry.spacing[0] + geometry.spacing[1] + geometry.spacing[2]) / 3.0;
    farthest_pair(&points).map_or(0.0, |(a, b)| vec3::dist(a, b) + voxel)
}

fn hu_stats(nodule: &NoduleMask) -> HuStats {
    let values: Vec<f64> = nodule.inside.iter().zip(&nodule.hu).filter(|(i, _)| **i).map(|(_, h)| f64::from(*h)).collect();
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    HuStats { mean, sd, min: if values.is_empty() { 0.0 } else { min }, max: if values.is_empty() { 0.0 } else { max } }
}

fn is_calcified(nodule: &NoduleMask, hu: &HuStats, mean_diameter_mm: f64) -> bool {
    let small_and_bright = mean_diameter_mm < SMALL_CALCIFIED_MAX_MM && hu.max >= CALCIFIED_MIN_HU;
    hu.mean.max(nodule.tissue_hu) >= CALCIFIED_MIN_HU || small_and_bright
}

fn mass(nodule: &NoduleMask, voxel_mm3: f64) -> f64 {
    let grams_per_cm3 = |hu: f32| ((f64::from(hu) + 1000.0) / 1000.0).max(0.0);
    // 1 mm3 at 1 g/cm3 weighs 1 mg.
    nodule.fraction.iter().zip(&nodule.hu).map(|(f, h)| f64::from(*f) * grams_per_cm3(*h) * voxel_mm3).sum()
}

/// The solid share of the nodule's voxels counted whole (fraction 1: its interior, and rim
/// voxels at least as dense as its tissue), the part of it partial volume does not dilute;
/// `None` below [`MIN_INTERIOR_VOXELS`] (a nodule a few voxels across).
fn interior_solid_share(nodule: &NoduleMask) -> Option<f64> {
    let whole = nodule.inside.iter().zip(&nodule.fraction).zip(&nodule.hu).filter(|((i, f), _)| **i && **f >= 1.0);
    let (count, solid) = whole.fold((0usize, 0usize), |(n, s), (_, h)| (n + 1, s + usize::from(f64::from(*h) >= SOLID_COMPONENT_MIN_HU)));
    (count >= MIN_INTERIOR_VOXELS).then(|| solid as f64 / count as f64)
}

/// A solid part this large (mm3, a ball of 16 mm) is no vessel crossing the nodule (one of
/// 4 mm radius would have to run 40 mm through it): it is the solid tissue of a mass, which
/// reaches the mass's surface, and on thick slices the solid tissue the vessel cut parted from
/// it lies against it above and below (the real a0002 adenocarcinoma on 8 mm slices: 16 cm3
/// of solid tissue, two thirds of it on such a surface).
const LARGE_CORE_MM3: f64 = 2000.0;

/// The largest connected part of the nodule at solid density. In a mostly non-solid nodule it
/// must lie within the nodule: a vessel running through ground glass is just as dense, but it
/// crosses the nodule's surface, so parts with more than a sixth of their voxels on it are not
/// a solid core there. Across slices only solid tissue beyond the surface counts (a vessel runs
/// on, since the vessel cut takes it off the nodule, not off the CT): on slices 2-2.5 mm thick
/// a small nodule is three or four slices deep, and its core reaches the top and bottom ones.
/// A part of at least [`LARGE_CORE_MM3`] is a core wherever it lies.
fn solid_core(nodule: &NoduleMask, geometry: &Geometry) -> Option<SolidCore> {
    let is_solid = |i: usize| f64::from(nodule.hu[i]) >= SOLID_COMPONENT_MIN_HU;
    let plane = nodule.dims[1] * nodule.dims[2];
    let crosses = |i: usize, j: usize| !nodule.inside[j] && (i / plane == j / plane || is_solid(j));
    let solid: Vec<bool> = (0..nodule.inside.len()).map(|i| nodule.inside[i] && is_solid(i)).collect();
    let parts = mask::label_components(&solid, nodule.dims);
    let mut on_surface = vec![0usize; parts.sizes.len()];
    for (i, &l) in parts.labels.iter().enumerate().filter(|(_, l)| **l != 0) {
        on_surface[l as usize] += usize::from(mask::face_neighbours(i, nodule.dims).any(|j| crosses(i, j)));
    }
    let solid_voxels = solid.iter().filter(|s| **s).count() as f64;
    let mostly_solid = solid_voxels >= SOLID_FRACTION * nodule.inside.iter().filter(|i| **i).count() as f64;
    let large = |l: u32| parts.sizes[l as usize] as f64 * geometry.voxel_volume_mm3() >= LARGE_CORE_MM3;
    let within = |l: u32| mostly_solid || large(l) || 6 * on_surface[l as usize] <= parts.sizes[l as usize];
    let core_label = parts.by_size().into_iter().find(|&l| within(l))?;
    let core: Vec<bool> = parts.labels.iter().map(|&l| l == core_label).collect();
    let axes = axial_axes(nodule, &core, geometry, Outline::SolidLevel);
    Some(SolidCore {
        long_axis_mm: axes.long,
        short_axis_mm: axes.short,
        mean_diameter_mm: mean_diameter(axes.long, axes.short),
        volume_mm3: parts.sizes[core_label as usize] as f64 * geometry.voxel_volume_mm3(),
    })
}

/// The 0.5 iso-surface of the tissue fractions, in patient LPS mm.
fn surface(nodule: &NoduleMask, geometry: &Geometry) -> Mesh {
    let field = nodule.box_geometry(geometry).and_then(|box_geometry| Volume::new(nodule.dims, box_geometry, nodule.fraction.clone()).ok());
    field.map_or_else(Mesh::default, |f| Mesh::isosurface(&f, 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACING: Vec3 = [2.5, 0.7, 0.7];

    /// A ground-glass nodule 9 mm across (three slices 2.5 mm apart) in the middle of a box of
    /// lung, with `solid(dz, dy, dx)` (mm from its centre) at soft-tissue density, inside the
    /// nodule or beyond it.
    fn ground_glass_with(solid: impl Fn(f64, f64, f64) -> bool) -> NoduleMask {
        ground_glass_ball(9.0, SPACING, solid)
    }

    /// [`ground_glass_with`] for a ground-glass ball of `diameter` mm at `spacing`, in a box
    /// leaving a voxel of lung all round.
    fn ground_glass_ball(diameter: f64, spacing: Vec3, solid: impl Fn(f64, f64, f64) -> bool) -> NoduleMask {
        let half = [0, 1, 2].map(|a| (diameter / 2.0 / spacing[a]).ceil() as usize + 1);
        let dims = half.map(|h| 2 * h + 1);
        let n = dims.iter().product();
        let (mut inside, mut hu) = (vec![false; n], vec![-850.0f32; n]);
        for i in 0..n {
            let index = [i / (dims[1] * dims[2]), (i / dims[2]) % dims[1], i % dims[2]];
            let [dz, dy, dx] = [0, 1, 2].map(|a| (index[a] as f64 - half[a] as f64) * spacing[a]);
            inside[i] = dz * dz + dy * dy + dx * dx <= (diameter / 2.0).powi(2);
            hu[i] = match (solid(dz, dy, dx), inside[i]) {
                (true, _) => 40.0,
                (false, true) => -600.0,
                (false, false) => -850.0,
            };
        }
        let fraction = inside.iter().map(|v| f32::from(u8::from(*v))).collect();
        NoduleMask { origin: [0; 3], dims, inside, fraction, hu, lung: vec![true; n], tissue_hu: -600.0, lung_hu: -850.0 }
    }

    /// A solid ball of `diameter` mm in lung on 1 mm slices of `pixel` mm pixels, centred on a
    /// slice but off the pixel grid, each voxel's HU and tissue fraction its share of the ball
    /// (4^3 subsamples): what the segmentation's partial-volume fractions stand for.
    fn ball(diameter: f64, pixel: f64) -> (NoduleMask, Geometry) {
        ball_of(diameter, [1.0, pixel, pixel], 40.0, 0.0)
    }

    /// [`ball`] at `spacing` of `tissue_hu` tissue, its centre `z_offset` slices off a slice.
    fn ball_of(diameter: f64, spacing: Vec3, tissue_hu: f32, z_offset: f64) -> (NoduleMask, Geometry) {
        let extent = |a: usize| (diameter / spacing[a]).ceil() as usize + 6;
        let dims = [extent(0), extent(1), extent(2)];
        let n = dims.iter().product();
        let fraction: Vec<f32> = (0..n).map(|i| ball_share(i, dims, spacing, diameter, z_offset)).collect();
        let hu = fraction.iter().map(|f| -850.0 + (tissue_hu + 850.0) * f).collect();
        let inside = fraction.iter().map(|f| *f >= 0.5).collect();
        let geometry = Geometry::axial([0.0; 3], spacing).expect("geometry");
        let tissue_hu = f64::from(tissue_hu);
        (NoduleMask { origin: [0; 3], dims, inside, fraction, hu, lung: vec![true; n], tissue_hu, lung_hu: -850.0 }, geometry)
    }

    /// Share of box voxel `i` inside a ball of `diameter` mm at the box's centre, `z_offset`
    /// slices off a slice and off the pixel grid in-plane (4^3 subsamples).
    fn ball_share(i: usize, dims: [usize; 3], spacing: Vec3, diameter: f64, z_offset: f64) -> f32 {
        let centre = [dims[0] / 2, dims[1] / 2, dims[2] / 2].map(|c| c as f64);
        let centre = [centre[0] + z_offset, centre[1] + 0.3, centre[2] + 0.45];
        let index = [i / (dims[1] * dims[2]), (i / dims[2]) % dims[1], i % dims[2]];
        let sub = |k: usize, a: usize| (index[a] as f64 - 0.375 + 0.25 * k as f64 - centre[a]) * spacing[a];
        let hits = (0..64).filter(|k| vec3::norm([sub(k / 16, 0), sub((k / 4) % 4, 1), sub(k % 4, 2)]) <= diameter / 2.0).count();
        hits as f32 / 64.0
    }

    /// On edge pixels, half a pixel out, the 4.6 mm core at 0.7 mm pixels measured 5.1 mm long.
    #[test]
    fn a_solid_core_is_measured_where_the_ct_crosses_the_solid_level() {
        for core in [4.6, 6.1, 7.9] {
            for pixel in [0.7, 0.9] {
                let (mut nodule, geometry) = ball_of(14.0, [1.0, pixel, pixel], -600.0, 0.0);
                for i in 0..nodule.hu.len() {
                    nodule.hu[i] += 640.0 * ball_share(i, nodule.dims, [1.0, pixel, pixel], core, 0.0);
                }
                let (m, _) = measure(&nodule, &geometry);
                let c = m.solid_core.expect("a core");
                for (name, axis) in [("long", c.long_axis_mm), ("short", c.short_axis_mm)] {
                    assert!((axis - core).abs() <= 0.25, "{core} mm core at {pixel} mm pixels: {name} axis {axis:.2} mm");
                }
            }
        }
    }

    /// Within a quarter pixel: the outline's points lie on grid lines, so on a small ball the
    /// callipers can fall between them (the short axis of the 4.6 mm ball at 0.9 mm, -0.2 mm);
    /// on pixel centres plus a pixel the long axes were up to 0.6 mm long.
    #[test]
    fn axes_are_taken_on_the_partial_volume_edge() {
        for diameter in [4.6, 5.8, 6.1, 9.3] {
            for pixel in [0.7, 0.9] {
                let (nodule, geometry) = ball(diameter, pixel);
                let (m, _) = measure(&nodule, &geometry);
                for (name, axis) in [("long", m.long_axis_mm), ("short", m.short_axis_mm)] {
                    assert!((axis - diameter).abs() <= 0.25, "{diameter} mm ball at {pixel} mm pixels: {name} axis {axis:.2} mm");
                }
            }
        }
    }

    /// On 2.5 mm slices the slice of most tissue shows a section smaller than the ball's
    /// largest; uncorrected, the 5.8 mm ball midway between slices measured 5.1 mm across.
    #[test]
    fn thick_slices_are_measured_at_the_largest_cross_section() {
        for diameter in [5.8, 6.5, 8.2] {
            for z_offset in [0.0, 0.25, 0.5] {
                let (nodule, geometry) = ball_of(diameter, [2.5, 0.7, 0.7], 40.0, z_offset);
                let (m, _) = measure(&nodule, &geometry);
                let error = m.mean_diameter_mm - diameter;
                assert!(error.abs() <= 0.3, "{diameter} mm ball {z_offset} slices off a 2.5 mm slice: mean diameter {:.1} mm", m.mean_diameter_mm);
            }
        }
    }

    #[test]
    fn a_parabolic_area_profile_gives_its_peak() {
        // Slice averages of the area pi (9 - z^2) of a 6 mm ball, slices 1 mm thick at z -1, 0, 1.
        let average = |z: f64| std::f64::consts::PI * (9.0 - z * z - 1.0 / 12.0);
        let k = slab_scale(&[average(-1.0), average(0.0), average(1.0)], 1);
        assert!((k * k * average(0.0) - 9.0 * std::f64::consts::PI).abs() < 1e-9, "{k}");
        // A flat profile is left as it is (a long blob along z, or a sheet).
        assert_eq!(slab_scale(&[5.0, 5.0, 5.0], 1), 1.0);
    }

    fn density(nodule: &NoduleMask) -> Density {
        let geometry = Geometry::axial([0.0; 3], SPACING).expect("geometry");
        measure(nodule, &geometry).0.density
    }

    #[test]
    fn a_core_through_all_of_a_thick_sliced_nodule_is_solid_component() {
        let core = ground_glass_with(|dz, dy, dx| dz.abs() <= 2.5 && dy * dy + dx * dx <= 1.8 * 1.8);
        assert_eq!(density(&core), Density::PartSolid);
    }

    #[test]
    fn vessels_through_ground_glass_are_no_solid_component() {
        let along_z = ground_glass_with(|_, dy, dx| dy * dy + dx * dx <= 1.0);
        let skimming_the_edge = ground_glass_with(|dz, dy, _| dz.abs() <= 2.5 && (dy - 3.5).abs() <= 0.8);
        assert_eq!(density(&along_z), Density::GroundGlass);
        assert_eq!(density(&skimming_the_edge), Density::GroundGlass);
    }

    /// A 44 mm mass on 8 mm slices, ground glass on one side and solid on the other, the
    /// solid tissue running on above and below it (as where the vessel cut parted the mass):
    /// most of the solid part's voxels lie on a surface that a vessel crosses.
    #[test]
    fn the_solid_side_of_a_mass_is_its_solid_component() {
        let spacing = [8.0, 0.7, 0.7];
        let mass = ground_glass_ball(44.0, spacing, |_, _, dx| dx >= 4.0);
        let geometry = Geometry::axial([0.0; 3], spacing).expect("geometry");
        let (m, _) = measure(&mass, &geometry);
        let core = m.solid_core.expect("a solid component");
        assert!((core.long_axis_mm - 44.0).abs() < 1.5, "core long axis {:.1} mm", core.long_axis_mm);
        assert_eq!(m.density, Density::PartSolid);
        // A vessel of 1 mm radius along z through the same mass is still no solid component.
        let crossed = ground_glass_ball(44.0, spacing, |_, dy, dx| dy * dy + dx * dx <= 1.0);
        assert_eq!(measure(&crossed, &geometry).0.density, Density::GroundGlass);
    }

    /// What the segmentation reads of a 3 mm calcified granuloma between two 2.5 mm slices: its
    /// centre under 200 HU (partial volume), its mask's mean far under.
    fn small_calcification() -> (NoduleMask, Geometry) {
        let (mut nodule, geometry) = ball_of(3.0, [2.5, 0.7, 0.7], 900.0, 0.3);
        nodule.tissue_hu = -100.0;
        let threshold = nodule.threshold_hu();
        nodule.inside = nodule.hu.iter().map(|h| *h >= threshold).collect();
        (nodule, geometry)
    }

    #[test]
    fn a_small_calcification_diluted_by_partial_volume_is_calcified_and_solid() {
        let (nodule, geometry) = small_calcification();
        let (m, _) = measure(&nodule, &geometry);
        assert!(m.hu.mean < CALCIFIED_MIN_HU, "the mask's mean {:.0} HU must be under the whole-nodule rule", m.hu.mean);
        assert!(m.calcified, "brightest voxel {:.0} HU", m.hu.max);
        assert_eq!(m.density, Density::Solid);
    }

    #[test]
    fn a_bright_spot_in_a_larger_nodule_is_no_calcification() {
        let (mut nodule, geometry) = ball_of(9.0, [1.0, 0.7, 0.7], 40.0, 0.0);
        let [_, ny, nx] = nodule.dims;
        let spot = (0..nodule.hu.len()).filter(|&i| nodule.inside[i]).min_by_key(|&i| (i % nx) + (i / nx) % ny).expect("a voxel");
        for i in [spot, spot + 1, spot + nx, spot + nx + 1] {
            nodule.hu[i] = 600.0;
        }
        assert!(!measure(&nodule, &geometry).0.calcified);
        let (small_solid, geometry) = ball_of(4.0, [2.5, 0.7, 0.7], 40.0, 0.3);
        assert!(!measure(&small_solid, &geometry).0.calcified);
    }
}
