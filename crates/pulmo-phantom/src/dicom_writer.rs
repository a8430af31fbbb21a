//! Writing a phantom as a CT Image Storage series: one Part-10 file per slice, Explicit VR
//! Little Endian, signed 16-bit stored values that are HU directly (slope 1, intercept 0).

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use rayon::prelude::*;

use crate::{seeds, Phantom, PhantomError};

/// Writes `CT000001.dcm`... (slice index order, ascending ImagePositionPatient along the
/// stacking direction) and `truth.json` into `out_dir`; returns the paths, truth.json last.
pub fn write_study(p: &Phantom, out_dir: &Path) -> Result<Vec<PathBuf>, PhantomError> {
    let nz = p.volume.dims()[0];
    if p.dicom.sop_instance_uids.len() != nz {
        return Err(PhantomError::InvalidOption {
            field: "dicom.sop_instance_uids",
            reason: format!("{} UIDs for {nz} slices", p.dicom.sop_instance_uids.len()),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| PhantomError::io(out_dir, e))?;
    let mut files = (0..nz)
        .into_par_iter()
        .map(|k| {
            let path = out_dir.join(format!("CT{:06}.dcm", k + 1));
            write_slice(p, k, &path)?;
            Ok(path)
        })
        .collect::<Result<Vec<_>, PhantomError>>()?;
    let truth = out_dir.join("truth.json");
    p.truth.write(&truth)?;
    files.push(truth);
    Ok(files)
}

/// DS: at most 16 characters, as exact as fits. Rust's `{}` gives the shortest string that
/// reads back to the same f64 (so 0.646484375 stays exact: geometry must not drift across a
/// 512-pixel row); longer values are rounded to the most decimals that fit.
fn ds(x: f64) -> String {
    let tidy = |s: String| {
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        if s == "-0" { "0".to_string() } else { s }
    };
    let shortest = tidy(format!("{x}"));
    if shortest.len() <= 16 && !shortest.contains('e') {
        return shortest;
    }
    (0..=15)
        .rev()
        .map(|precision| tidy(format!("{x:.precision$}")))
        .find(|s| s.len() <= 16)
        .unwrap_or_else(|| format!("{x:.0}"))
}

struct Builder(InMemDicomObject);

impl Builder {
    fn text(&mut self, tag: Tag, vr: VR, value: &str) -> &mut Self {
        let v = if value.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(value) };
        self.0.put(DataElement::new(tag, vr, v));
        self
    }

    fn texts(&mut self, tag: Tag, vr: VR, values: &[String]) -> &mut Self {
        self.0.put(DataElement::new(tag, vr, PrimitiveValue::Strs(values.iter().cloned().collect())));
        self
    }

    fn decimals(&mut self, tag: Tag, values: &[f64]) -> &mut Self {
        let strs: Vec<String> = values.iter().map(|v| ds(*v)).collect();
        self.texts(tag, VR::DS, &strs)
    }

    fn us(&mut self, tag: Tag, value: u16) -> &mut Self {
        self.0.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        self
    }
}

/// Implementation Class UID of this writer (fixed, derived like every phantom UID).
fn implementation_class_uid() -> String {
    seeds::uid(0, "pulmo-phantom/implementation-class")
}

fn write_slice(p: &Phantom, k: usize, path: &Path) -> Result<(), PhantomError> {
    let id = &p.dicom;
    let t = &p.truth;
    let g = p.volume.geometry();
    let [_, rows, cols] = p.volume.dims();
    let too_big = |what: &str| PhantomError::InvalidOption { field: "volume", reason: format!("{what} exceeds 65535") };
    let rows = u16::try_from(rows).map_err(|_| too_big("rows"))?;
    let cols = u16::try_from(cols).map_err(|_| too_big("columns"))?;
    let sop = &id.sop_instance_uids[k];
    let position = g.index_to_lps([k as f64, 0.0, 0.0]);
    let orientation = [g.direction[2], g.direction[1]].concat();
    let normal = g.slice_normal();
    let slice_location = position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2];
    let pixels: Vec<u8> = p.volume.slice(k).iter().flat_map(|v| v.to_le_bytes()).collect();
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let mut b = Builder(InMemDicomObject::new_empty());
    b.text(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE)
        .text(tags::SOP_INSTANCE_UID, VR::UI, sop)
        .texts(tags::IMAGE_TYPE, VR::CS, &strs(&["ORIGINAL", "PRIMARY", "AXIAL"]))
        .text(tags::STUDY_DATE, VR::DA, &id.study_date)
        .text(tags::SERIES_DATE, VR::DA, &id.study_date)
        .text(tags::ACQUISITION_DATE, VR::DA, &id.study_date)
        .text(tags::CONTENT_DATE, VR::DA, &id.study_date)
        .text(tags::STUDY_TIME, VR::TM, &id.study_time)
        .text(tags::SERIES_TIME, VR::TM, &id.study_time)
        .text(tags::ACQUISITION_TIME, VR::TM, &id.study_time)
        .text(tags::CONTENT_TIME, VR::TM, &id.study_time)
        .text(tags::ACCESSION_NUMBER, VR::SH, &id.accession_number)
        .text(tags::MODALITY, VR::CS, "CT")
        .text(tags::MANUFACTURER, VR::LO, "pulmo phantom")
        .text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "")
        .text(tags::STUDY_DESCRIPTION, VR::LO, &id.study_description)
        .text(tags::SERIES_DESCRIPTION, VR::LO, &id.series_description)
        .text(tags::MANUFACTURER_MODEL_NAME, VR::LO, "pulmo-phantom")
        .text(tags::PATIENT_NAME, VR::PN, &id.patient.name)
        .text(tags::PATIENT_ID, VR::LO, &id.patient.id)
        .text(tags::PATIENT_BIRTH_DATE, VR::DA, &id.patient.birth_date)
        .text(tags::PATIENT_SEX, VR::CS, &id.patient.sex)
        .text(tags::PATIENT_AGE, VR::AS, &id.patient_age)
        .text(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES")
        .text(tags::DEIDENTIFICATION_METHOD, VR::LO, "synthetic phantom: no real patient")
        .text(tags::BODY_PART_EXAMINED, VR::CS, "CHEST")
        .decimals(tags::SLICE_THICKNESS, &[t.slice_thickness_mm])
        .decimals(tags::KVP, &[t.spec.kvp])
        .decimals(tags::SPACING_BETWEEN_SLICES, &[g.spacing[0]])
        .text(tags::SOFTWARE_VERSIONS, VR::LO, &format!("{} {}", t.generator.name, t.generator.version))
        .decimals(tags::RECONSTRUCTION_DIAMETER, &[cols as f64 * g.spacing[2]])
        .text(tags::CONVOLUTION_KERNEL, VR::SH, "PHANTOM")
        .text(tags::PATIENT_POSITION, VR::CS, "HFS")
        .text(tags::STUDY_INSTANCE_UID, VR::UI, &id.study_instance_uid)
        .text(tags::SERIES_INSTANCE_UID, VR::UI, &id.series_instance_uid)
        .text(tags::STUDY_ID, VR::SH, &id.study_id)
        .text(tags::SERIES_NUMBER, VR::IS, &id.series_number.to_string())
        .text(tags::ACQUISITION_NUMBER, VR::IS, "1")
        .text(tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string())
        .decimals(tags::IMAGE_POSITION_PATIENT, &position)
        .decimals(tags::IMAGE_ORIENTATION_PATIENT, &orientation)
        .text(tags::FRAME_OF_REFERENCE_UID, VR::UI, &id.frame_of_reference_uid)
        .text(tags::POSITION_REFERENCE_INDICATOR, VR::LO, "")
        .decimals(tags::SLICE_LOCATION, &[slice_location])
        .us(tags::SAMPLES_PER_PIXEL, 1)
        .text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
        .us(tags::ROWS, rows)
        .us(tags::COLUMNS, cols)
        .decimals(tags::PIXEL_SPACING, &[g.spacing[1], g.spacing[2]])
        .us(tags::BITS_ALLOCATED, 16)
        .us(tags::BITS_STORED, 16)
        .us(tags::HIGH_BIT, 15)
        .us(tags::PIXEL_REPRESENTATION, 1)
        .text(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .decimals(tags::WINDOW_CENTER, &[-600.0, 40.0])
        .decimals(tags::WINDOW_WIDTH, &[1500.0, 400.0])
        .texts(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, &strs(&["LUNG", "MEDIASTINUM"]))
        .decimals(tags::RESCALE_INTERCEPT, &[0.0])
        .decimals(tags::RESCALE_SLOPE, &[1.0])
        .text(tags::RESCALE_TYPE, VR::LO, "HU");
    b.0.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U8(pixels.into())));

    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .implementation_class_uid(implementation_class_uid())
        .implementation_version_name("PULMO-PHANTOM");
    let file =
        b.0.with_meta(meta).map_err(|e| PhantomError::Dicom { path: path.to_path_buf(), message: e.to_string() })?;
    file.write_to_file(path).map_err(|e| PhantomError::Dicom { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.7), "0.7");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(-178.85), "-178.85");
        assert_eq!(ds(1.0), "1");
        assert!(ds(-123456.123456789).len() <= 16);
        assert_eq!(ds(0.1 + 0.2), "0.3");
        assert_eq!(ds(0.646484375), "0.646484375");
        assert_eq!(ds(-173.1767578125), "-173.1767578125");
    }
}
