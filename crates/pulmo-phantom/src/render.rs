//! Rendering a scene into HU voxels: anatomy and tubes averaged over sub-planes across the
//! slice thickness (the box slice profile), nodules supersampled per voxel, then CT noise.
//!
//! Slices render in parallel and each draws its noise from its own seeded stream, so the
//! result does not depend on the thread count.

use pulmo_volume::{Geometry, Volume};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::anatomy::AIR;
use crate::math::{mat_mul, norm, transpose, Affine, Mat3, Vec3};
use crate::nodule::NoduleModel;
use crate::scene::{Acquisition, Scene};
use crate::seeds;
use crate::truth::Pose;
use crate::tubes::{Material, Tube, AIRWAY_WALL_HU, BLOOD_HU};
use crate::PhantomError;

/// HU range a CT reconstruction stores.
const HU_MIN: f64 = -1024.0;
const HU_MAX: f64 = 3071.0;

pub(crate) fn render(scene: &Scene, pose: &Pose, acq: &Acquisition) -> Result<Volume<i16>, PhantomError> {
    let ctx = RenderContext::new(scene, pose, acq)?;
    let [nz, ny, nx] = acq.dims;
    let mut data = vec![0i16; nz * ny * nx];
    data.par_chunks_mut(ny * nx)
        .enumerate()
        .for_each_init(|| Scratch::new(ny * nx), |scratch, (k, out)| ctx.render_slice(k, out, scratch));
    Ok(Volume::new(acq.dims, acq.geometry, data)?)
}

struct Scratch {
    acc: Vec<f64>,
    blood: Vec<f32>,
    wall: Vec<f32>,
    lumen: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Scratch {
        Scratch { acc: vec![0.0; n], blood: vec![0.0; n], wall: vec![0.0; n], lumen: vec![0.0; n] }
    }
}

/// A tube in continuous voxel-index space, with how far around its axis it can reach.
struct TubeSpan {
    ia: Vec3,
    ib: Vec3,
    pad: Vec3,
}

struct RenderContext<'a> {
    scene: &'a Scene,
    acq: &'a Acquisition,
    idx_to_body: Affine,
    /// Ramp width of every boundary: the in-plane pixel size.
    h: f64,
    /// z offsets (index units) of the sub-planes that sample the slice profile.
    sub_planes: Vec<f64>,
    spans: Vec<TubeSpan>,
    buckets: Vec<Vec<u32>>,
    nodules: Vec<NoduleRaster<'a>>,
}

impl<'a> RenderContext<'a> {
    fn new(scene: &'a Scene, pose: &Pose, acq: &'a Acquisition) -> Result<Self, PhantomError> {
        let idx_to_lps = acq.index_to_lps();
        let lps_to_body = pose.body_to_lps.inverse().ok_or(PhantomError::Internal("pose is singular"))?;
        let idx_to_body = lps_to_body.then_after(&idx_to_lps);
        let body_to_idx = idx_to_body.inverse().ok_or(PhantomError::Internal("geometry is singular"))?;
        let s = acq.geometry.spacing;
        let h = s[1].min(s[2]);
        let n_sub = (acq.thickness / h - 1e-9).ceil().max(1.0) as usize;
        let half_t = acq.thickness / s[0] / 2.0;
        let sub_planes = (0..n_sub).map(|j| ((j as f64 + 0.5) / n_sub as f64 - 0.5) * 2.0 * half_t).collect();
        let stretch = pose.breathing_scale_si.max(1.0);
        let spans: Vec<TubeSpan> = scene
            .tubes
            .iter()
            .map(|t| {
                let pad_mm = (t.max_radius() + h) * stretch + 1e-3;
                TubeSpan {
                    ia: body_to_idx.apply(t.a),
                    ib: body_to_idx.apply(t.b),
                    pad: [0, 1, 2].map(|a| pad_mm / s[a]),
                }
            })
            .collect();
        let buckets = bucket_by_slice(&spans, acq.dims[0], half_t);
        let nodules = scene
            .nodules
            .iter()
            .map(|n| {
                let centre = pose.body_to_lps.apply(n.centre_body);
                NoduleRaster::new(&n.design.model, centre, &pose.rotation, &acq.geometry, acq.dims, acq.thickness)
            })
            .collect();
        Ok(RenderContext { scene, acq, idx_to_body, h, sub_planes, spans, buckets, nodules })
    }

    fn render_slice(&self, k: usize, out: &mut [i16], scratch: &mut Scratch) {
        scratch.acc.fill(0.0);
        for &dz in &self.sub_planes {
            self.render_plane(k, k as f64 + dz, scratch);
        }
        let n = self.sub_planes.len() as f64;
        scratch.acc.iter_mut().for_each(|v| *v /= n);
        for raster in &self.nodules {
            raster.for_slice(k, |i, main, core| {
                let v = &mut scratch.acc[i];
                *v += (raster.model.hu - *v) * main;
                if let Some(core_hu) = raster.model.core_hu {
                    *v += (core_hu - *v) * core;
                }
            });
        }
        add_noise(&mut scratch.acc, self.acq, k);
        for (o, v) in out.iter_mut().zip(&scratch.acc) {
            *o = v.round().clamp(HU_MIN, HU_MAX) as i16;
        }
    }

    /// One sub-plane of slice k at continuous slice index `zc`, added into `acc`.
    fn render_plane(&self, k: usize, zc: f64, s: &mut Scratch) {
        let [_, ny, nx] = self.acq.dims;
        s.blood.fill(0.0);
        s.wall.fill(0.0);
        s.lumen.fill(0.0);
        for &t in &self.buckets[k] {
            self.splat(t as usize, zc, s);
        }
        let step = self.idx_to_body.apply_vector([0.0, 0.0, 1.0]);
        for y in 0..ny {
            let row = self.idx_to_body.apply([zc, y as f64, 0.0]);
            for x in 0..nx {
                let i = y * nx + x;
                let xf = x as f64;
                let p = [row[0] + xf * step[0], row[1] + xf * step[1], row[2] + xf * step[2]];
                let mut v = self.scene.anatomy.sample(p, self.h);
                v += (BLOOD_HU - v) * s.blood[i] as f64;
                v += (AIRWAY_WALL_HU - v) * s.wall[i] as f64;
                v += (AIR - v) * s.lumen[i] as f64;
                s.acc[i] += v;
            }
        }
    }

    /// Coverage of one tube on the sub-plane, max-combined (overlapping branches are one
    /// vessel, not two).
    fn splat(&self, t: usize, zc: f64, s: &mut Scratch) {
        let span = &self.spans[t];
        let tube: &Tube = &self.scene.tubes[t];
        let Some((u0, u1)) = clip_to_slab(span.ia[0], span.ib[0], zc, span.pad[0]) else { return };
        let [_, ny, nx] = self.acq.dims;
        let along = |u: f64, a: usize| span.ia[a] + u * (span.ib[a] - span.ia[a]);
        let range = |a: usize, n: usize| {
            let lo = along(u0, a).min(along(u1, a)) - span.pad[a];
            let hi = along(u0, a).max(along(u1, a)) + span.pad[a];
            (lo.ceil().max(0.0) as usize, (hi.floor().min((n - 1) as f64)).max(-1.0))
        };
        let (y0, y1) = range(1, ny);
        let (x0, x1) = range(2, nx);
        if y1 < y0 as f64 || x1 < x0 as f64 {
            return;
        }
        let step = self.idx_to_body.apply_vector([0.0, 0.0, 1.0]);
        for y in y0..=y1 as usize {
            let row = self.idx_to_body.apply([zc, y as f64, x0 as f64]);
            for x in x0..=x1 as usize {
                let d = (x - x0) as f64;
                let p = [row[0] + d * step[0], row[1] + d * step[1], row[2] + d * step[2]];
                let (sd, r) = tube.sd(p);
                let c = (0.5 - sd / self.h).clamp(0.0, 1.0) as f32;
                if c <= 0.0 {
                    continue;
                }
                let i = y * nx + x;
                match tube.material {
                    Material::Blood => s.blood[i] = s.blood[i].max(c),
                    Material::Airway => {
                        s.wall[i] = s.wall[i].max(c);
                        let lumen = (0.5 - (sd + Tube::wall(r)) / self.h).clamp(0.0, 1.0) as f32;
                        s.lumen[i] = s.lumen[i].max(lumen);
                    }
                }
            }
        }
    }
}

/// The parameter range u in [0, 1] where za + u (zb - za) lies within `pad` of `zc`.
fn clip_to_slab(za: f64, zb: f64, zc: f64, pad: f64) -> Option<(f64, f64)> {
    let dz = zb - za;
    if dz.abs() < 1e-9 {
        return ((za - zc).abs() <= pad).then_some((0.0, 1.0));
    }
    let (a, b) = ((zc - pad - za) / dz, (zc + pad - za) / dz);
    let (lo, hi) = (a.min(b).max(0.0), a.max(b).min(1.0));
    (lo <= hi).then_some((lo, hi))
}

fn bucket_by_slice(spans: &[TubeSpan], nz: usize, half_t: f64) -> Vec<Vec<u32>> {
    let mut buckets = vec![Vec::new(); nz];
    for (i, s) in spans.iter().enumerate() {
        let lo = s.ia[0].min(s.ib[0]) - s.pad[0] - half_t;
        let hi = s.ia[0].max(s.ib[0]) + s.pad[0] + half_t;
        if hi < -0.5 || lo > nz as f64 - 0.5 {
            continue;
        }
        let first = lo.round().max(0.0) as usize;
        let last = (hi.round().max(0.0) as usize).min(nz - 1);
        for bucket in &mut buckets[first..=last] {
            bucket.push(i as u32);
        }
    }
    buckets
}

/// CT noise: white Gaussian noise low-passed by a 3x3 binomial kernel in-plane (real CT
/// noise is spatially correlated), rescaled so each voxel's SD is `noise_hu`.
fn add_noise(acc: &mut [f64], acq: &Acquisition, k: usize) {
    if acq.noise_hu <= 0.0 {
        return;
    }
    let [_, ny, nx] = acq.dims;
    let mut rng = seeds::rng(acq.noise_seed, &format!("noise/{k}"));
    let (wy, wx) = (ny + 2, nx + 2);
    let white: Vec<f32> = (0..wy * wx).map(|_| StandardNormal.sample(&mut rng)).collect();
    // Binomial weights 1-2-1 in both directions sum to 16 and have sqrt(sum w²) = 6.
    let gain = acq.noise_hu / 6.0;
    for y in 0..ny {
        for x in 0..nx {
            let at = |dy: usize, dx: usize| white[(y + dy) * wx + x + dx] as f64;
            let v = at(0, 0)
                + at(0, 2)
                + at(2, 0)
                + at(2, 2)
                + 2.0 * (at(0, 1) + at(1, 0) + at(1, 2) + at(2, 1))
                + 4.0 * at(1, 1);
            acc[y * nx + x] += v * gain;
        }
    }
}

/// Rasterises one nodule into a voxel grid: each voxel's coverage of the nodule (and of its
/// solid core) over the voxel's box of pixel x pixel x slice thickness, by supersampling
/// where the distance bound cannot decide.
pub(crate) struct NoduleRaster<'a> {
    pub model: &'a NoduleModel,
    idx_to_local: Affine,
    offsets: Vec<Vec3>,
    reach: f64,
    lo: [usize; 3],
    hi: [usize; 3],
    nx: usize,
}

impl<'a> NoduleRaster<'a> {
    /// `rotation` turns nodule-frame vectors into LPS vectors; `centre` is in LPS mm.
    pub fn new(
        model: &'a NoduleModel,
        centre: Vec3,
        rotation: &Mat3,
        geometry: &Geometry,
        dims: [usize; 3],
        thickness: f64,
    ) -> Self {
        let g = geometry.matrix();
        let rt = transpose(rotation);
        let linear = mat_mul(&rt, &g);
        let translation = crate::math::mat_vec(&rt, crate::math::sub(geometry.origin, centre));
        let idx_to_local = Affine { linear, translation };
        let tz = thickness / geometry.spacing[0];
        let px = geometry.spacing[1].min(geometry.spacing[2]);
        let nz_sub = ((4.0 * thickness / px).ceil() as usize).clamp(4, 32);
        let mut offsets = Vec::with_capacity(nz_sub * 16);
        for a in 0..nz_sub {
            for b in 0..4 {
                for c in 0..4 {
                    let d = [
                        ((a as f64 + 0.5) / nz_sub as f64 - 0.5) * tz,
                        (b as f64 + 0.5) / 4.0 - 0.5,
                        (c as f64 + 0.5) / 4.0 - 0.5,
                    ];
                    offsets.push(idx_to_local.apply_vector(d));
                }
            }
        }
        let corners = (0..8).map(|i| {
            let d = [
                if i & 1 == 0 { -tz / 2.0 } else { tz / 2.0 },
                if i & 2 == 0 { -0.5 } else { 0.5 },
                if i & 4 == 0 { -0.5 } else { 0.5 },
            ];
            norm(idx_to_local.apply_vector(d))
        });
        let reach = corners.fold(0.0, f64::max) * 1.05 + 1e-6;
        let (lo, hi) = index_box(geometry, dims, centre, model.bounding_radius() + reach);
        NoduleRaster { model, idx_to_local, offsets, reach, lo, hi, nx: dims[2] }
    }

    /// Calls `f(offset within slice k, coverage, core coverage)` for every voxel of slice k
    /// the nodule touches.
    pub fn for_slice(&self, k: usize, mut f: impl FnMut(usize, f64, f64)) {
        if k < self.lo[0] || k > self.hi[0] {
            return;
        }
        let n = self.offsets.len() as f64;
        for y in self.lo[1]..=self.hi[1] {
            for x in self.lo[2]..=self.hi[2] {
                let c = self.idx_to_local.apply([k as f64, y as f64, x as f64]);
                let main = self.cover(c, n, |p| self.model.sd(p));
                if main <= 0.0 {
                    continue;
                }
                let core = if self.model.has_core() { self.cover(c, n, |p| self.model.sd_core(p)) } else { 0.0 };
                f(y * self.nx + x, main, core);
            }
        }
    }

    fn cover(&self, c: Vec3, n: f64, sd: impl Fn(Vec3) -> f64) -> f64 {
        let d = sd(c);
        if d > self.reach {
            return 0.0;
        }
        if d < -self.reach {
            return 1.0;
        }
        let inside = self.offsets.iter().filter(|o| sd([c[0] + o[0], c[1] + o[1], c[2] + o[2]]) < 0.0).count();
        inside as f64 / n
    }

    /// Slices the nodule touches.
    pub fn slices(&self) -> std::ops::RangeInclusive<usize> {
        self.lo[0]..=self.hi[0]
    }
}

/// Voxel-index box (clamped) containing an LPS ball, valid for any (even sheared) geometry.
fn index_box(geometry: &Geometry, dims: [usize; 3], centre: Vec3, radius: f64) -> ([usize; 3], [usize; 3]) {
    let mut lo = [f64::MAX; 3];
    let mut hi = [f64::MIN; 3];
    for i in 0..8 {
        let corner = [0, 1, 2].map(|a| centre[a] + if i >> a & 1 == 0 { -radius } else { radius });
        let idx = geometry.lps_to_index(corner);
        for a in 0..3 {
            lo[a] = lo[a].min(idx[a]);
            hi[a] = hi[a].max(idx[a]);
        }
    }
    let clamp = |v: f64, n: usize| v.clamp(0.0, (n - 1) as f64);
    // A ball wholly outside gets lo > hi, so every loop over the box is empty.
    if (0..3).any(|a| hi[a] < 0.0 || lo[a] > (dims[a] - 1) as f64) {
        return ([1, 1, 1], [0, 0, 0]);
    }
    let lo_i = [0, 1, 2].map(|a| clamp(lo[a].floor(), dims[a]) as usize);
    let hi_i = [0, 1, 2].map(|a| clamp(hi[a].ceil(), dims[a]) as usize);
    (lo_i, hi_i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::rotation_deg;
    use crate::measure;
    use crate::nodule::{design, NoduleKind, NoduleRequest, NoduleShape};
    use crate::seeds;

    /// Sum of rendered coverage x voxel volume against the exact (octree) volume.
    fn rendered_volume(model: &NoduleModel, spacing: [f64; 3], thickness: f64, jitter: Vec3, rotation: &Mat3) -> f64 {
        let dims = [64, 96, 96];
        let geometry = Geometry::axial([0.0; 3], spacing).unwrap();
        let centre = geometry.index_to_lps([32.0 + jitter[0], 48.0 + jitter[1], 48.0 + jitter[2]]);
        let raster = NoduleRaster::new(model, centre, rotation, &geometry, dims, thickness);
        let mut sum = 0.0;
        for k in raster.slices() {
            raster.for_slice(k, |_, c, _| sum += c);
        }
        sum * spacing.iter().product::<f64>()
    }

    #[test]
    fn rendered_partial_volume_sums_to_the_true_volume() {
        let mut rng = seeds::rng(11, "test");
        let acquisitions = [([1.25, 0.7, 0.7], 1.25), ([2.5, 0.8, 0.8], 2.5), ([1.25, 0.6, 0.6], 2.5)];
        for (i, shape) in
            [NoduleShape::Spherical, NoduleShape::Lobulated, NoduleShape::Spiculated].into_iter().enumerate()
        {
            for d in [6.0, 11.0, 24.0] {
                let req = NoduleRequest {
                    kind: Some(NoduleKind::Solid),
                    shape: Some(shape),
                    diameter_mm: Some(d),
                    ..Default::default()
                };
                let model = design(&req, &mut rng).model;
                let truth = measure::volume_mm3(&|p| model.sd(p), model.bounding_radius() * 1.01);
                let (spacing, thickness) = acquisitions[i];
                let rotation = rotation_deg([10.0 * i as f64, 20.0, -35.0]);
                let got = rendered_volume(&model, spacing, thickness, [0.3, -0.27, 0.41], &rotation);
                let err = got / truth - 1.0;
                assert!(
                    err.abs() < 0.01,
                    "{shape:?} {d} mm: rendered {got:.1} vs true {truth:.1} mm3 ({:+.2}%)",
                    err * 100.0
                );
            }
        }
    }

    #[test]
    fn slab_clipping_keeps_only_the_part_near_the_plane() {
        assert_eq!(clip_to_slab(0.0, 10.0, 5.0, 1.0), Some((0.4, 0.6)));
        assert_eq!(clip_to_slab(3.0, 3.0, 5.0, 1.0), None);
        assert_eq!(clip_to_slab(3.0, 3.0, 3.5, 1.0), Some((0.0, 1.0)));
        assert_eq!(clip_to_slab(10.0, 0.0, 20.0, 1.0), None);
    }
}
