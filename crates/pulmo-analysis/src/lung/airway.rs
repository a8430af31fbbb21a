//! The large airways inside the lung selection: the trachea found where it enters the chest,
//! grown down through air-dark voxels into the main bronchi, and the carina where it divides.

use std::collections::VecDeque;

use pulmo_volume::mask;

use super::work::{count, Work};

/// Airway lumen is air; lung parenchyma is -700..-900 HU. Tried in turn until the grown tree
/// stays airway-sized (emphysematous lung below -950 would let the first one leak).
const LUMEN_MAX_HU: [f32; 3] = [-950.0, -975.0, -990.0];
/// Trachea plus main and lobar bronchi stay well below this; more means the growth leaked.
const MAX_AIRWAY_ML: f64 = 250.0;
/// A trachea cross-section: 12-30 mm across.
const TRACHEA_AREA_MM2: (f64, f64) = (80.0, 800.0);
/// The trachea runs within this distance (mm) of the body's left-right centre.
const TRACHEA_OFF_MIDLINE_MM: f64 = 30.0;
/// A bronchus cross-section counted when looking for the division at the carina.
const MIN_BRONCHUS_MM2: f64 = 15.0;

pub(crate) struct Airways {
    pub mask: Vec<bool>,
    /// Working slice index of the carina.
    pub carina_slice: Option<usize>,
}

/// Finds and grows the airways inside `lungs` (the air components kept as lung). `body` marks
/// the patient (everything but outside air). `None` when no trachea is in view.
pub(crate) fn find(work: &Work, lungs: &[bool], body: &[bool]) -> Option<Airways> {
    let order: Vec<usize> = work
        .superior_to_inferior()
        .into_iter()
        .filter(|&k| lungs[k * work.plane()..(k + 1) * work.plane()].iter().any(|v| *v))
        .collect();
    let (seed, seed_rank) = trachea_seed(work, lungs, body, &order)?;
    let mask = LUMEN_MAX_HU
        .iter()
        .map(|&t| grow(work, lungs, seed, t))
        .find(|m| count(m) as f64 * work.voxel_ml() <= MAX_AIRWAY_ML)?;
    let carina_slice = order[seed_rank..].iter().copied().find(|&k| divides(work, &mask, k));
    Some(Airways { mask, carina_slice })
}

/// The first slice from the top (within the upper 40% of the lungs) holding a dark, round,
/// trachea-sized cross-section near the midline; returns a voxel of it and the slice's rank.
fn trachea_seed(work: &Work, lungs: &[bool], body: &[bool], order: &[usize]) -> Option<(usize, usize)> {
    let dark: Vec<bool> = lungs.iter().zip(&work.hu).map(|(l, h)| *l && *h < -940.0).collect();
    let search = (order.len() * 2 / 5).max(1);
    let plane = work.plane();
    for (rank, &k) in order.iter().enumerate().take(search) {
        let midline = work.mean_x((k * plane..(k + 1) * plane).filter(|&i| body[i]))?;
        let parts = work.slice_components(&dark, k);
        for id in 1..parts.sizes.len() as u32 {
            let pixels: Vec<usize> = (0..plane).filter(|&p| parts.labels[p] == id).map(|p| k * plane + p).collect();
            let area = pixels.len() as f64 * work.pixel_mm2();
            let x = work.mean_x(pixels.iter().copied())?;
            let trachea_sized = (TRACHEA_AREA_MM2.0..=TRACHEA_AREA_MM2.1).contains(&area);
            if trachea_sized && (x - midline).abs() < TRACHEA_OFF_MIDLINE_MM {
                return Some((pixels[pixels.len() / 2], rank));
            }
        }
    }
    None
}

/// Region growing from `seed` through lung voxels darker than `max_hu` (6-connected).
fn grow(work: &Work, lungs: &[bool], seed: usize, max_hu: f32) -> Vec<bool> {
    let inside = |i: usize| lungs[i] && work.hu[i] < max_hu;
    let mut grown = vec![false; work.len()];
    let mut queue = VecDeque::from([seed]);
    grown[seed] = true;
    while let Some(i) = queue.pop_front() {
        for j in mask::face_neighbours(i, work.dims) {
            if !grown[j] && inside(j) {
                grown[j] = true;
                queue.push_back(j);
            }
        }
    }
    grown
}

/// Whether the airway splits into two bronchus-sized cross-sections in slice `k`.
fn divides(work: &Work, airway: &[bool], k: usize) -> bool {
    let parts = work.slice_components(airway, k);
    let min_pixels = (MIN_BRONCHUS_MM2 / work.pixel_mm2()).ceil() as usize;
    parts.sizes.iter().filter(|&&s| s >= min_pixels.max(1)).count() >= 2
}
