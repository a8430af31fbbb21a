//! Secondary Capture Image Storage (PS3.3 A.8.1, SOP Class 1.2.840.10008.5.1.4.1.1.7): one
//! RGB picture, here the summary page, for viewers that show images but read neither SEG nor SR.
//!
//! Modules: Patient, General Study, General Series, General Equipment, SC Equipment, General
//! Image, Image Pixel, SC Image, SOP Common. The picture carries text, so BurnedInAnnotation is
//! YES; it names no patient, so RecognizableVisualFeatures is NO.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{invalid, part10, put_codes, put_text, put_us, Equipment, NewInstance, StudyContext, WriteError};

pub const SECONDARY_CAPTURE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// An 8-bit RGB picture, rows top to bottom, three bytes per pixel.
#[derive(Debug, Clone, Copy)]
pub struct RgbImage<'a> {
    pub width: usize,
    pub height: usize,
    pub rgb: &'a [u8],
}

/// A titled picture in a new series of the study.
#[derive(Debug, Clone)]
pub struct SecondaryCapture<'a> {
    pub study: &'a StudyContext,
    pub instance: &'a NewInstance,
    pub equipment: &'a Equipment,
    pub series_description: &'a str,
    pub image: RgbImage<'a>,
}

impl SecondaryCapture<'_> {
    /// The complete data set (no file meta group).
    pub fn to_dataset(&self) -> Result<InMemDicomObject, WriteError> {
        self.validate()?;
        // General Series: "other", as the picture is no modality's image.
        let mut o = self.instance.start_dataset(SECONDARY_CAPTURE_STORAGE, self.study.is_ascii(), self.study, "OT", self.series_description);
        // Type 2C for a paired organ (the lungs) when no image laterality is sent: empty.
        put_text(&mut o, tags::LATERALITY, VR::CS, "");

        // General Equipment, SC Equipment: made on a workstation.
        self.equipment.put(&mut o);
        put_text(&mut o, tags::CONVERSION_TYPE, VR::CS, "WSD");
        put_text(&mut o, tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER, VR::LO, &self.equipment.manufacturer);
        put_text(&mut o, tags::SECONDARY_CAPTURE_DEVICE_SOFTWARE_VERSIONS, VR::LO, &self.equipment.software_version);

        // General Image, SC Image.
        put_text(&mut o, tags::INSTANCE_NUMBER, VR::IS, &self.instance.instance_number.to_string());
        put_text(&mut o, tags::PATIENT_ORIENTATION, VR::CS, "");
        put_text(&mut o, tags::CONTENT_DATE, VR::DA, &self.instance.content_date);
        put_text(&mut o, tags::CONTENT_TIME, VR::TM, &self.instance.content_time);
        put_codes(&mut o, tags::IMAGE_TYPE, &["DERIVED", "SECONDARY"]);
        put_text(&mut o, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
        put_text(&mut o, tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO");
        put_text(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        put_text(&mut o, tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, &self.instance.content_date);
        put_text(&mut o, tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, &self.instance.content_time);

        // Image Pixel: interleaved RGB.
        let image = &self.image;
        put_us(&mut o, tags::SAMPLES_PER_PIXEL, &[3]);
        put_text(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
        put_us(&mut o, tags::PLANAR_CONFIGURATION, &[0]);
        put_us(&mut o, tags::ROWS, &[image.height as u16]);
        put_us(&mut o, tags::COLUMNS, &[image.width as u16]);
        put_us(&mut o, tags::BITS_ALLOCATED, &[8]);
        put_us(&mut o, tags::BITS_STORED, &[8]);
        put_us(&mut o, tags::HIGH_BIT, &[7]);
        put_us(&mut o, tags::PIXEL_REPRESENTATION, &[0]);
        let mut pixels = image.rgb.to_vec();
        if pixels.len() % 2 == 1 {
            pixels.push(0); // OB values have even length
        }
        o.put(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(pixels)));
        Ok(o)
    }

    /// A Part-10 file in Explicit VR Little Endian with pulmo's file meta group.
    pub fn to_part10(&self) -> Result<Vec<u8>, WriteError> {
        let dataset = self.to_dataset()?;
        part10(SECONDARY_CAPTURE_STORAGE, &self.instance.sop_instance_uid, &dataset)
    }

    fn validate(&self) -> Result<(), WriteError> {
        self.study.check()?;
        self.instance.check(&self.study.study_uid)?;
        self.equipment.check()?;
        let image = &self.image;
        let size = format!("{} x {}", image.width, image.height);
        if image.width == 0 || image.height == 0 || image.width > usize::from(u16::MAX) || image.height > usize::from(u16::MAX) {
            return Err(invalid("image", &size, "each side must be 1 to 65535 pixels"));
        }
        if image.rgb.len() != 3 * image.width * image.height {
            return Err(invalid("image.rgb", &image.rgb.len().to_string(), format!("a {size} RGB image has {} bytes", 3 * image.width * image.height)));
        }
        Ok(())
    }
}
