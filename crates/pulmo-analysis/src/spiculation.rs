//! Spicules: thin strands that leave a nodule's margin and end in the lung, counted on the CT
//! around the segmentation (what a spiculation call, the Brock and Mayo input, would rest on).
//!
//! The vessel cut takes spicules off the nodule along with vessels; what tells them apart is
//! where they go. A vessel runs on through the lung to the edge of the nodule's box (traced at
//! a lower threshold, since vessels taper), a spicule ends in the lung a few millimetres out.
//!
//! Strands that are no spicules, mostly the ends of small vessels that stop near the nodule,
//! look like spicules at CT resolution (a few voxels, 2-5 mm out, radial or not) and come more
//! often the larger the nodule's surface, so calling a margin spiculated takes more spicules
//! on a larger nodule. docs/accuracy.md has how the rule was chosen and how it does.

use pulmo_volume::{distance, mask, Vec3};

use crate::nodule::{NoduleMask, AERATED_MAX_HU};

/// Strands are lung voxels at least this share of the lung-to-nodule contrast above lung
/// (below the segmentation's half, since a spicule 1-2 mm thick is mostly partial volume),
/// and at least `STRAND_NOISE` noise SDs above it, so that noise makes no strands.
const STRAND_LEVEL: f64 = 0.25;
const STRAND_NOISE: f64 = 4.0;
/// A strand that joins, at this lower share (or three noise SDs, if more), something reaching
/// the box's edge is a tapering vessel, not a spicule.
const TRACE_LEVEL: f64 = 0.1;
const TRACE_NOISE: f64 = 3.0;
/// A spicule reaches at least this far beyond the nodule's surface, mm.
const MIN_REACH_MM: f64 = 2.0;
/// A spicule is thin: at most this much tissue, mm3 (more is a lobe, a vessel or a wall).
const MAX_STRAND_MM3: f64 = 60.0;
/// Below this lung-to-nodule contrast, HU, there is no margin to read; not assessed.
const MIN_CONTRAST_HU: f64 = 100.0;

/// A thin strand of tissue that touches the nodule, was cut off it, and ends in the lung:
/// neither it nor what it joins at the trace level reaches the box's edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strand {
    /// Farthest distance of its voxels from the nodule's surface, mm.
    pub reach_mm: f64,
}

impl Strand {
    pub fn is_spicule(&self) -> bool {
        self.reach_mm >= MIN_REACH_MM
    }
}

/// A margin is spiculated from this many spicules on,
const MIN_SPICULES: u32 = 3;
/// and from one per this many whole millimetres of mean diameter where that is more (13 mm on).
const MM_PER_SPICULE: f64 = 4.0;

/// Whether a margin with `spicules` on a nodule of `mean_diameter_mm` is called spiculated.
pub fn is_spiculated(spicules: u32, mean_diameter_mm: f64) -> bool {
    f64::from(spicules) >= f64::from(MIN_SPICULES).max(mean_diameter_mm.floor() / MM_PER_SPICULE)
}

/// The spicules of a segmented nodule; `None` when the contrast is too low to tell.
pub fn count(nodule: &NoduleMask, spacing: Vec3) -> Option<u32> {
    Some(strands(nodule, spacing)?.iter().filter(|s| s.is_spicule()).count() as u32)
}

/// The thin strands ending in the lung that touch the nodule (beyond its 26-neighbours, away
/// from the chest wall); `None` when the contrast is too low to tell.
pub fn strands(nodule: &NoduleMask, spacing: Vec3) -> Option<Vec<Strand>> {
    let contrast = nodule.tissue_hu - nodule.lung_hu;
    if contrast < MIN_CONTRAST_HU {
        return None;
    }
    let dims = nodule.dims;
    let near = dilate26(&nodule.inside, dims);
    let wall: Vec<bool> = (0..near.len()).map(|i| nodule.is_wall(i)).collect();
    let by_wall = dilate26(&wall, dims);
    let above = |share: f64| {
        let threshold = (nodule.lung_hu + share * contrast) as f32;
        (0..near.len()).map(|i| nodule.lung[i] && !near[i] && !by_wall[i] && nodule.hu[i] >= threshold).collect::<Vec<bool>>()
    };
    let noise = lung_noise(nodule);
    let parts = mask::label_components(&above(STRAND_LEVEL.max(STRAND_NOISE * noise / contrast)), dims);
    let to_edge = reaching_edge(nodule, &above(TRACE_LEVEL.max(TRACE_NOISE * noise / contrast)));
    let count = parts.sizes.len();
    let (mut touches, mut runs_on) = (vec![false; count], vec![false; count]);
    for (i, &l) in parts.labels.iter().enumerate().filter(|(_, l)| **l != 0) {
        touches[l as usize] |= mask::face_neighbours(i, dims).any(|j| near[j]);
        runs_on[l as usize] |= to_edge[i];
    }
    let voxel_mm3 = spacing[0] * spacing[1] * spacing[2];
    let strand = |l: usize| touches[l] && !runs_on[l] && parts.sizes[l] as f64 * voxel_mm3 <= MAX_STRAND_MM3;
    let from_surface = distance::squared_distance_mm(&surface(nodule), dims, spacing);
    let mut reach2 = vec![None::<f64>; count];
    for (i, &l) in parts.labels.iter().enumerate().filter(|(_, l)| **l != 0 && strand(**l as usize)) {
        let r = &mut reach2[l as usize];
        *r = Some(r.map_or(from_surface[i], |r| r.max(from_surface[i])));
    }
    Some(reach2.iter().flatten().map(|r2| Strand { reach_mm: r2.sqrt() }).collect())
}

/// Per box voxel: set in `m` and connected within `m` to the box's edge.
fn reaching_edge(nodule: &NoduleMask, m: &[bool]) -> Vec<bool> {
    let parts = mask::label_components(m, nodule.dims);
    let mut edge = vec![false; parts.sizes.len()];
    for (i, &l) in parts.labels.iter().enumerate().filter(|(_, l)| **l != 0) {
        edge[l as usize] |= nodule.on_box_face(i);
    }
    parts.labels.iter().map(|&l| l != 0 && edge[l as usize]).collect()
}

/// The nodule's surface voxels, which strands' reach is measured from.
fn surface(nodule: &NoduleMask) -> Vec<bool> {
    let dims = nodule.dims;
    (0..nodule.inside.len()).map(|i| nodule.inside[i] && mask::face_neighbours(i, dims).any(|j| !nodule.inside[j])).collect()
}

/// `m` grown by one voxel in all 26 directions.
fn dilate26(m: &[bool], [nz, ny, nx]: [usize; 3]) -> Vec<bool> {
    let mut out = m.to_vec();
    for i in (0..m.len()).filter(|&i| m[i]) {
        let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
        for dz in z.saturating_sub(1)..=(z + 1).min(nz - 1) {
            for dy in y.saturating_sub(1)..=(y + 1).min(ny - 1) {
                for dx in x.saturating_sub(1)..=(x + 1).min(nx - 1) {
                    out[(dz * ny + dy) * nx + dx] = true;
                }
            }
        }
    }
    out
}

/// Robust SD (1.4826 MAD) of the aerated lung's HU in the box: the CT noise there.
fn lung_noise(nodule: &NoduleMask) -> f64 {
    let mut v: Vec<f64> = (0..nodule.hu.len()).filter(|&i| nodule.lung[i] && nodule.hu[i] < AERATED_MAX_HU).map(|i| f64::from(nodule.hu[i])).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    let mut deviation: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
    deviation.sort_by(f64::total_cmp);
    1.4826 * deviation[deviation.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::is_spiculated;

    #[test]
    fn the_call_needs_three_spicules_and_one_per_four_millimetres() {
        for (spicules, mean_mm, called) in [
            (0, 0.0, false),
            (2, 5.0, false),
            (3, 5.0, true),
            (3, 12.0, true),
            (3, 12.9, true),
            (3, 13.0, false),
            (4, 16.0, true),
            (4, 16.9, true),
            (4, 17.0, false),
            (5, 20.9, true),
        ] {
            assert_eq!(is_spiculated(spicules, mean_mm), called, "{spicules} spicules on {mean_mm} mm");
        }
    }
}
