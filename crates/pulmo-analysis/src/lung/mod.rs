//! Lung segmentation on CT: the left and right lungs without the trachea and main bronchi,
//! closed over juxtapleural nodules and vessels, with zones and the emphysema fraction.
//!
//! Steps, on a working grid of ~1.5 mm pixels ([`work`]): air below -400 HU not connected to the
//! slice border (outside air) is the candidate; its 3D components that look like lung (large,
//! parenchyma-dense rather than pure gas like bowel, level with the largest) are kept; the
//! airways are grown from the trachea and removed ([`airway`]); the lungs are told apart
//! ([`sides`]); each is closed in-plane with a 15 mm disc and its holes filled, which keeps
//! nodules against the pleura inside; the labels go back to the CT's grid.

mod airway;
mod sides;
mod work;

use pulmo_torch::image;
use pulmo_torch::{Device, TchError};
use pulmo_volume::{mask, BoxRegion, Vec3, Volume, VolumeError};
pub use pulmo_findings::{Level, LungExtent, Side, Zone};
use pulmo_findings::LungSummary;

use sides::{LEFT, RIGHT};
use work::{count, Work};

/// Air and lung parenchyma are below this; soft tissue is above.
const AIR_MAX_HU: f32 = -400.0;
/// Air components smaller than this are not lungs (bowel gas pockets, the oesophagus).
const MIN_LUNG_ML: f64 = 20.0;
/// Mean density of a component that is lung (parenchyma, -700..-900 HU) rather than gas.
const MIN_LUNG_MEAN_HU: f64 = -960.0;
/// A second component counts as the other lung when it is at least this fraction of the first.
const MIN_SECOND_LUNG: f64 = 0.15;
/// Radius of the in-plane closing, mm: nodules up to ~30 mm against the pleura stay inside.
const CLOSING_RADIUS_MM: f64 = 15.0;
/// Emphysema: lung voxels at or below this (LAA-950).
const EMPHYSEMA_HU: i16 = -950;

#[derive(Debug, thiserror::Error)]
pub enum LungError {
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
    #[error("no lungs found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

#[derive(Debug, Clone)]
pub struct LungMask {
    /// On the CT's grid: 0 outside the lungs, 1 right lung, 2 left lung.
    pub labels: Volume<u8>,
    pub right: Option<LungExtent>,
    pub left: Option<LungExtent>,
    /// LPS z (mm) of the carina; `None` when the trachea is not in view.
    pub carina_z_mm: Option<f64>,
    /// Fraction of lung voxels at or below -950 HU (LAA-950).
    pub laa950_fraction: f64,
    /// What a reader of the findings should know about how the mask was made.
    pub notes: Vec<String>,
}

impl LungMask {
    pub const RIGHT: u8 = RIGHT;
    pub const LEFT: u8 = LEFT;

    /// The lung at a patient position, `None` outside both (or outside the scan).
    pub fn side_at(&self, lps: Vec3) -> Option<Side> {
        let index = self.labels.geometry().lps_to_index(lps);
        let voxel = index.map(|c| c.round());
        if voxel.iter().any(|c| !c.is_finite() || *c < 0.0) {
            return None;
        }
        match *self.labels.get(voxel.map(|c| c as usize))? {
            RIGHT => Some(Side::Right),
            LEFT => Some(Side::Left),
            _ => None,
        }
    }

    /// What the findings say about the lungs.
    pub fn summary(&self) -> LungSummary {
        LungSummary {
            right: self.right,
            left: self.left,
            carina_z_mm: self.carina_z_mm,
            laa950_fraction: self.laa950_fraction,
            emphysema: pulmo_clinical::density::emphysema_present(self.laa950_fraction),
        }
    }

    /// The zone of a patient position inside a lung.
    pub fn zone_at(&self, lps: Vec3) -> Option<Zone> {
        self.zone_on(self.side_at(lps)?, lps[2])
    }

    /// The zone of a nodule of these voxels centred at `centre` (LPS mm): the lung its centre
    /// lies in, or where the centre lies outside both (a mass's centre can: between its parts,
    /// or where it bulges out of the lung mask) the one holding most of its voxels, at the
    /// centre's level; `None` when none of its voxels is in a lung.
    pub fn zone_of(&self, voxels: &BoxRegion, centre: Vec3) -> Option<Zone> {
        let side = self.side_at(centre).or_else(|| self.side_holding_most(voxels))?;
        self.zone_on(side, centre[2])
    }

    fn side_holding_most(&self, voxels: &BoxRegion) -> Option<Side> {
        let (mut right, mut left) = (0usize, 0usize);
        for v in voxels.voxels() {
            match self.labels.get(v) {
                Some(&RIGHT) => right += 1,
                Some(&LEFT) => left += 1,
                _ => {}
            }
        }
        match (right, left) {
            (0, 0) => None,
            (r, l) if r >= l => Some(Side::Right),
            _ => Some(Side::Left),
        }
    }

    fn zone_on(&self, side: Side, z_mm: f64) -> Option<Zone> {
        let extent = match side {
            Side::Right => self.right?,
            Side::Left => self.left?,
        };
        Some(Zone { side, level: self.level(z_mm, &extent) })
    }

    fn level(&self, z: f64, lung: &LungExtent) -> Level {
        let (upper_from, middle_from) = match self.carina_z_mm {
            Some(carina) => (carina, (carina + lung.bottom_z_mm) / 2.0),
            None => {
                let third = (lung.top_z_mm - lung.bottom_z_mm) / 3.0;
                (lung.bottom_z_mm + 2.0 * third, lung.bottom_z_mm + third)
            }
        };
        if z >= upper_from {
            Level::Upper
        } else if z >= middle_from {
            Level::Middle
        } else {
            Level::Lower
        }
    }
}

/// Segments the lungs of a CT volume (HU) on `device`.
pub fn segment_lungs(ct: &Volume<i16>, device: Device) -> Result<LungMask, LungError> {
    let work = Work::new(ct, device)?;
    let (air, body) = interior_air(&work);
    let lungs = select_lungs(&work, &air)?;
    let mut notes = vec!["upper zone = above the carina (approximates the upper lobes)".to_string()];
    let (lungs, carina_slice) = match airway::find(&work, &lungs, &body) {
        Some(airways) => (remove_airways(&work, &lungs, &airways.mask)?, airways.carina_slice),
        None => {
            notes.push("trachea not found: airways not removed".into());
            (lungs, None)
        }
    };
    if carina_slice.is_none() {
        notes.push("carina not found: zones are thirds of each lung's height".into());
    }
    let sides = match sides::split(&work, &lungs)? {
        Some(sides) => sides,
        None => {
            notes.push("only one lung found".into());
            one_side(&work, &lungs, &body)
        }
    };
    let closed = close_sides(&work, &sides, &body)?;
    let labels = to_ct_grid(ct, &work, &closed)?;
    let carina_z_mm = carina_slice.map(|k| work.lps(k * work.plane())[2]);
    tracing::debug!(?carina_z_mm, notes = notes.len(), "lungs segmented");
    Ok(LungMask {
        right: extent(&labels, RIGHT),
        left: extent(&labels, LEFT),
        laa950_fraction: laa950(ct, &labels),
        labels,
        carina_z_mm,
        notes,
    })
}

/// Air inside the patient (below -400 HU, not connected to the slice border), and the body:
/// everything but the outside air.
fn interior_air(work: &Work) -> (Vec<bool>, Vec<bool>) {
    let [nz, ny, nx] = work.dims;
    let air: Vec<bool> = work.hu.iter().map(|&h| h < AIR_MAX_HU).collect();
    let mut interior = air.clone();
    for k in 0..nz {
        mask::clear_border_connected(&mut interior[k * ny * nx..(k + 1) * ny * nx], ny, nx);
    }
    let body = air.iter().zip(&interior).map(|(a, i)| !a || *i).collect();
    (interior, body)
}

/// The air components that are lungs: the largest parenchyma-dense one, and any other of
/// comparable size and density level with it (bowel gas lies below, and is pure gas).
fn select_lungs(work: &Work, air: &[bool]) -> Result<Vec<bool>, LungError> {
    let parts = mask::label_components(air, work.dims);
    let stats = component_stats(work, &parts);
    let lung_like = |s: &ComponentStats| s.voxels as f64 * work.voxel_ml() >= MIN_LUNG_ML && s.mean_hu() > MIN_LUNG_MEAN_HU;
    let primary = stats.iter().filter(|s| lung_like(s)).max_by_key(|s| s.voxels);
    let Some(primary) = primary else {
        return Err(LungError::NotFound(format!("no air component of at least {MIN_LUNG_ML} mL with lung density")));
    };
    let keep: Vec<u32> = stats
        .iter()
        .filter(|s| lung_like(s) && s.voxels as f64 >= MIN_SECOND_LUNG * primary.voxels as f64 && s.level_with(primary))
        .map(|s| s.id)
        .collect();
    Ok(parts.select(|id| keep.contains(&id)))
}

struct ComponentStats {
    id: u32,
    voxels: usize,
    hu_sum: f64,
    slices: (usize, usize),
}

impl ComponentStats {
    fn mean_hu(&self) -> f64 {
        self.hu_sum / self.voxels.max(1) as f64
    }

    /// At least half of this component's slices are also slices of `other`.
    fn level_with(&self, other: &ComponentStats) -> bool {
        let overlap = self.slices.1.min(other.slices.1) as i64 - self.slices.0.max(other.slices.0) as i64 + 1;
        let own = (self.slices.1 - self.slices.0 + 1) as i64;
        2 * overlap >= own
    }
}

fn component_stats(work: &Work, parts: &mask::Components) -> Vec<ComponentStats> {
    let mut stats: Vec<ComponentStats> = (0..parts.sizes.len() as u32)
        .map(|id| ComponentStats { id, voxels: 0, hu_sum: 0.0, slices: (usize::MAX, 0) })
        .collect();
    for (i, &label) in parts.labels.iter().enumerate().filter(|(_, l)| **l != 0) {
        let s = &mut stats[label as usize];
        let k = i / work.plane();
        s.voxels += 1;
        s.hu_sum += f64::from(work.hu[i]);
        s.slices = (s.slices.0.min(k), s.slices.1.max(k));
    }
    stats.remove(0);
    stats
}

/// The lungs without the airways and their walls (the airway mask grown by one pixel).
fn remove_airways(work: &Work, lungs: &[bool], airways: &[bool]) -> Result<Vec<bool>, LungError> {
    let walls = image::to_mask(&image::dilate_inplane(&image::mask_to_tensor(airways, work.dims, work.device)?, 1)?)?;
    Ok(lungs.iter().zip(&walls).map(|(l, w)| *l && !w).collect())
}

/// A single lung, labelled by which side of the body's centre it lies.
fn one_side(work: &Work, lungs: &[bool], body: &[bool]) -> Vec<u8> {
    let mean_x = |m: &[bool]| work.mean_x((0..m.len()).filter(|&i| m[i])).unwrap_or(0.0);
    let side = if mean_x(lungs) < mean_x(body) { RIGHT } else { LEFT };
    lungs.iter().map(|&l| if l { side } else { 0 }).collect()
}

/// Each lung closed in-plane and hole-filled, inside the body; a voxel both closings claim
/// stays with the lung it belonged to.
fn close_sides(work: &Work, sides: &[u8], body: &[bool]) -> Result<Vec<u8>, LungError> {
    let radius = (CLOSING_RADIUS_MM / (work.geometry.spacing[2] * work.factor as f64)).round() as i64;
    let mut out = sides.to_vec();
    for side in [RIGHT, LEFT] {
        let own: Vec<bool> = sides.iter().map(|&s| s == side).collect();
        if count(&own) == 0 {
            continue;
        }
        let mut closed = image::to_mask(&image::close_inplane(&image::mask_to_tensor(&own, work.dims, work.device)?, radius)?)?;
        let [nz, ny, nx] = work.dims;
        for k in 0..nz {
            mask::fill_holes(&mut closed[k * ny * nx..(k + 1) * ny * nx], ny, nx);
        }
        for (i, c) in closed.iter().enumerate() {
            if *c && body[i] && out[i] == 0 {
                out[i] = side;
            }
        }
    }
    Ok(out)
}

/// The working-grid labels repeated back onto the CT's pixels.
fn to_ct_grid(ct: &Volume<i16>, work: &Work, labels: &[u8]) -> Result<Volume<u8>, LungError> {
    let [_, ny, nx] = ct.dims();
    let values: Vec<f32> = labels.iter().map(|&l| f32::from(l)).collect();
    let up = image::upsample_inplane(&image::to_tensor(&values, work.dims, work.device)?, work.factor as i64, ny as i64, nx as i64)?;
    let data = image::to_vec(&up)?.into_iter().map(|v| v.round().clamp(0.0, 2.0) as u8).collect();
    Ok(Volume::new(ct.dims(), *ct.geometry(), data)?)
}

fn extent(labels: &Volume<u8>, side: u8) -> Option<LungExtent> {
    let [nz, ny, nx] = labels.dims();
    let per_slice: Vec<usize> = (0..nz).map(|k| labels.slice(k).iter().filter(|&&l| l == side).count()).collect();
    let voxels: usize = per_slice.iter().sum();
    let zs: Vec<f64> = (0..nz).filter(|&k| per_slice[k] > 0).map(|k| labels.voxel_lps([k, ny / 2, nx / 2])[2]).collect();
    let top = zs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let bottom = zs.iter().copied().fold(f64::INFINITY, f64::min);
    (voxels > 0).then(|| LungExtent {
        volume_ml: voxels as f64 * labels.geometry().voxel_volume_mm3() / 1000.0,
        top_z_mm: top,
        bottom_z_mm: bottom,
    })
}

fn laa950(ct: &Volume<i16>, labels: &Volume<u8>) -> f64 {
    let (mut lung, mut low) = (0usize, 0usize);
    for (hu, label) in ct.data().iter().zip(labels.data()) {
        if *label != 0 {
            lung += 1;
            low += usize::from(*hu <= EMPHYSEMA_HU);
        }
    }
    low as f64 / lung.max(1) as f64
}

#[cfg(test)]
mod tests {
    use pulmo_findings::LungExtent;
    use pulmo_volume::{BoxRegion, Geometry, Volume};

    use super::*;

    #[test]
    fn a_nodule_centred_outside_the_lungs_takes_the_side_of_most_of_its_voxels() {
        let geometry = Geometry::axial([0.0; 3], [1.0; 3]).expect("geometry");
        // The right lung is x index 6 and up.
        let labels: Vec<u8> = (0..1000).map(|i| if i % 10 >= 6 { RIGHT } else { 0 }).collect();
        let extent = LungExtent { volume_ml: 0.4, top_z_mm: 9.0, bottom_z_mm: 0.0 };
        let lungs = LungMask {
            labels: Volume::new([10; 3], geometry, labels).expect("labels"),
            right: Some(extent),
            left: None,
            carina_z_mm: None,
            laa950_fraction: 0.0,
            notes: Vec::new(),
        };
        // Voxels at x 4-7: half of them in the right lung, the centre (x 4) outside it.
        let nodule = BoxRegion::from_mask([4, 4, 4], [2, 2, 4], &[true; 16]);
        let centre = [4.0, 4.5, 4.5];
        assert_eq!(lungs.zone_at(centre), None);
        assert_eq!(lungs.zone_of(&nodule, centre), Some(Zone { side: Side::Right, level: Level::Middle }));
        let outside = BoxRegion::from_mask([4, 4, 0], [2, 2, 4], &[true; 16]);
        assert_eq!(lungs.zone_of(&outside, centre), None);
    }
}
