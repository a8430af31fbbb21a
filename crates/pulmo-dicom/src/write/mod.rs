//! Writers for the DICOM objects pulmo emits, built as plain typed values and turned into
//! data sets (dicom-object has no IOD builders). Each validates its input and names the field
//! at fault in a [`WriteError`].

pub mod kos;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

pub use kos::{DocumentTitle, KeyObjectSelection, ReferencedInstance, StudyContext};

/// Explicit VR Little Endian: the transfer syntax every writer here encodes in.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{field} must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is not a valid UID (1-64 chars, digits and dots, no empty or zero-led component)")]
    InvalidUid { field: String, value: String },
    #[error("{field}: {value:?} is not valid: {reason}")]
    InvalidValue { field: String, value: String, reason: String },
    #[error("{field}: SOP instance {uid} is referenced twice")]
    DuplicateReference { field: String, uid: String },
    #[error("encoding the data set failed: {0}")]
    Encode(String),
}

pub use crate::valid_uid;

pub(crate) fn check_uid(field: impl Into<String>, value: &str) -> Result<(), WriteError> {
    if valid_uid(value) {
        Ok(())
    } else {
        Err(WriteError::InvalidUid { field: field.into(), value: value.to_string() })
    }
}

fn invalid(field: &str, value: &str, reason: impl Into<String>) -> WriteError {
    WriteError::InvalidValue { field: field.to_string(), value: value.to_string(), reason: reason.into() }
}

/// Checks a single-valued text value against its VR's rules (length in characters, no
/// backslash or control characters; DA/TM/CS grammar).
pub(crate) fn check_text(field: &str, vr: VR, value: &str) -> Result<(), WriteError> {
    let chars = value.chars().count();
    let max = match vr {
        VR::SH => 16,
        VR::LO => 64,
        VR::CS => 16,
        VR::PN => 64 * 3 + 2,
        VR::UT => usize::MAX,
        _ => usize::MAX,
    };
    if chars > max {
        return Err(invalid(field, value, format!("longer than {max} characters ({})", vr.to_string())));
    }
    let control_ok = |c: char| matches!(vr, VR::UT) && matches!(c, '\r' | '\n' | '\t' | '\x0c');
    if value.chars().any(|c| c.is_control() && !control_ok(c)) {
        return Err(invalid(field, value, "contains control characters"));
    }
    if vr != VR::UT && value.contains('\\') {
        return Err(invalid(field, value, "contains a backslash (value separator)"));
    }
    match vr {
        VR::PN if value.split('=').any(|g| g.chars().count() > 64) => {
            Err(invalid(field, value, "a PN component group is longer than 64 characters"))
        }
        VR::PN if value.split('=').count() > 3 => Err(invalid(field, value, "more than 3 PN component groups")),
        VR::DA if !valid_da(value) => Err(invalid(field, value, "not a date YYYYMMDD")),
        VR::TM if !valid_tm(value) => Err(invalid(field, value, "not a time HH[MM[SS[.F{1,6}]]]")),
        VR::CS if !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_') => {
            Err(invalid(field, value, "CS allows only A-Z, 0-9, space and underscore"))
        }
        _ => Ok(()),
    }
}

fn valid_da(s: &str) -> bool {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let month: u32 = s[4..6].parse().unwrap_or(0);
    let day: u32 = s[6..8].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn valid_tm(s: &str) -> bool {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || !matches!(main.len(), 2 | 4 | 6) {
        return false;
    }
    if let Some(f) = frac {
        if main.len() != 6 || f.is_empty() || f.len() > 6 || !digits(f) {
            return false;
        }
    }
    let part = |i: usize| main.get(i..i + 2).map(|p| p.parse::<u32>().unwrap_or(99));
    part(0).is_some_and(|h| h < 24) && part(2).is_none_or(|m| m < 60) && part(4).is_none_or(|s| s < 61)
}

/// Puts a text element; an empty value is written zero-length (type 2).
pub(crate) fn put_text(o: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    let value = if value.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(value) };
    o.put(DataElement::new(tag, vr, value));
}

pub(crate) fn put_sequence(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// A Code Sequence item (Basic Code Sequence macro).
pub(crate) fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::CODE_VALUE, VR::SH, value);
    put_text(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_text(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}

/// A Part-10 file of `dataset` in Explicit VR Little Endian, with pulmo's file meta group.
pub(crate) fn part10(sop_class_uid: &str, sop_instance_uid: &str, dataset: &InMemDicomObject) -> Result<Vec<u8>, WriteError> {
    let ts = TransferSyntaxRegistry
        .get(EXPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| WriteError::Encode("Explicit VR Little Endian not registered".into()))?;
    let mut bytes = Vec::with_capacity(16 * 1024);
    dataset.write_dataset_with_ts(&mut bytes, ts).map_err(|e| WriteError::Encode(e.to_string()))?;
    Ok(crate::part10_bytes(sop_class_uid, sop_instance_uid, EXPLICIT_VR_LITTLE_ENDIAN, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_syntax() {
        assert!(valid_uid("1.2.840.10008.5.1.4.1.1.88.59"));
        assert!(valid_uid("2.25.0"));
        for bad in ["", "1..2", "1.02", "1.2.", "1.2a", &"1.".repeat(33)] {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    #[test]
    fn text_rules() {
        assert!(check_text("d", VR::DA, "20240131").is_ok());
        assert!(check_text("d", VR::DA, "2024-01-31").is_err());
        assert!(check_text("t", VR::TM, "235959").is_ok());
        assert!(check_text("t", VR::TM, "120000.123").is_ok());
        assert!(check_text("t", VR::TM, "2500").is_err());
        assert!(check_text("s", VR::SH, "12345678901234567").is_err());
        assert!(check_text("s", VR::LO, "a\\b").is_err());
        assert!(check_text("s", VR::CS, "M").is_ok());
        assert!(check_text("s", VR::CS, "m").is_err());
        assert!(check_text("u", VR::UT, "line\r\nline").is_ok());
    }
}
