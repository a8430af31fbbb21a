//! Segmentation Storage (PS3.3 A.51, SOP Class 1.2.840.10008.5.1.4.1.1.66.4), BINARY: one
//! segment per nodule of a `StudyFindings`, frames on the analysed CT's own slices.
//!
//! Each frame is one slice of one segment (empty slices left out), placed by its plane position
//! and derived from the exact source slice, so that viewers overlay it on the CT without
//! resampling. Modules: Patient, General Study, General Series, Segmentation Series, Frame of
//! Reference, General and Enhanced General Equipment, General Image, Image Pixel, Segmentation
//! Image, Multi-frame Functional Groups, Multi-frame Dimension, Common Instance Reference,
//! SOP Common.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use pulmo_findings::{nodule_colour, NoduleFinding, Side, StudyFindings};
use pulmo_volume::vec3::{dot, scale};

use super::{
    check_context, check_source_slices, check_uid, code_item, invalid, laterality_code, lung_code, part10, put_codes, put_ds, put_sequence, put_tag, put_text, put_ul, put_us,
    slice_reference, Equipment, NewInstance, StudyContext, WriteError,
};

pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// The DICOM SEG of a study's nodules.
#[derive(Debug, Clone)]
pub struct NoduleSegmentation<'a> {
    pub findings: &'a StudyFindings,
    pub study: &'a StudyContext,
    pub instance: &'a NewInstance,
    pub equipment: &'a Equipment,
}

/// One frame: slice `z` of the grid for segment `segment` (1-based).
struct Frame {
    segment: u16,
    z: usize,
}

impl NoduleSegmentation<'_> {
    /// The complete data set (no file meta group).
    pub fn to_dataset(&self) -> Result<InMemDicomObject, WriteError> {
        self.validate()?;
        let source = &self.findings.source;
        let frames = self.frames();
        // General Series, Segmentation Series.
        let description = "pulmo lung nodules (segmentation)";
        let mut o = self.instance.start_dataset(SEGMENTATION_STORAGE, self.study.is_ascii(), self.study, "SEG", description);

        // Frame of Reference: the CT's own, so the segments sit on it.
        put_text(&mut o, tags::FRAME_OF_REFERENCE_UID, VR::UI, source.frame_of_reference_uid.as_deref().unwrap_or_default());
        put_text(&mut o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
        self.equipment.put(&mut o);

        // General Image, Segmentation Image, Multi-frame Functional Groups.
        put_text(&mut o, tags::INSTANCE_NUMBER, VR::IS, &self.instance.instance_number.to_string());
        put_text(&mut o, tags::CONTENT_DATE, VR::DA, &self.instance.content_date);
        put_text(&mut o, tags::CONTENT_TIME, VR::TM, &self.instance.content_time);
        put_codes(&mut o, tags::IMAGE_TYPE, &["DERIVED", "PRIMARY"]);
        put_text(&mut o, tags::CONTENT_LABEL, VR::CS, "NODULES");
        put_text(&mut o, tags::CONTENT_DESCRIPTION, VR::LO, "Lung nodules found by pulmo");
        put_text(&mut o, tags::CONTENT_CREATOR_NAME, VR::PN, "");
        put_text(&mut o, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
        put_text(&mut o, tags::SEGMENTS_OVERLAP, VR::CS, "NO");
        put_text(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        let segments = self.findings.nodules.iter().enumerate().map(|(i, n)| self.segment(i as u16 + 1, n)).collect();
        put_sequence(&mut o, tags::SEGMENT_SEQUENCE, segments);
        put_text(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, &frames.len().to_string());
        put_sequence(&mut o, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![self.shared_groups()]);
        let per_frame = frames.iter().map(|f| self.frame_groups(f)).collect();
        put_sequence(&mut o, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame);
        self.put_dimensions(&mut o);
        put_sequence(&mut o, tags::REFERENCED_SERIES_SEQUENCE, vec![self.referenced_series(&frames)]);

        // Image Pixel: one bit per pixel, frames back to back.
        let [_, rows, columns] = source.dims;
        put_us(&mut o, tags::SAMPLES_PER_PIXEL, &[1]);
        put_text(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        put_us(&mut o, tags::ROWS, &[rows as u16]);
        put_us(&mut o, tags::COLUMNS, &[columns as u16]);
        put_us(&mut o, tags::BITS_ALLOCATED, &[1]);
        put_us(&mut o, tags::BITS_STORED, &[1]);
        put_us(&mut o, tags::HIGH_BIT, &[0]);
        put_us(&mut o, tags::PIXEL_REPRESENTATION, &[0]);
        o.put(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(self.pixel_data(&frames))));
        Ok(o)
    }

    /// A Part-10 file in Explicit VR Little Endian with pulmo's file meta group.
    pub fn to_part10(&self) -> Result<Vec<u8>, WriteError> {
        let dataset = self.to_dataset()?;
        part10(SEGMENTATION_STORAGE, &self.instance.sop_instance_uid, &dataset)
    }

    fn validate(&self) -> Result<(), WriteError> {
        let source = &self.findings.source;
        check_context(self.findings, self.study, self.instance, self.equipment)?;
        match &source.frame_of_reference_uid {
            Some(uid) => check_uid("findings.source.frame_of_reference_uid", uid)?,
            None => return Err(WriteError::Empty { field: "findings.source.frame_of_reference_uid (a SEG shares the CT's)".into() }),
        }
        if self.findings.nodules.is_empty() {
            return Err(WriteError::Empty { field: "findings.nodules (a SEG needs at least one segment)".into() });
        }
        if self.findings.nodules.len() > usize::from(u16::MAX) {
            return Err(invalid("findings.nodules", &self.findings.nodules.len().to_string(), "more segments than a SEG can number"));
        }
        let [_, rows, columns] = source.dims;
        if rows > usize::from(u16::MAX) || columns > usize::from(u16::MAX) {
            return Err(invalid("findings.source.dims", &format!("{:?}", source.dims), "rows and columns must fit 16 bits"));
        }
        check_source_slices(source)?;
        for (i, n) in self.findings.nodules.iter().enumerate() {
            check_uid(format!("findings.nodules[{i}].tracking_uid"), &n.tracking_uid)?;
            n.region.check(source.dims).map_err(|e| invalid(&format!("findings.nodules[{i}].region"), "", e.to_string()))?;
            if n.region.is_empty() {
                return Err(WriteError::Empty { field: format!("findings.nodules[{i}].region") });
            }
        }
        Ok(())
    }

    /// Per segment, the slices its region has voxels on, in segment then slice order.
    fn frames(&self) -> Vec<Frame> {
        let mut frames = Vec::new();
        for (i, n) in self.findings.nodules.iter().enumerate() {
            let mut slices: Vec<usize> = n.region.voxels().map(|v| v[0]).collect();
            slices.dedup();
            frames.extend(slices.into_iter().map(|z| Frame { segment: i as u16 + 1, z }));
        }
        frames
    }

    /// Frames packed one bit per pixel, least significant bit first, with no padding between
    /// frames (PS3.5 8.1.1); the whole is padded to an even length.
    fn pixel_data(&self, frames: &[Frame]) -> Vec<u8> {
        let [_, rows, columns] = self.findings.source.dims;
        let frame_bits = rows * columns;
        let mut bytes = vec![0u8; (frames.len() * frame_bits).div_ceil(8).next_multiple_of(2)];
        for (k, frame) in frames.iter().enumerate() {
            let region = &self.findings.nodules[usize::from(frame.segment) - 1].region;
            for [_, y, x] in region.voxels().filter(|v| v[0] == frame.z) {
                let bit = k * frame_bits + y * columns + x;
                bytes[bit / 8] |= 1 << (bit % 8);
            }
        }
        bytes
    }

    fn segment(&self, number: u16, nodule: &NoduleFinding) -> InMemDicomObject {
        let algorithm = &self.findings.algorithm;
        let m = &nodule.measurements;
        let mut item = InMemDicomObject::new_empty();
        put_us(&mut item, tags::SEGMENT_NUMBER, &[number]);
        put_text(&mut item, tags::SEGMENT_LABEL, VR::LO, &format!("Nodule {}", nodule.id));
        let zone = nodule.zone.map(|z| format!(", {z} zone")).unwrap_or_default();
        let description = format!("{} nodule, {:.1} mm{zone}, Lung-RADS {}", m.density.label(), m.mean_diameter_mm, nodule.lung_rads.category);
        put_text(&mut item, tags::SEGMENT_DESCRIPTION, VR::ST, &description);
        put_text(&mut item, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
        put_text(&mut item, tags::SEGMENT_ALGORITHM_NAME, VR::LO, &algorithm.name);
        let mut identification = InMemDicomObject::new_empty();
        put_sequence(&mut identification, tags::ALGORITHM_FAMILY_CODE_SEQUENCE, vec![code_item("123110", "DCM", "Artificial Intelligence")]);
        put_text(&mut identification, tags::ALGORITHM_NAME, VR::LO, &algorithm.name);
        put_text(&mut identification, tags::ALGORITHM_VERSION, VR::LO, &algorithm.version);
        put_sequence(&mut item, tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE, vec![identification]);
        let category = code_item("49755003", "SCT", "Morphologically Abnormal Structure");
        put_sequence(&mut item, tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE, vec![category]);
        put_sequence(&mut item, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE, vec![code_item("27925004", "SCT", "Nodule")]);
        put_sequence(&mut item, tags::ANATOMIC_REGION_SEQUENCE, vec![anatomic_region(nodule.zone.map(|z| z.side))]);
        put_text(&mut item, tags::TRACKING_ID, VR::UT, &format!("Nodule {}", nodule.id));
        put_text(&mut item, tags::TRACKING_UID, VR::UI, &nodule.tracking_uid);
        put_us(&mut item, tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE, &display_colour(nodule));
        item
    }

    /// Pixel spacing and orientation, the same for every frame.
    fn shared_groups(&self) -> InMemDicomObject {
        let g = &self.findings.source.geometry;
        let mut measures = InMemDicomObject::new_empty();
        put_ds(&mut measures, tags::PIXEL_SPACING, &[g.spacing[1], g.spacing[2]]);
        // Along the slice normal: a gantry-tilted stack's slices are closer than its step.
        let between = dot(scale(g.direction[0], g.spacing[0]), g.slice_normal()).abs();
        put_ds(&mut measures, tags::SLICE_THICKNESS, &[between]);
        put_ds(&mut measures, tags::SPACING_BETWEEN_SLICES, &[between]);
        let mut orientation = InMemDicomObject::new_empty();
        let [row, column] = [g.direction[2], g.direction[1]];
        put_ds(&mut orientation, tags::IMAGE_ORIENTATION_PATIENT, &[row[0], row[1], row[2], column[0], column[1], column[2]]);
        let mut shared = InMemDicomObject::new_empty();
        put_sequence(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
        put_sequence(&mut shared, tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation]);
        shared
    }

    fn frame_groups(&self, frame: &Frame) -> InMemDicomObject {
        let source = &self.findings.source;
        let mut derivation = InMemDicomObject::new_empty();
        put_sequence(&mut derivation, tags::DERIVATION_CODE_SEQUENCE, vec![code_item("113076", "DCM", "Segmentation")]);
        put_sequence(&mut derivation, tags::SOURCE_IMAGE_SEQUENCE, vec![self.source_image(frame.z)]);
        let mut content = InMemDicomObject::new_empty();
        put_ul(&mut content, tags::DIMENSION_INDEX_VALUES, &[u32::from(frame.segment), frame.z as u32 + 1]);
        let mut position = InMemDicomObject::new_empty();
        put_ds(&mut position, tags::IMAGE_POSITION_PATIENT, &source.geometry.index_to_lps([frame.z as f64, 0.0, 0.0]));
        let mut segment = InMemDicomObject::new_empty();
        put_us(&mut segment, tags::REFERENCED_SEGMENT_NUMBER, &[frame.segment]);
        let mut groups = InMemDicomObject::new_empty();
        put_sequence(&mut groups, tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]);
        put_sequence(&mut groups, tags::FRAME_CONTENT_SEQUENCE, vec![content]);
        put_sequence(&mut groups, tags::PLANE_POSITION_SEQUENCE, vec![position]);
        put_sequence(&mut groups, tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![segment]);
        groups
    }

    fn source_image(&self, z: usize) -> InMemDicomObject {
        let mut item = slice_reference(&self.findings.source.slices, z);
        let purpose = code_item("121322", "DCM", "Source image for image processing operation");
        put_sequence(&mut item, tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, vec![purpose]);
        put_text(&mut item, tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
        item
    }

    /// Frames are indexed by segment, then by position along the stack.
    fn put_dimensions(&self, o: &mut InMemDicomObject) {
        let organization = crate::derived_uid(&format!("{}/dimension-organization", self.instance.sop_instance_uid));
        let mut org = InMemDicomObject::new_empty();
        put_text(&mut org, tags::DIMENSION_ORGANIZATION_UID, VR::UI, &organization);
        put_sequence(o, tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
        put_text(o, tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D");
        let index = |pointer, group, label: &str| {
            let mut item = InMemDicomObject::new_empty();
            put_text(&mut item, tags::DIMENSION_ORGANIZATION_UID, VR::UI, &organization);
            put_tag(&mut item, tags::DIMENSION_INDEX_POINTER, pointer);
            put_tag(&mut item, tags::FUNCTIONAL_GROUP_POINTER, group);
            put_text(&mut item, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
            item
        };
        let dimensions = vec![
            index(tags::REFERENCED_SEGMENT_NUMBER, tags::SEGMENT_IDENTIFICATION_SEQUENCE, "ReferencedSegmentNumber"),
            index(tags::IMAGE_POSITION_PATIENT, tags::PLANE_POSITION_SEQUENCE, "ImagePositionPatient"),
        ];
        put_sequence(o, tags::DIMENSION_INDEX_SEQUENCE, dimensions);
    }

    /// The source series and each instance a frame derives from, once.
    fn referenced_series(&self, frames: &[Frame]) -> InMemDicomObject {
        let source = &self.findings.source;
        let mut seen = std::collections::HashSet::new();
        let instances = frames
            .iter()
            .map(|f| &source.slices[f.z])
            .filter(|s| seen.insert(s.sop_instance_uid.as_str()))
            .map(|s| {
                let mut item = InMemDicomObject::new_empty();
                put_text(&mut item, tags::REFERENCED_SOP_CLASS_UID, VR::UI, &s.sop_class_uid);
                put_text(&mut item, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &s.sop_instance_uid);
                item
            })
            .collect();
        let mut series = InMemDicomObject::new_empty();
        put_text(&mut series, tags::SERIES_INSTANCE_UID, VR::UI, &source.series_uid);
        put_sequence(&mut series, tags::REFERENCED_INSTANCE_SEQUENCE, instances);
        series
    }
}

/// Lung, with its laterality when known. pulmo's zones are thirds of each lung, not lobes, so
/// the region is the lung rather than a lobe it did not segment.
pub fn anatomic_region(side: Option<Side>) -> InMemDicomObject {
    let mut region = lung_code();
    if let Some(side) = side {
        put_sequence(&mut region, tags::ANATOMIC_REGION_MODIFIER_SEQUENCE, vec![laterality_code(side)]);
    }
    region
}

/// The nodule's colour (the same on the summary page), as DICOM's scaled CIELab (PS3.3
/// C.10.7.1.1).
fn display_colour(nodule: &NoduleFinding) -> [u16; 3] {
    srgb_to_dicom_lab(nodule_colour(nodule.id))
}

/// sRGB (D65) to CIELab, scaled as DICOM stores it: L 0..100 and a, b -128..127 onto 0..65535.
fn srgb_to_dicom_lab(rgb: [u8; 3]) -> [u16; 3] {
    let linear = rgb.map(|c| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    });
    let [r, g, b] = linear;
    let xyz = [
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    ];
    let f = xyz.map(|t| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 });
    let (l, a, bb) = (116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2]));
    let scale = |v: f64, lo: f64, hi: f64| ((v.clamp(lo, hi) - lo) / (hi - lo) * 65535.0).round() as u16;
    [scale(l, 0.0, 100.0), scale(a, -128.0, 127.0), scale(bb, -128.0, 127.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cielab_of_white_black_and_red() {
        // a = b = 0 scales to 32896.5; red is L 53.2, a 80.1, b 67.2.
        let near = |got: [u16; 3], want: [i32; 3]| (0..3).all(|i| (i32::from(got[i]) - want[i]).abs() <= 100);
        assert!(near(srgb_to_dicom_lab([255, 255, 255]), [65535, 32896, 32896]), "{:?}", srgb_to_dicom_lab([255, 255, 255]));
        assert!(near(srgb_to_dicom_lab([0, 0, 0]), [0, 32896, 32896]));
        assert!(near(srgb_to_dicom_lab([255, 0, 0]), [34_885, 53_479, 50_169]), "{:?}", srgb_to_dicom_lab([255, 0, 0]));
    }
}
