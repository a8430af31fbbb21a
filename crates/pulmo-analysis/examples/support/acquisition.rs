// The training-data examples' phantom acquisitions: varied with the seed so that a model sees
// pixels of 0.6-1.0 mm, slices of 1-2.5 mm and noise of 10-40 HU.

use pulmo_phantom::{slices_for_coverage, NoduleRequest, PhantomSpec};

/// A phantom of `nodule_count` nodules (the first drawn as `nodules` ask) under seed `seed`'s
/// acquisition.
pub fn phantom_spec(seed: u64, nodule_count: usize, nodules: Vec<NoduleRequest>) -> PhantomSpec {
    let pick = |options: &[f64]| options[(seed as usize) % options.len()];
    let pixel = pick(&[0.7, 0.8, 0.9, 1.0, 0.6]);
    let slice = pick(&[1.0, 1.25, 2.0, 2.5]);
    PhantomSpec {
        seed,
        rows: (340.0 / pixel).round() as usize,
        pixel_spacing_mm: pixel,
        slice_spacing_mm: slice,
        slice_thickness_mm: slice,
        slices: slices_for_coverage(280.0, slice),
        noise_hu: pick(&[20.0, 10.0, 30.0, 40.0, 15.0, 25.0]),
        nodule_count,
        nodules,
        ..Default::default()
    }
}
