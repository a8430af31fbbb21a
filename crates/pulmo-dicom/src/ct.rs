//! CT series -> HU volume in patient coordinates: slices sorted along the normal, spacing
//! checked (gaps rejected, irregular spacing resampled), gantry tilt kept as exact shear.

use std::path::PathBuf;

use pulmo_findings::{SourceSeries, SourceSlice};
use pulmo_volume::vec3::{cross, dot, norm, sub};
use pulmo_volume::{Geometry, Vec3, Volume};
use rayon::prelude::*;
use serde::Serialize;

use crate::pixels::frame_to_hu;
use crate::{FileError, FramePlane, Instance, LoadError, PatientStudy, Series};

/// The storage classes a CT volume is assembled from: CT Image and Enhanced CT Image.
pub const CT_SOP_CLASSES: [&str; 2] = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"];

/// A step larger than this many times the typical one means slices are missing.
const GAP_FACTOR: f64 = 1.5;
/// Steps may differ from the typical one by this much (mm, or fraction) and still be regular.
const SPACING_TOLERANCE_MM: f64 = 0.02;
const SPACING_TOLERANCE_FRACTION: f64 = 0.02;
/// Below this angle (degrees) between stacking direction and slice normal there is no tilt.
const TILT_TOLERANCE_DEG: f64 = 0.05;

/// One slice of the assembled volume and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct SliceSource {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub frame: u32,
    pub path: PathBuf,
    /// Position along the slice normal, mm.
    pub normal_position: f64,
}

/// An assembled CT series.
#[derive(Debug, Clone)]
pub struct CtSeries {
    pub volume: Volume<i16>,
    pub patient_study: PatientStudy,
    pub series_uid: String,
    pub frame_of_reference_uid: Option<String>,
    pub slice_thickness: Option<f64>,
    /// Input slices in order along the normal (for a resampled volume, the slices it was
    /// interpolated from, not one per output slice).
    pub sources: Vec<SliceSource>,
    /// What was noticed and handled (tilt, resampling, split).
    pub notes: Vec<String>,
    pub resampled: bool,
}

impl CtSeries {
    /// The series as findings reference it: UIDs, the analysed grid and, unless the grid was
    /// resampled (then no slice is a source image), the instance and frame of each slice.
    pub fn source_series(&self) -> SourceSeries {
        let slices = if self.resampled {
            Vec::new()
        } else {
            self.sources
                .iter()
                .map(|s| SourceSlice { sop_class_uid: s.sop_class_uid.clone(), sop_instance_uid: s.sop_instance_uid.clone(), frame: s.frame })
                .collect()
        };
        SourceSeries {
            study_uid: self.patient_study.study_uid.clone(),
            series_uid: self.series_uid.clone(),
            frame_of_reference_uid: self.frame_of_reference_uid.clone(),
            study_date: self.patient_study.study_date.clone(),
            dims: self.volume.dims(),
            geometry: *self.volume.geometry(),
            slices,
        }
    }
}

struct Slice<'a> {
    instance: &'a Instance,
    plane: &'a FramePlane,
    position: Vec3,
    along_normal: f64,
}

/// The geometry a CT series will have once assembled, worked out from headers alone (no pixel
/// decoding): what `pulmo inspect` reports and what `assemble` builds on.
#[derive(Debug, Clone)]
pub struct StackPlan {
    pub geometry: Geometry,
    pub dims: [usize; 3],
    pub slice_thickness: Option<f64>,
    pub notes: Vec<String>,
    /// Positions along the normal to resample to, when the input spacing is irregular.
    pub resample_at: Option<Vec<f64>>,
}

impl StackPlan {
    pub fn for_series(series: &Series) -> Result<Self, LoadError> {
        Ok(Self::with_slices(series)?.0)
    }

    fn with_slices(series: &Series) -> Result<(Self, Vec<Slice<'_>>), LoadError> {
        let label = series.label();
        check_is_ct(series)?;
        let slices = sorted_slices(series)?;
        let first = slices[0].plane;
        let orientation = first.orientation.unwrap_or_default();
        let (row_cos, col_cos) = unit_pair(&orientation)
            .ok_or_else(|| LoadError::series(&label, "ImageOrientationPatient is not two unit vectors"))?;
        let spacing = first.pixel_spacing.unwrap_or_default();
        let mut notes = series.notes.clone();
        let stack = stacking(&label, &slices, &mut notes)?;
        let geometry = Geometry::new(
            slices[0].position,
            [stack.step, spacing[0], spacing[1]],
            [stack.direction, col_cos, row_cos],
        )
        .map_err(|e| LoadError::series(&label, format!("geometry: {e}")))?;
        let h = series.header();
        let count = stack.resample_at.as_ref().map_or(slices.len(), Vec::len);
        let plan = StackPlan {
            geometry,
            dims: [count, usize::from(h.rows), usize::from(h.columns)],
            slice_thickness: first.thickness,
            notes,
            resample_at: stack.resample_at,
        };
        Ok((plan, slices))
    }
}

impl CtSeries {
    /// Checks, sorts and decodes a CT series into a HU volume.
    pub fn assemble(series: &Series) -> Result<Self, LoadError> {
        let (plan, slices) = StackPlan::with_slices(series)?;
        let [_, rows, cols] = plan.dims;
        let decoded = decode_slices(&slices, rows * cols)?;
        let data = match &plan.resample_at {
            None => decoded,
            Some(targets) => resample(&slices, &decoded, rows * cols, targets),
        };
        let volume = Volume::new(plan.dims, plan.geometry, data)
            .map_err(|e| LoadError::series(&series.label(), e.to_string()))?;
        let h = series.header();
        Ok(CtSeries {
            volume,
            patient_study: h.patient_study.clone(),
            series_uid: series.series_uid.clone(),
            frame_of_reference_uid: h.frame_of_reference_uid.clone(),
            slice_thickness: plan.slice_thickness,
            sources: slices.iter().map(source_of).collect(),
            notes: plan.notes,
            resampled: plan.resample_at.is_some(),
        })
    }
}

fn check_is_ct(series: &Series) -> Result<(), LoadError> {
    let h = series.header();
    let is_ct_class = CT_SOP_CLASSES.contains(&h.sop_class_uid.as_str());
    if h.modality != "CT" && !is_ct_class {
        return Err(LoadError::NotCt {
            path: series.instances[0].path.clone(),
            modality: h.modality.clone(),
            sop_class: h.sop_class_uid.clone(),
        });
    }
    Ok(())
}

/// Every frame of the series with its plane checked, sorted along the slice normal.
fn sorted_slices(series: &Series) -> Result<Vec<Slice<'_>>, LoadError> {
    let (rows, cols) = (series.header().rows, series.header().columns);
    let spacing = series.header().frames.first().and_then(|f| f.pixel_spacing);
    let mut slices = Vec::with_capacity(series.frame_count());
    for inst in &series.instances {
        let h = &inst.header;
        let missing = |what| LoadError::File(FileError::MissingAttribute(inst.path.clone(), what));
        if !h.has_pixel_data {
            return Err(missing("PixelData (7FE0,0010)"));
        }
        if h.rows == 0 || h.columns == 0 || (h.rows, h.columns) != (rows, cols) {
            let reason = format!("{}x{} matrix, the series has {rows}x{cols}", h.rows, h.columns);
            return Err(LoadError::File(FileError::BadAttribute(inst.path.clone(), "Rows/Columns", reason)));
        }
        for plane in &h.frames {
            let position = plane.position.ok_or_else(|| missing("ImagePositionPatient (0020,0032)"))?;
            let orientation = plane.orientation.ok_or_else(|| missing("ImageOrientationPatient (0020,0037)"))?;
            match plane.pixel_spacing {
                Some(s) if s.iter().all(|v| *v > 0.0) => {}
                _ => return Err(missing("PixelSpacing (0028,0030) with positive values")),
            }
            if plane.pixel_spacing != spacing {
                let reason = format!("{:?} differs from the series' {spacing:?}", plane.pixel_spacing);
                return Err(LoadError::File(FileError::BadAttribute(inst.path.clone(), "PixelSpacing (0028,0030)", reason)));
            }
            let normal = unit_pair(&orientation).map(|(r, c)| cross(r, c)).ok_or_else(|| {
                LoadError::File(FileError::BadAttribute(
                    inst.path.clone(),
                    "ImageOrientationPatient (0020,0037)",
                    format!("{orientation:?} is not two orthogonal unit vectors"),
                ))
            })?;
            slices.push(Slice { instance: inst, plane, position, along_normal: dot(position, normal) });
        }
    }
    slices.sort_by(|a, b| a.along_normal.total_cmp(&b.along_normal));
    for pair in slices.windows(2) {
        if (pair[1].along_normal - pair[0].along_normal).abs() < 1e-3 {
            return Err(LoadError::DuplicatePosition {
                series: series.label(),
                a: pair[0].instance.path.clone(),
                b: pair[1].instance.path.clone(),
            });
        }
    }
    Ok(slices)
}

/// How slices stack: the step vector between neighbours and, if spacing is irregular, the
/// positions (along the normal) to resample to.
struct Stacking {
    step: f64,
    direction: Vec3,
    resample_at: Option<Vec<f64>>,
}

fn stacking(label: &str, slices: &[Slice], notes: &mut Vec<String>) -> Result<Stacking, LoadError> {
    let n = slices.len();
    if n == 1 {
        let normal = normal_of(slices[0].plane);
        let step = slices[0].plane.thickness.filter(|t| *t > 0.0).unwrap_or(1.0);
        notes.push("single slice: slice spacing taken from SliceThickness".into());
        return Ok(Stacking { step, direction: normal, resample_at: None });
    }
    let steps: Vec<f64> = slices.windows(2).map(|w| w[1].along_normal - w[0].along_normal).collect();
    let typical = median(&steps);
    let gaps: Vec<String> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > GAP_FACTOR * typical)
        .map(|(i, s)| {
            let (a, b) = (slices[i].along_normal, slices[i + 1].along_normal);
            format!("{a:.2} to {b:.2} mm (about {} slices)", (s / typical).round() as i64 - 1)
        })
        .collect();
    if !gaps.is_empty() {
        return Err(LoadError::MissingSlices { series: label.to_string(), gaps: gaps.join(", ") });
    }
    let span = sub(slices[n - 1].position, slices[0].position);
    let along = slices[n - 1].along_normal - slices[0].along_normal;
    let tolerance = SPACING_TOLERANCE_MM.max(SPACING_TOLERANCE_FRACTION * typical);
    let regular = steps.iter().all(|s| (s - typical).abs() <= tolerance);
    // Irregular stacks keep their slice count, resampled to the mean spacing: gaps are already
    // refused, so what is left is moderate jitter that neither loses nor invents anatomy.
    let count = n - 1;
    let step_vec = span.map(|v| v / count as f64);
    let step = norm(step_vec);
    let direction = step_vec.map(|v| v / step);
    let tilt = dot(direction, normal_of(slices[0].plane)).clamp(-1.0, 1.0).acos().to_degrees();
    if tilt > TILT_TOLERANCE_DEG {
        notes.push(format!("gantry tilt {tilt:.2} degrees: geometry kept sheared (exact)"));
    }
    let resample_at = (!regular).then(|| {
        let min = steps.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = steps.iter().cloned().fold(0.0, f64::max);
        notes.push(format!(
            "irregular slice spacing ({min:.3} to {max:.3} mm): resampled to {:.3} mm",
            along / count as f64
        ));
        (0..=count).map(|k| slices[0].along_normal + along * k as f64 / count as f64).collect()
    });
    Ok(Stacking { step, direction, resample_at })
}

/// Decodes every slice straight into one slice-major buffer, slices in parallel.
fn decode_slices(slices: &[Slice], pixels: usize) -> Result<Vec<i16>, LoadError> {
    let mut data = vec![0i16; slices.len() * pixels];
    data.par_chunks_mut(pixels).zip(slices).try_for_each(|(out, s)| {
        let object = s.instance.object.as_ref().ok_or_else(|| {
            FileError::PixelData(s.instance.path.clone(), "pixels were not kept when scanning".into())
        })?;
        frame_to_hu(&s.instance.path, &s.instance.header, object, s.plane, out).map_err(LoadError::from)
    })?;
    Ok(data)
}

/// Linear interpolation between the two slices that bracket each target position.
fn resample(slices: &[Slice], decoded: &[i16], pixels: usize, targets: &[f64]) -> Vec<i16> {
    let slice = |i: usize| &decoded[i * pixels..(i + 1) * pixels];
    let mut out = Vec::with_capacity(targets.len() * pixels);
    for &t in targets {
        let hi = slices.partition_point(|s| s.along_normal < t).clamp(1, slices.len() - 1);
        let (a, b) = (&slices[hi - 1], &slices[hi]);
        let w = ((t - a.along_normal) / (b.along_normal - a.along_normal)).clamp(0.0, 1.0);
        out.extend(slice(hi - 1).iter().zip(slice(hi)).map(|(&p, &q)| {
            (f64::from(p) * (1.0 - w) + f64::from(q) * w).round() as i16
        }));
    }
    out
}

fn source_of(s: &Slice) -> SliceSource {
    SliceSource {
        sop_class_uid: s.instance.header.sop_class_uid.clone(),
        sop_instance_uid: s.instance.header.sop_instance_uid.clone(),
        frame: s.plane.frame,
        path: s.instance.path.clone(),
        normal_position: s.along_normal,
    }
}

fn normal_of(plane: &FramePlane) -> Vec3 {
    let (r, c) = unit_pair(&plane.orientation.unwrap_or_default()).unwrap_or(([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]));
    cross(r, c)
}

/// Row and column cosines, renormalised; None unless both are unit-ish and orthogonal.
fn unit_pair(o: &[f64; 6]) -> Option<(Vec3, Vec3)> {
    let r = [o[0], o[1], o[2]];
    let c = [o[3], o[4], o[5]];
    let (nr, nc) = (norm(r), norm(c));
    let ok = (nr - 1.0).abs() < 1e-2 && (nc - 1.0).abs() < 1e-2 && dot(r, c).abs() < 1e-2;
    ok.then(|| (r.map(|v| v / nr), c.map(|v| v / nc)))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
