//! Telling the two lungs apart: two large components when the lungs do not touch; otherwise
//! in-plane erosion until they come apart, then each voxel goes to the lung that reaches it first.

use std::collections::VecDeque;

use pulmo_torch::image;
use pulmo_torch::TchError;
use pulmo_volume::mask;

use super::work::{count, Work};

/// The smaller lung has at least this fraction of the larger one's voxels.
const MIN_SIDE_RATIO: f64 = 0.15;
/// Erosion steps (one working pixel each, ~1.5 mm) tried to separate touching lungs.
const MAX_EROSIONS: i64 = 12;

pub(crate) const RIGHT: u8 = 1;
pub(crate) const LEFT: u8 = 2;

/// Labels each voxel of `lungs` RIGHT or LEFT (0 elsewhere); `None` if no two lungs can be
/// found (one lung only, e.g. after pneumonectomy, or a scan covering one side).
pub(crate) fn split(work: &Work, lungs: &[bool]) -> Result<Option<Vec<u8>>, TchError> {
    let Some(seeds) = two_seeds(work, lungs)? else { return Ok(None) };
    let nearest = assign_nearest(work, lungs, &seeds);
    Ok(Some(by_side(work, &nearest)))
}

/// Two components of `lungs`, or of an eroded copy of it, large enough to be lungs; as a
/// label volume with values 1 and 2.
fn two_seeds(work: &Work, lungs: &[bool]) -> Result<Option<Vec<u8>>, TchError> {
    if let Some(seeds) = two_largest(work, lungs) {
        return Ok(Some(seeds));
    }
    let tensor = image::mask_to_tensor(lungs, work.dims, work.device)?;
    for radius in 1..=MAX_EROSIONS {
        let eroded = image::to_mask(&image::erode_inplane(&tensor, radius)?)?;
        if count(&eroded) == 0 {
            break;
        }
        if let Some(seeds) = two_largest(work, &eroded) {
            return Ok(Some(seeds));
        }
    }
    Ok(None)
}

fn two_largest(work: &Work, m: &[bool]) -> Option<Vec<u8>> {
    let parts = mask::label_components(m, work.dims);
    let ids = parts.by_size();
    let (&a, &b) = (ids.first()?, ids.get(1)?);
    let (sa, sb) = (parts.sizes[a as usize] as f64, parts.sizes[b as usize] as f64);
    (sb >= MIN_SIDE_RATIO * sa).then(|| {
        parts.labels.iter().map(|&l| if l == a { 1 } else if l == b { 2 } else { 0 }).collect()
    })
}

/// Breadth-first from both seeds at once through `lungs`: every voxel gets the seed that
/// reaches it in fewer steps (the geodesic nearest).
fn assign_nearest(work: &Work, lungs: &[bool], seeds: &[u8]) -> Vec<u8> {
    let mut label = seeds.to_vec();
    let mut queue: VecDeque<usize> = (0..label.len()).filter(|&i| label[i] != 0).collect();
    while let Some(i) = queue.pop_front() {
        for j in mask::face_neighbours(i, work.dims) {
            if lungs[j] && label[j] == 0 {
                label[j] = label[i];
                queue.push_back(j);
            }
        }
    }
    label
}

/// Renames labels 1 and 2 to RIGHT and LEFT: the patient's right is at smaller LPS x.
fn by_side(work: &Work, labels: &[u8]) -> Vec<u8> {
    let mean_x = |which: u8| work.mean_x((0..labels.len()).filter(|&i| labels[i] == which)).unwrap_or(0.0);
    let one_is_right = mean_x(1) < mean_x(2);
    labels
        .iter()
        .map(|&l| match (l, one_is_right) {
            (0, _) => 0,
            (1, true) | (2, false) => RIGHT,
            _ => LEFT,
        })
        .collect()
}
