//! Stored pixel values of one frame -> Hounsfield units (i16), for every transfer syntax the
//! decoders know; a syntax they cannot decode is an error naming it, never wrong pixels.

use std::path::Path;

use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use crate::{FileError, FramePlane, InstanceHeader};

/// How stored values are laid out, as the header (or the decoder) states it.
#[derive(Debug, Clone, Copy)]
struct Layout {
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
}

/// Writes the HU values of `plane`'s frame into `out` (rows * columns values).
pub(crate) fn frame_to_hu(
    path: &Path,
    header: &InstanceHeader,
    object: &FileDicomObject<InMemDicomObject>,
    plane: &FramePlane,
    out: &mut [i16],
) -> Result<(), FileError> {
    let pixel_error = |reason: String| FileError::PixelData(path.to_owned(), reason);
    if header.samples_per_pixel != 1 {
        return Err(pixel_error(format!("{} samples per pixel; CT must be grayscale", header.samples_per_pixel)));
    }
    let element = object
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| FileError::MissingAttribute(path.to_owned(), "PixelData (7FE0,0010)"))?;
    let layout = Layout {
        bits_allocated: header.bits_allocated,
        bits_stored: header.bits_stored,
        signed: header.pixel_signed,
    };
    let n = out.len();
    match element.value() {
        Value::Primitive(PrimitiveValue::U8(bytes)) => {
            let frame_bytes = n * usize::from(layout.bits_allocated / 8).max(1);
            let start = plane.frame as usize * frame_bytes;
            let frame = bytes.get(start..start + frame_bytes).ok_or_else(|| {
                pixel_error(format!("{} bytes, frame {} needs bytes {start}..{}", bytes.len(), plane.frame, start + frame_bytes))
            })?;
            stored_bytes_to_hu(frame, layout, plane, out).map_err(pixel_error)
        }
        Value::Primitive(PrimitiveValue::U16(words)) => {
            let start = plane.frame as usize * n;
            let frame = words.get(start..start + n).ok_or_else(|| {
                pixel_error(format!("{} values, frame {} needs values {start}..{}", words.len(), plane.frame, start + n))
            })?;
            if layout.bits_allocated != 16 {
                return Err(pixel_error(format!("16-bit words but BitsAllocated {}", layout.bits_allocated)));
            }
            write_hu(frame.iter().map(|&w| u32::from(w)), layout, plane, out);
            Ok(())
        }
        Value::PixelSequence(_) => decode_encapsulated(path, header, object, plane, out),
        _ => Err(pixel_error("PixelData is neither native bytes/words nor encapsulated".into())),
    }
}

fn decode_encapsulated(
    path: &Path,
    header: &InstanceHeader,
    object: &FileDicomObject<InMemDicomObject>,
    plane: &FramePlane,
    out: &mut [i16],
) -> Result<(), FileError> {
    let uid = header.transfer_syntax.clone();
    let undecodable = |reason: String| FileError::Undecodable {
        path: path.to_owned(),
        name: TransferSyntaxRegistry.get(&uid).map_or("unknown".into(), |ts| ts.name().to_string()),
        uid: uid.clone(),
        reason,
    };
    let decoded = object.decode_pixel_data_frame(plane.frame).map_err(|e| undecodable(e.to_string()))?;
    // The decoder states the layout of what it produced (e.g. 8-bit baseline JPEG).
    let layout = Layout {
        bits_allocated: decoded.bits_allocated(),
        bits_stored: decoded.bits_stored(),
        signed: decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed,
    };
    let frame = decoded.frame_data(0).map_err(|e| undecodable(e.to_string()))?;
    stored_bytes_to_hu(frame, layout, plane, out).map_err(undecodable)
}

/// Little-endian stored values -> HU with the frame's rescale.
fn stored_bytes_to_hu(bytes: &[u8], layout: Layout, plane: &FramePlane, out: &mut [i16]) -> Result<(), String> {
    let width = match layout.bits_allocated {
        8 => 1,
        16 => 2,
        b => return Err(format!("BitsAllocated {b} is not supported for CT (8 or 16)")),
    };
    if bytes.len() < out.len() * width {
        return Err(format!("{} bytes, expected {} for {} pixels", bytes.len(), out.len() * width, out.len()));
    }
    match width {
        1 => write_hu(bytes.iter().map(|&b| u32::from(b)), layout, plane, out),
        _ => write_hu(bytes.chunks_exact(2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))), layout, plane, out),
    }
    Ok(())
}

/// Raw stored words -> HU. Bits above BitsStored are masked off (old files put overlays there)
/// and the sign taken from bit BitsStored-1; results saturate at the i16 range.
fn write_hu(raw: impl Iterator<Item = u32>, layout: Layout, plane: &FramePlane, out: &mut [i16]) {
    let bits = u32::from(layout.bits_stored.clamp(1, layout.bits_allocated.max(1)));
    let mask = ((1u64 << bits) - 1) as u32;
    let sign_bit = 1u32 << (bits - 1);
    let signed = layout.signed;
    let stored = move |w: u32| {
        let v = w & mask;
        if signed && v & sign_bit != 0 { v as i32 - (1i32 << bits) } else { v as i32 }
    };
    let saturate = |hu: i32| hu.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    let (slope, intercept) = (plane.slope, plane.intercept);
    if slope == 1.0 && intercept.fract() == 0.0 && intercept.abs() < 1e6 {
        // The common CT case: integer shift, no floating point per voxel.
        let shift = intercept as i32;
        out.iter_mut().zip(raw).for_each(|(o, w)| *o = saturate(stored(w) + shift));
    } else {
        let hu = |v: i32| (f64::from(v) * slope + intercept).round().clamp(-1e6, 1e6) as i32;
        out.iter_mut().zip(raw).for_each(|(o, w)| *o = saturate(hu(stored(w))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(slope: f64, intercept: f64) -> FramePlane {
        FramePlane { frame: 0, position: None, orientation: None, pixel_spacing: None, thickness: None, slope, intercept }
    }

    #[test]
    fn masks_high_bits_and_sign_extends_12_bit_values() {
        let layout = Layout { bits_allocated: 16, bits_stored: 12, signed: true };
        // 0xF800 has overlay junk above bit 11 and a sign bit: stored -2048. 0x7FF is +2047.
        let bytes = [0x00, 0xF8, 0xFF, 0x07, 0x18, 0x04];
        let mut out = [0i16; 3];
        stored_bytes_to_hu(&bytes, layout, &plane(1.0, 0.0), &mut out).unwrap();
        assert_eq!(out, [-2048, 2047, 1048]);
    }

    #[test]
    fn applies_rescale_and_clamps_to_i16() {
        let layout = Layout { bits_allocated: 16, bits_stored: 16, signed: false };
        let bytes = [0x00, 0x00, 0x18, 0x04, 0xFF, 0xFF];
        let mut out = [0i16; 3];
        stored_bytes_to_hu(&bytes, layout, &plane(1.0, -1024.0), &mut out).unwrap();
        assert_eq!(out, [-1024, 24, 32767]);
        stored_bytes_to_hu(&bytes, layout, &plane(0.5, -1024.25), &mut out).unwrap();
        assert_eq!(out, [-1024, -500, 31743]);
    }

    #[test]
    fn short_buffers_are_errors() {
        let layout = Layout { bits_allocated: 16, bits_stored: 16, signed: false };
        let mut out = [0i16; 4];
        assert!(stored_bytes_to_hu(&[0; 7], layout, &plane(1.0, 0.0), &mut out).is_err());
    }
}
