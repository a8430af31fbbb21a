//! Reading one DICOM file, tolerant of the file meta group real archives write.
//! We parse group 0002 ourselves (dicom-object rejects e.g. 18-byte AE titles) and hand the
//! rest to dicom-object with the transfer syntax the meta group names.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::uids;
use dicom_object::{FileDicomObject, FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use crate::FileError;

/// A parsed DICOM object and the transfer syntax it was encoded in.
#[derive(Debug, Clone)]
pub struct DicomFile {
    pub path: PathBuf,
    pub transfer_syntax: String,
    /// Wrapped with a rebuilt, valid meta group: the pixel decoders work on file objects.
    pub object: FileDicomObject<InMemDicomObject>,
}

/// The group-0002 values pulmo needs; everything else there is ignored.
#[derive(Debug, Default)]
struct FileMeta {
    transfer_syntax: Option<String>,
}

impl DicomFile {
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let bytes = std::fs::read(path).map_err(|e| FileError::Io(path.to_owned(), e))?;
        Self::from_bytes(path, &bytes)
    }

    /// Parse a whole file already in memory; `path` is used for error messages only.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, FileError> {
        let (ts_uid, dataset) = split_meta(path, bytes)?;
        let ts = TransferSyntaxRegistry
            .get(&ts_uid)
            .ok_or_else(|| FileError::UnknownTransferSyntax(path.to_owned(), ts_uid.clone()))?;
        let dataset = InMemDicomObject::read_dataset_with_ts(dataset, ts)
            .map_err(|e| FileError::Parse(path.to_owned(), e.to_string()))?;
        Self::from_dataset(path, dataset, &ts_uid)
    }

    /// Wraps a dataset (e.g. one received over the network) with a file meta group.
    pub fn from_dataset(path: &Path, dataset: InMemDicomObject, ts_uid: &str) -> Result<Self, FileError> {
        // Placeholders only matter when the dataset lacks its SOP UIDs; `with_meta` copies the
        // dataset's own values over them, and the header check reports them missing.
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(ts_uid)
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("2.25.0");
        let object = dataset
            .with_meta(meta)
            .map_err(|e| FileError::Parse(path.to_owned(), format!("building file meta: {e}")))?;
        Ok(DicomFile { path: path.to_owned(), transfer_syntax: ts_uid.to_string(), object })
    }
}

/// Returns the transfer syntax and the bytes of the dataset after the meta group.
fn split_meta<'a>(path: &Path, bytes: &'a [u8]) -> Result<(String, &'a [u8]), FileError> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        let (meta, end) = parse_meta_group(bytes, 132)
            .ok_or_else(|| FileError::Truncated(path.to_owned(), "file meta group".into()))?;
        let ts = meta
            .transfer_syntax
            .ok_or_else(|| FileError::MissingMeta(path.to_owned(), "TransferSyntaxUID (0002,0010)"))?;
        return Ok((ts, &bytes[end..]));
    }
    // Old ACR-NEMA style files: a bare dataset starting at group 0008, no preamble or meta.
    if bytes.len() >= 8 && bytes[0..2] == [0x08, 0x00] {
        let explicit = bytes[4].is_ascii_uppercase() && bytes[5].is_ascii_uppercase();
        let ts = if explicit { uids::EXPLICIT_VR_LITTLE_ENDIAN } else { uids::IMPLICIT_VR_LITTLE_ENDIAN };
        return Ok((ts.to_string(), bytes));
    }
    Err(FileError::NotDicom(path.to_owned()))
}

/// Walks explicit-VR little-endian group 0002 elements from `pos`; None if they run off the end.
fn parse_meta_group(bytes: &[u8], mut pos: usize) -> Option<(FileMeta, usize)> {
    let mut meta = FileMeta::default();
    while let Some(head) = bytes.get(pos..pos + 8) {
        let group = u16::from_le_bytes([head[0], head[1]]);
        if group != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([head[2], head[3]]);
        let (len, header_len) = match &head[4..6] {
            b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR" | b"OD" | b"OL"
            | b"OV" | b"SV" | b"UV" => {
                let l = bytes.get(pos + 8..pos + 12)?;
                (u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize, 12)
            }
            _ => (u16::from_le_bytes([head[6], head[7]]) as usize, 8),
        };
        let value = bytes.get(pos + header_len..pos + header_len + len)?;
        if element == 0x0010 {
            meta.transfer_syntax = Some(trim_uid(value));
        }
        pos += header_len + len;
    }
    Some((meta, pos))
}

fn trim_uid(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let p = Path::new("x.dcm");
        assert!(matches!(DicomFile::from_bytes(p, b"hello"), Err(FileError::NotDicom(_))));
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 40, 0, b'1']);
        assert!(matches!(DicomFile::from_bytes(p, &b), Err(FileError::Truncated(..))));
        for cut in 0..b.len() {
            let _ = DicomFile::from_bytes(p, &b[..cut]);
        }
    }
}
