//! One received or read instance: the header fields pulmo groups and assembles by, and the
//! image planes of its frames (one for classic CT, many for Enhanced CT).

use std::path::PathBuf;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};
use serde::Serialize;

use crate::attrs::{floats, group_item, int, items, string, strings};
use crate::{DicomFile, FileError};

/// Who the instance belongs to. Patient fields are PHI: never log them at info level.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatientStudy {
    pub patient_id: Option<String>,
    /// Who assigned the Patient ID (e.g. the hospital): with it, IDs from two sites don't collide.
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub age: Option<String>,
    pub study_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
}

/// Where one frame lies and how its stored values become HU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FramePlane {
    pub frame: u32,
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    /// (row spacing, column spacing) in mm, as PixelSpacing orders them.
    pub pixel_spacing: Option<[f64; 2]>,
    pub thickness: Option<f64>,
    pub slope: f64,
    pub intercept: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceHeader {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub frame_of_reference_uid: Option<String>,
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub acquisition_number: Option<i64>,
    pub instance_number: Option<i64>,
    pub image_type: Vec<String>,
    pub rows: u16,
    pub columns: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub pixel_signed: bool,
    pub samples_per_pixel: u16,
    pub has_pixel_data: bool,
    pub transfer_syntax: String,
    pub kernel: Option<String>,
    pub manufacturer: Option<String>,
    pub patient_study: PatientStudy,
    pub frames: Vec<FramePlane>,
}

/// An instance with its source and, when pixels are wanted, the parsed object itself.
#[derive(Debug, Clone)]
pub struct Instance {
    pub path: PathBuf,
    pub header: InstanceHeader,
    pub object: Option<FileDicomObject<InMemDicomObject>>,
}

impl Instance {
    pub fn from_file(file: DicomFile, keep_object: bool) -> Result<Self, FileError> {
        let header = InstanceHeader::read(&file)?;
        let object = keep_object.then_some(file.object);
        Ok(Instance { path: file.path, header, object })
    }

    pub fn is_localizer(&self) -> bool {
        self.header.image_type.iter().any(|t| t == "LOCALIZER")
    }
}

impl InstanceHeader {
    pub fn read(file: &DicomFile) -> Result<Self, FileError> {
        let obj = &file.object;
        let required = |tag, name: &'static str| {
            string(obj, tag).ok_or_else(|| FileError::MissingAttribute(file.path.clone(), name))
        };
        let sop_class_uid = required(tags::SOP_CLASS_UID, "SOPClassUID (0008,0016)")?;
        let sop_instance_uid = required(tags::SOP_INSTANCE_UID, "SOPInstanceUID (0008,0018)")?;
        let series_uid = required(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID (0020,000E)")?;
        let study_uid = required(tags::STUDY_INSTANCE_UID, "StudyInstanceUID (0020,000D)")?;
        let u16_of = |tag, default: u16| int(obj, tag).and_then(|v| u16::try_from(v).ok()).unwrap_or(default);
        Ok(InstanceHeader {
            sop_class_uid,
            sop_instance_uid,
            series_uid,
            frame_of_reference_uid: string(obj, tags::FRAME_OF_REFERENCE_UID),
            modality: string(obj, tags::MODALITY).unwrap_or_default(),
            series_number: int(obj, tags::SERIES_NUMBER),
            series_description: string(obj, tags::SERIES_DESCRIPTION),
            acquisition_number: int(obj, tags::ACQUISITION_NUMBER),
            instance_number: int(obj, tags::INSTANCE_NUMBER),
            image_type: strings(obj, tags::IMAGE_TYPE),
            rows: u16_of(tags::ROWS, 0),
            columns: u16_of(tags::COLUMNS, 0),
            bits_allocated: u16_of(tags::BITS_ALLOCATED, 0),
            bits_stored: u16_of(tags::BITS_STORED, 0),
            pixel_signed: int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
            samples_per_pixel: u16_of(tags::SAMPLES_PER_PIXEL, 1),
            has_pixel_data: obj.get(tags::PIXEL_DATA).is_some(),
            transfer_syntax: file.transfer_syntax.clone(),
            kernel: string(obj, tags::CONVOLUTION_KERNEL),
            manufacturer: string(obj, tags::MANUFACTURER),
            patient_study: PatientStudy {
                patient_id: string(obj, tags::PATIENT_ID),
                patient_name: string(obj, tags::PATIENT_NAME),
                birth_date: string(obj, tags::PATIENT_BIRTH_DATE),
                sex: string(obj, tags::PATIENT_SEX),
                age: string(obj, tags::PATIENT_AGE),
                study_uid,
                study_date: string(obj, tags::STUDY_DATE),
                study_time: string(obj, tags::STUDY_TIME),
                accession_number: string(obj, tags::ACCESSION_NUMBER),
                issuer_of_patient_id: string(obj, tags::ISSUER_OF_PATIENT_ID),
            },
            frames: frame_planes(obj),
        })
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }
}

/// Classic images carry the plane in the top-level dataset; Enhanced (multi-frame) images in
/// shared and per-frame functional groups, where a per-frame value overrides a shared one.
fn frame_planes(obj: &InMemDicomObject) -> Vec<FramePlane> {
    let per_frame = items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    if per_frame.is_empty() {
        let n = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).clamp(1, 1 << 16) as u32;
        let plane = plane_from(&[], obj, 0);
        return (0..n).map(|frame| FramePlane { frame, ..plane.clone() }).collect();
    }
    let shared = items(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).first();
    per_frame
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let groups: Vec<_> = std::iter::once(item).chain(shared).collect();
            plane_from(&groups, obj, i as u32)
        })
        .collect()
}

/// Reads each plane attribute from the first functional group that has it (inside its macro
/// sequence), falling back to the top-level dataset where classic images keep it.
fn plane_from(groups: &[&InMemDicomObject], top: &InMemDicomObject, frame: u32) -> FramePlane {
    let find = |macro_seq: Tag, tag: Tag| {
        groups
            .iter()
            .find_map(|g| group_item(g, macro_seq).and_then(|m| floats(m, tag)))
            .or_else(|| floats(top, tag))
    };
    let first_n = |v: Option<Vec<f64>>, n: usize| v.and_then(|v| v.get(..n).map(|s| s.to_vec()));
    let position = first_n(find(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT), 3);
    let orientation =
        first_n(find(tags::PLANE_ORIENTATION_SEQUENCE, tags::IMAGE_ORIENTATION_PATIENT), 6);
    let spacing = first_n(find(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING), 2);
    let first = |v: Option<Vec<f64>>| v.and_then(|v| v.first().copied());
    let transform = tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE;
    FramePlane {
        frame,
        position: position.and_then(|v| v.try_into().ok()),
        orientation: orientation.and_then(|v| v.try_into().ok()),
        pixel_spacing: spacing.and_then(|v| v.try_into().ok()),
        thickness: first(find(tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS)),
        slope: first(find(transform, tags::RESCALE_SLOPE)).filter(|s| *s != 0.0).unwrap_or(1.0),
        intercept: first(find(transform, tags::RESCALE_INTERCEPT)).unwrap_or(0.0),
    }
}
