//! One nodule, from a seed (a candidate's centre and radius) to its voxels on the CT grid: cut
//! from attached vessels and the chest wall, with each voxel's partial-volume fraction.
//!
//! The nodule's tissue density is read at the seed and the lung's around it; voxels above the
//! midpoint that connect to the seed inside the lung mask are the nodule (the lung mask keeps
//! juxtapleural nodules and leaves out the chest wall; next to the seed it is first extended
//! to the pleura at the CT's resolution, see [`crate::pleura`]). An opening with a ball of half the
//! nodule's radius, then reconstruction inside the first region, cuts vessels thinner than
//! that ball. Partial volume: a voxel on the rim counts by where its HU lies between lung and
//! tissue, which is what makes small-nodule volumes right.

use pulmo_volume::{distance, mask, vec3, BoxRegion, Geometry, Vec3, Volume};

use crate::lung::LungMask;
use crate::pleura;

/// A nodule must be at least this much denser than the lung around it, HU.
const MIN_CONTRAST_HU: f64 = 100.0;
/// Aerated lung is below this, HU; used to read the lung's density around a nodule.
pub(crate) const AERATED_MAX_HU: f32 = -500.0;
/// Solid tissue (a solid nodule, a part-solid nodule's core) is at or above this, HU.
const SOLID_MIN_HU: f64 = pulmo_clinical::density::SOLID_COMPONENT_MIN_HU;
/// How far out, in seed radii, a part-solid nodule's ground-glass halo is looked for: the
/// candidate finder often sizes such a nodule by its solid core alone.
const HALO_SCALES: [f64; 3] = [1.0, 1.5, 2.0];
/// Share of a ring's voxels that must be ground glass for it to be a halo: a crowd of vessels
/// or the partial-volume rim of a solid nodule is not.
const MIN_HALO_SHARE: f64 = 0.5;

/// A nodule's voxels in a box of the CT.
#[derive(Debug, Clone)]
pub struct NoduleMask {
    /// First CT voxel (z, y, x) of the box, and the box's size.
    pub origin: [usize; 3],
    pub dims: [usize; 3],
    /// Per box voxel: part of the nodule (above the threshold, connected, vessels cut).
    pub inside: Vec<bool>,
    /// Per box voxel: fraction of nodule tissue, 0..1 (0 away from the nodule).
    pub fraction: Vec<f32>,
    /// HU of the box's voxels.
    pub hu: Vec<f32>,
    /// Per box voxel: inside the lung mask.
    pub lung: Vec<bool>,
    pub tissue_hu: f64,
    pub lung_hu: f64,
}

impl NoduleMask {
    /// CT index of box voxel `i`.
    pub fn ct_index(&self, i: usize) -> [usize; 3] {
        let [_, ny, nx] = self.dims;
        [self.origin[0] + i / (ny * nx), self.origin[1] + (i / nx) % ny, self.origin[2] + i % nx]
    }

    /// Patient position (LPS mm) of box voxel `i` in a CT of `geometry`.
    pub fn lps(&self, i: usize, geometry: &Geometry) -> Vec3 {
        geometry.index_to_lps(self.ct_index(i).map(|v| v as f64))
    }

    /// Whether the nodule's voxels include the one nearest a patient position.
    pub fn contains(&self, lps: Vec3, geometry: &Geometry) -> bool {
        let index = geometry.lps_to_index(lps).map(f64::round);
        // Negative or non-finite indices lie outside every box (`as usize` would clamp them in).
        if index.iter().any(|c| !(*c >= 0.0)) {
            return false;
        }
        self.offset_of(index.map(|c| c as usize)).is_some_and(|i| self.inside[i])
    }

    /// The nodule's voxels on the CT grid, compactly.
    pub fn region(&self) -> BoxRegion {
        BoxRegion::from_mask(self.origin, self.dims, &self.inside)
    }

    /// Whether the nodule reaches a face of its box. The box leaves more than the seed's
    /// radius of margin all round, so what reaches it is larger than the blob that was seeded:
    /// a vessel tree or a wall the region grew into, not one nodule.
    pub fn reaches_box_border(&self) -> bool {
        (0..self.inside.len()).any(|i| self.inside[i] && self.on_box_face(i))
    }

    /// Whether the two nodules share a voxel or touch face to face (masks of one CT): two
    /// segmentations of one lesion, e.g. of a large tumour seeded at two candidates.
    pub fn touches(&self, other: &NoduleMask) -> bool {
        const STEPS: [[isize; 3]; 7] = [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]];
        let in_other = |ct: [usize; 3], d: [isize; 3]| {
            let [z, y, x] = [0, 1, 2].map(|a| ct[a].checked_add_signed(d[a]));
            let next = [z?, y?, x?];
            other.offset_of(next).map(|i| other.inside[i])
        };
        (0..self.inside.len())
            .filter(|&i| self.inside[i])
            .any(|i| STEPS.iter().any(|d| in_other(self.ct_index(i), *d) == Some(true)))
    }

    /// The shortest distance between the centres of the two nodules' voxels (masks of one CT),
    /// mm: 0 when they share one.
    pub fn gap_mm(&self, other: &NoduleMask, geometry: &Geometry) -> f64 {
        if self.touches(other) {
            return 0.0;
        }
        let a: Vec<Vec3> = self.surface().map(|i| self.lps(i, geometry)).collect();
        let b: Vec<Vec3> = other.surface().map(|i| other.lps(i, geometry)).collect();
        a.iter().flat_map(|p| b.iter().map(move |q| vec3::dist(*p, *q))).fold(f64::INFINITY, f64::min)
    }

    /// The two nodules (masks of `ct`) as one, in a box holding both: one lesion segmented in
    /// parts. A voxel is inside if either part has it, with the larger tissue fraction, and in
    /// the lung if `lungs` or either part says so (a part's lung reaches the pleura next to it,
    /// see [`crate::pleura`]); HU are read from `ct`. The levels are those of the part segmented
    /// at the lower threshold, which takes in the other's tissue too.
    pub fn union(&self, other: &NoduleMask, ct: &Volume<i16>, lungs: &LungMask) -> NoduleMask {
        let origin: [usize; 3] = std::array::from_fn(|a| self.origin[a].min(other.origin[a]));
        let end = |m: &NoduleMask, a: usize| m.origin[a] + m.dims[a];
        let dims: [usize; 3] = std::array::from_fn(|a| end(self, a).max(end(other, a)) - origin[a]);
        let b = Box3 { start: origin, dims };
        let mut inside = Vec::with_capacity(dims.iter().product());
        let (mut fraction, mut hu, mut lung) = (Vec::new(), Vec::new(), Vec::new());
        for v in b.voxels() {
            let parts = [self, other].map(|m| m.offset_of(v).map(|i| (m, i)));
            let known = parts.iter().flatten();
            inside.push(known.clone().any(|(m, i)| m.inside[*i]));
            fraction.push(known.clone().map(|(m, i)| m.fraction[*i]).fold(0.0, f32::max));
            hu.push(ct.get(v).map_or(-1000.0, |h| f32::from(*h)));
            let in_lung = lungs.labels.get(v).is_some_and(|l| *l != 0);
            lung.push(in_lung || known.clone().any(|(m, i)| m.lung[*i]));
        }
        let levels = if self.threshold_hu() <= other.threshold_hu() { self } else { other };
        NoduleMask { origin, dims, inside, fraction, hu, lung, tissue_hu: levels.tissue_hu, lung_hu: levels.lung_hu }
    }

    /// Box offset of CT voxel `v`, if the box holds it.
    fn offset_of(&self, v: [usize; 3]) -> Option<usize> {
        let local: [usize; 3] = std::array::from_fn(|a| v[a].wrapping_sub(self.origin[a]));
        let [_, ny, nx] = self.dims;
        (0..3).all(|a| local[a] < self.dims[a]).then(|| local[0] * ny * nx + local[1] * nx + local[2])
    }

    /// Box offsets of the nodule's voxels that have a face neighbour outside it (or lie on the
    /// box's face).
    fn surface(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.inside.len()).filter(|&i| {
            self.inside[i] && (self.on_box_face(i) || mask::face_neighbours(i, self.dims).any(|j| !self.inside[j]))
        })
    }

    /// The HU its voxels were segmented at (see [`threshold_hu`]).
    pub fn threshold_hu(&self) -> f32 {
        threshold_hu(self.tissue_hu, self.lung_hu)
    }

    /// The box's own geometry (its first voxel the origin) in a CT of `geometry`; `None` only
    /// where `geometry` itself is degenerate.
    pub fn box_geometry(&self, geometry: &Geometry) -> Option<Geometry> {
        let origin = geometry.index_to_lps(self.origin.map(|v| v as f64));
        Geometry::new(origin, geometry.spacing, geometry.direction).ok()
    }

    /// Whether box voxel `i` is dense tissue outside the lungs: chest wall, mediastinum or
    /// diaphragm (the lung mask keeps the nodule itself inside).
    pub fn is_wall(&self, i: usize) -> bool {
        !self.lung[i] && f64::from(self.hu[i]) >= SOLID_MIN_HU
    }

    /// Radius of the ball with the nodule's volume (whole voxels), mm.
    pub fn equivalent_radius_mm(&self, spacing: Vec3) -> f64 {
        let voxels = self.inside.iter().filter(|v| **v).count() as f64;
        (voxels * spacing[0] * spacing[1] * spacing[2] * 3.0 / (4.0 * std::f64::consts::PI)).cbrt()
    }

    /// Whether box voxel `i` lies on a face of the box.
    pub fn on_box_face(&self, i: usize) -> bool {
        let [nz, ny, nx] = self.dims;
        let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
        z == 0 || y == 0 || x == 0 || z + 1 == nz || y + 1 == ny || x + 1 == nx
    }
}

/// The vessel cut's ball radii, as fractions of the nodule's radius, in the order they are
/// tried. Half keeps a lobulated or spiculated nodule's outline, and is the one cut for most
/// seeds. A nodule on a vessel as thick as half its radius stays merged with it under that
/// cut; the larger balls free it, but on an unlikely nodule they also carve vessel junctions
/// into round blobs, so the pipeline tries them on confident detections only. The radius is
/// the seed's, and the candidate finder's smallest scale (1.7 mm) seeds nodules up to about
/// 6 mm: one of 5.5 mm on a vessel of 2 mm radius is freed only by a ball larger than that
/// scale, hence the last cut.
pub const VESSEL_CUTS: [f64; 4] = [0.5, 0.75, 1.0, 1.25];

/// What the vessel cut does where a nodule meets the chest wall. The lung mask ends there, so
/// it leaves a juxtapleural nodule's wall side thin, and a cut that may not lean on the wall
/// takes that side off as if it were an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pleura {
    /// The wall side is cut like any thin part: the lung-side blob, rounder than the whole
    /// nodule, which the reporting shape rules were chosen on.
    Cut,
    /// The ball leans on the wall, so the wall side stays: the nodule as it is measured.
    Kept,
}

/// Segments the nodule around `centre` (LPS mm) of about `radius_mm` as it is measured (the
/// first vessel cut, its wall side kept); `None` when there is no nodule there (no dense
/// tissue at the seed, it lies outside the lungs, or it is a blob thinner than the vessel cut).
pub fn segment_nodule(ct: &Volume<i16>, lungs: &LungMask, centre: Vec3, radius_mm: f64) -> Option<NoduleMask> {
    segment_nodule_with_cut(ct, lungs, centre, radius_mm, VESSEL_CUTS[0], Pleura::Kept)
}

/// [`segment_nodule`] with a vessel cut of `vessel_cut` nodule radii that does `pleura` at the
/// chest wall.
pub fn segment_nodule_with_cut(
    ct: &Volume<i16>,
    lungs: &LungMask,
    centre: Vec3,
    radius_mm: f64,
    vessel_cut: f64,
    pleura: Pleura,
) -> Option<NoduleMask> {
    NoduleSeed::read(ct, lungs, centre, radius_mm)?.segment(vessel_cut, pleura)
}

/// The CT and lung mask around a seed and the densities read there, once: the nodule is then
/// segmented under as many cuts as it takes (reading the box includes a distance transform to
/// extend the lung mask to the pleura).
pub struct NoduleSeed<'a> {
    ct: &'a Volume<i16>,
    lungs: &'a LungMask,
    centre: Vec3,
    voxels: BoxVoxels,
    levels: Levels,
}

impl<'a> NoduleSeed<'a> {
    /// `None` when the seed holds no nodule: nothing clearly denser than the lung around it,
    /// or it lies outside the CT.
    pub fn read(ct: &'a Volume<i16>, lungs: &'a LungMask, centre: Vec3, radius_mm: f64) -> Option<NoduleSeed<'a>> {
        let voxels = BoxVoxels::read(ct, lungs, centre, radius_mm)?;
        let levels = voxels.levels(radius_mm, ct.geometry().spacing)?;
        Some(NoduleSeed { ct, lungs, centre, voxels, levels })
    }

    /// The nodule with a vessel cut of `vessel_cut` nodule radii that does `pleura` at the
    /// chest wall; `None` when the blob at the seed is thinner than the cut.
    pub fn segment(&self, vessel_cut: f64, pleura: Pleura) -> Option<NoduleMask> {
        let spacing = self.ct.geometry().spacing;
        let cut = Cut { ball: vessel_cut, pleura };
        let mask = self.voxels.cut(self.levels, cut, spacing)?;
        // A halo found from a core-sized seed may reach beyond the ring that found it: segmented
        // again at its own size, the box holds it and the vessel cut scales with it.
        let size = mask.equivalent_radius_mm(spacing);
        if !self.levels.halo || size <= self.levels.radius_mm {
            return Some(mask);
        }
        let Some(voxels) = BoxVoxels::read(self.ct, self.lungs, self.centre, size) else { return Some(mask) };
        voxels.cut(Levels { radius_mm: size, ..self.levels }, cut, spacing)
    }
}

/// A vessel cut: its ball's radius in nodule radii, and what it does at the chest wall.
#[derive(Debug, Clone, Copy)]
struct Cut {
    ball: f64,
    pleura: Pleura,
}

/// The densities a nodule is segmented between, and its radius as far as the seed tells.
#[derive(Debug, Clone, Copy)]
struct Levels {
    tissue_hu: f64,
    lung_hu: f64,
    radius_mm: f64,
    /// The tissue is a part-solid nodule's ground-glass halo.
    halo: bool,
}

/// The CT and lung mask in a box around a seed.
struct BoxVoxels {
    b: Box3,
    hu: Vec<f32>,
    lung: Vec<bool>,
    seed: usize,
}

impl BoxVoxels {
    fn read(ct: &Volume<i16>, lungs: &LungMask, centre: Vec3, radius_mm: f64) -> Option<BoxVoxels> {
        let b = Box3::around(ct, centre, radius_mm)?;
        let hu: Vec<f32> = b.voxels().map(|v| ct.get(v).map_or(-1000.0, |h| f32::from(*h))).collect();
        let lung: Vec<bool> = b.voxels().map(|v| lungs.labels.get(v).is_some_and(|l| *l != 0)).collect();
        let seed = b.offset(ct.geometry().lps_to_index(centre));
        let lung = pleura::extend_to_pleura(&hu, &lung, b.dims, ct.geometry().spacing, seed, radius_mm);
        Some(BoxVoxels { b, hu, lung, seed })
    }

    /// The nodule's density read at the seed (or its halo's, around a solid centre) and the
    /// lung's around it; `None` when the seed holds nothing clearly denser than lung.
    fn levels(&self, radius_mm: f64, spacing: Vec3) -> Option<Levels> {
        let (hu, lung) = (&self.hu, &self.lung);
        let mm = |i: usize| self.b.mm_from(i, self.seed, spacing);
        let centre_hu = median(hu.iter().enumerate().filter(|(i, _)| mm(*i) <= (0.4 * radius_mm).max(1.0)).map(|(_, h)| *h))?;
        let lung_hu = median(hu.iter().enumerate().filter(|(i, h)| lung[*i] && **h < AERATED_MAX_HU && mm(*i) > 1.5 * radius_mm).map(|(_, h)| *h))
            .unwrap_or(-850.0);
        // Beyond the seed's own radius only lung voxels count (a chest wall is no halo). Only
        // voxels near the seed's axial plane count: above and below a solid nodule, thick
        // slices average its cap with the lung into ground-glass densities, a halo it lacks.
        let seed_z = mask::position_mm(self.seed, self.b.dims, spacing)[0];
        let height = |i: usize| (mask::position_mm(i, self.b.dims, spacing)[0] - seed_z).abs();
        let ring = |k: f64| {
            let (lo, hi) = (0.55 * k * radius_mm, 0.85 * k * radius_mm);
            let in_ring = |i: usize| (k <= 1.0 || lung[i]) && (lo..=hi).contains(&mm(i)) && height(i) <= 0.5 * lo;
            hu.iter().enumerate().filter(|(i, _)| in_ring(*i)).map(|(_, h)| *h).collect()
        };
        let halo = (centre_hu >= SOLID_MIN_HU).then(|| halo(&ring, radius_mm, lung_hu)).flatten();
        let (tissue_hu, radius_mm) = halo.unwrap_or((centre_hu, radius_mm));
        (tissue_hu - lung_hu >= MIN_CONTRAST_HU).then_some(Levels { tissue_hu, lung_hu, radius_mm, halo: halo.is_some() })
    }

    /// Voxels above the midpoint of `levels` connected to the seed, vessels cut by `cut`.
    fn cut(&self, levels: Levels, cut: Cut, spacing: Vec3) -> Option<NoduleMask> {
        let BoxVoxels { b, hu, lung, seed } = self;
        let seed = *seed;
        let threshold = threshold_hu(levels.tissue_hu, levels.lung_hu);
        let dense: Vec<bool> = hu.iter().zip(lung).map(|(h, l)| *l && *h >= threshold).collect();
        let region = connected_to(&dense, b.dims, seed)?;
        let wall: Vec<bool> = match cut.pleura {
            Pleura::Kept => hu.iter().zip(lung).map(|(h, l)| !*l && *h >= threshold).collect(),
            Pleura::Cut => vec![false; hu.len()],
        };
        let inside = cut_vessels(&region, &wall, b.dims, seed, cut.ball * levels.radius_mm, spacing)?;
        let (tissue_hu, lung_hu) = (levels.tissue_hu, levels.lung_hu);
        let fraction = partial_volume(hu, &inside, lung, b.dims, tissue_hu, lung_hu);
        Some(NoduleMask { origin: b.start, dims: b.dims, inside, fraction, hu: hu.clone(), lung: lung.clone(), tissue_hu, lung_hu })
    }
}

/// A part-solid nodule's ground-glass halo around its solid centre: of the rings at
/// [`HALO_SCALES`] seed radii, the one with the largest share of ground-glass voxels (denser
/// than the lung by [`MIN_CONTRAST_HU`], lighter than solid), if that share is at least
/// [`MIN_HALO_SHARE`]. Its ground-glass voxels' median is the halo's density (HU), whose
/// midpoint with the lung then bounds the nodule, out to at least that ring (mm). The median
/// of the whole ring would mix in the core's edge where the seed is the core's size, and a
/// threshold there cuts through the halo.
fn halo(ring: &dyn Fn(f64) -> Vec<f32>, radius_mm: f64, lung_hu: f64) -> Option<(f64, f64)> {
    let ground_glass = |hu: &f32| (lung_hu + MIN_CONTRAST_HU..SOLID_MIN_HU).contains(&f64::from(*hu));
    HALO_SCALES
        .iter()
        .filter_map(|&k| {
            let voxels = ring(k);
            let glass = sorted(voxels.iter().copied().filter(ground_glass));
            let share = glass.len() as f64 / voxels.len().max(1) as f64;
            Some((share, quantile(&glass, 0.5)?, k * radius_mm))
        })
        .filter(|(share, ..)| *share >= MIN_HALO_SHARE)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, level, radius)| (level, radius))
}

/// A box of CT voxels around a point.
struct Box3 {
    start: [usize; 3],
    dims: [usize; 3],
}

impl Box3 {
    fn around(ct: &Volume<i16>, centre: Vec3, radius_mm: f64) -> Option<Box3> {
        let half_mm = (2.5 * radius_mm + 5.0).clamp(10.0, 60.0);
        let index = ct.geometry().lps_to_index(centre);
        let dims = ct.dims();
        let spacing = ct.geometry().spacing;
        let mut start = [0usize; 3];
        let mut size = [0usize; 3];
        for a in 0..3 {
            let half = (half_mm / spacing[a]).ceil();
            let lo = (index[a] - half).floor().max(0.0);
            let hi = (index[a] + half).ceil().min(dims[a] as f64 - 1.0);
            if !(lo <= hi && index[a] >= 0.0 && index[a] <= dims[a] as f64 - 1.0) {
                return None;
            }
            start[a] = lo as usize;
            size[a] = (hi - lo) as usize + 1;
        }
        Some(Box3 { start, dims: size })
    }

    fn voxels(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        let [nz, ny, nx] = self.dims;
        (0..nz * ny * nx).map(move |i| [self.start[0] + i / (ny * nx), self.start[1] + (i / nx) % ny, self.start[2] + i % nx])
    }

    /// Box offset of the voxel nearest a continuous CT index (clamped into the box).
    fn offset(&self, index: Vec3) -> usize {
        let [_, ny, nx] = self.dims;
        let local = [0, 1, 2].map(|a| (index[a].round() - self.start[a] as f64).clamp(0.0, self.dims[a] as f64 - 1.0) as usize);
        local[0] * ny * nx + local[1] * nx + local[2]
    }

    /// Distance in mm between box voxels `i` and `j` (axis-aligned spacing; shear ignored at
    /// this scale).
    fn mm_from(&self, i: usize, j: usize, spacing: Vec3) -> f64 {
        vec3::dist(mask::position_mm(i, self.dims, spacing), mask::position_mm(j, self.dims, spacing))
    }
}

/// A nodule's voxels are those at or above the midpoint between its tissue and the lung around
/// it, HU.
fn threshold_hu(tissue_hu: f64, lung_hu: f64) -> f32 {
    ((tissue_hu + lung_hu) / 2.0) as f32
}

fn median(values: impl Iterator<Item = f32>) -> Option<f64> {
    quantile(&sorted(values), 0.5)
}

fn sorted(values: impl Iterator<Item = f32>) -> Vec<f32> {
    let mut v: Vec<f32> = values.collect();
    v.sort_by(f32::total_cmp);
    v
}

/// The value at quantile `q` (0..1) of ascending `v`, nearest rank; `None` when empty.
fn quantile(v: &[f32], q: f64) -> Option<f64> {
    let last = v.len().checked_sub(1)?;
    Some(f64::from(v[(last as f64 * q).round() as usize]))
}

/// The component of `m` holding `seed`, or the one nearest to it within a few voxels.
fn connected_to(m: &[bool], dims: [usize; 3], seed: usize) -> Option<Vec<bool>> {
    let parts = mask::label_components(m, dims);
    let label = std::iter::once(seed)
        .chain(mask::face_neighbours(seed, dims))
        .map(|i| parts.labels[i])
        .find(|&l| l != 0)?;
    Some(parts.labels.iter().map(|&l| l == label).collect())
}

/// Opening by a ball of `radius_mm`, keeping the part that holds the seed, then grown back
/// inside `region`: what was attached through anything thinner than the ball is cut off.
/// The ball may lean on the `wall` (dense tissue outside the lungs): where a juxtapleural
/// nodule meets the chest wall the lung mask leaves only a thin part of it, which is no
/// attachment to cut. `None` when the ball fits nowhere near the seed (the blob there is
/// thinner than the ball).
fn cut_vessels(region: &[bool], wall: &[bool], dims: [usize; 3], seed: usize, radius_mm: f64, spacing: Vec3) -> Option<Vec<bool>> {
    if spacing.iter().all(|&s| radius_mm < s) {
        return Some(region.to_vec());
    }
    let solid: Vec<bool> = region.iter().zip(wall).map(|(r, w)| *r || *w).collect();
    let eroded: Vec<bool> = distance::erode_ball(&solid, dims, spacing, radius_mm).iter().zip(region).map(|(e, r)| *e && *r).collect();
    let core = connected_to(&eroded, dims, seed).or_else(|| nearest_component(&eroded, dims, seed, radius_mm, spacing))?;
    let grown = distance::dilate_ball(&core, dims, spacing, radius_mm);
    Some(grown.iter().zip(region).map(|(g, r)| *g && *r).collect())
}

/// The component of `m` whose voxel is nearest the seed, within `reach_mm` of it (the seed's
/// own was eroded away: an off-centre seed, or a nodule barely wider than the ball).
fn nearest_component(m: &[bool], dims: [usize; 3], seed: usize, reach_mm: f64, spacing: Vec3) -> Option<Vec<bool>> {
    let parts = mask::label_components(m, dims);
    let mm = |k: usize| vec3::dist(mask::position_mm(k, dims, spacing), mask::position_mm(seed, dims, spacing));
    let nearest = (0..m.len()).filter(|&i| m[i]).min_by(|&a, &b| mm(a).total_cmp(&mm(b))).filter(|&i| mm(i) <= reach_mm)?;
    let label = parts.labels[nearest];
    Some(parts.labels.iter().map(|&l| l == label).collect())
}

/// Tissue fraction of each voxel: 1 deep inside the nodule; on its surface (nodule voxels
/// with a neighbour outside, and lung voxels touching it) where the HU lies between lung and
/// tissue; 0 elsewhere.
fn partial_volume(hu: &[f32], inside: &[bool], lung: &[bool], dims: [usize; 3], tissue: f64, lung_hu: f64) -> Vec<f32> {
    let span = (tissue - lung_hu) as f32;
    (0..hu.len())
        .map(|i| {
            let (touches, surrounded) =
                mask::face_neighbours(i, dims).fold((false, true), |(any, all), j| (any || inside[j], all && inside[j]));
            let deep = inside[i] && surrounded;
            let surface = (inside[i] && !deep) || (!inside[i] && touches && lung[i]);
            match (deep, surface) {
                (true, _) => 1.0,
                (false, true) => ((hu[i] - lung_hu as f32) / span).clamp(0.0, 1.0),
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use pulmo_volume::{Geometry, Volume};

    use super::NoduleMask;

    /// A 4x4x4 box at `origin` whose inside is the given box voxels (z, y, x).
    fn blob(origin: [usize; 3], voxels: &[[usize; 3]]) -> NoduleMask {
        let mut inside = vec![false; 64];
        for v in voxels {
            inside[v[0] * 16 + v[1] * 4 + v[2]] = true;
        }
        NoduleMask { origin, dims: [4; 3], inside, fraction: vec![0.0; 64], hu: vec![0.0; 64], lung: vec![true; 64], tissue_hu: 0.0, lung_hu: -850.0 }
    }

    #[test]
    fn two_parts_of_a_lesion_make_one_nodule_on_a_box_holding_both() {
        let geometry = Geometry::axial([0.0; 3], [1.0; 3]).expect("geometry");
        let ct = Volume::new([20; 3], geometry, vec![-850i16; 8000]).expect("ct");
        let lungs = crate::test_support::lung_everywhere([20; 3], geometry);
        let a = blob([10, 10, 10], &[[1, 1, 1]]); // CT (11, 11, 11)
        let mut b = blob([12, 14, 10], &[[1, 1, 1]]); // CT (13, 15, 11)
        b.tissue_hu = -600.0;
        assert!((a.gap_mm(&b, &geometry) - 20f64.sqrt()).abs() < 1e-9);
        let whole = a.union(&b, &ct, &lungs);
        assert_eq!((whole.origin, whole.dims), ([10, 10, 10], [6, 8, 4]));
        let inside: Vec<[usize; 3]> = (0..whole.inside.len()).filter(|&i| whole.inside[i]).map(|i| whole.ct_index(i)).collect();
        assert_eq!(inside, [[11, 11, 11], [13, 15, 11]]);
        assert_eq!(whole.tissue_hu, -600.0, "the levels of the part segmented lower");
        // A voxel in neither part's box is read from the CT and the lung mask.
        let neither = (0..whole.inside.len()).find(|&i| whole.ct_index(i) == [10, 17, 10]).expect("in the box");
        assert_eq!((whole.hu[neither], whole.lung[neither]), (-850.0, true));
    }

    #[test]
    fn nodules_touch_when_they_share_a_voxel_or_a_face() {
        let a = blob([10, 10, 10], &[[1, 1, 1], [1, 1, 2]]);
        let shared = blob([10, 10, 11], &[[1, 1, 1]]); // CT (11, 11, 12), a's second voxel
        let face = blob([10, 10, 12], &[[1, 1, 1]]); // CT (11, 11, 13), next to it along x
        let edge = blob([10, 11, 12], &[[1, 1, 1]]); // CT (11, 12, 13): diagonal, no shared face
        let apart = blob([20, 10, 10], &[[1, 1, 1]]);
        assert!(a.touches(&shared) && shared.touches(&a));
        assert!(a.touches(&face) && face.touches(&a));
        assert!(!a.touches(&edge) && !edge.touches(&a));
        assert!(!a.touches(&apart));
    }
}
