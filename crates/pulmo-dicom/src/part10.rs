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

/// pulmo's Implementation Class UID (a UUID-derived 2.25 root) and version name, written into
/// the file meta group of every file pulmo writes.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.280528725355516556912126359504982660236";
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("PULMO_", env!("CARGO_PKG_VERSION"));

/// The group-0002 values of a Part-10 file and where its data set starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileMeta {
    pub transfer_syntax: Option<String>,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    /// Byte offset of the data set (just after the meta group).
    pub dataset_offset: usize,
}

impl FileMeta {
    /// Reads the meta group of a whole Part-10 file in memory (tolerant: see the module doc).
    pub fn read(path: &Path, bytes: &[u8]) -> Result<FileMeta, FileError> {
        if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
            return Err(FileError::NotDicom(path.to_owned()));
        }
        parse_meta_group(bytes, 132).ok_or_else(|| FileError::Truncated(path.to_owned(), "file meta group".into()))
    }
}

impl DicomFile {
    /// The decoded content of the data set as one byte stream: every element's tag, VR and
    /// value (sequences walked item by item), group lengths left out. Equal for two
    /// receptions of the same content however each sender encoded it (DCMTK, for one, writes
    /// explicit sequence lengths that other tools leave undefined). Hash it to recognise a
    /// resent instance.
    pub fn canonical_content(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 16);
        write_content(&self.object, &mut out);
        out
    }
}

fn write_content(obj: &InMemDicomObject, out: &mut Vec<u8>) {
    use dicom_core::value::Value;
    use dicom_core::header::Header;
    for element in obj.iter() {
        let tag = element.tag();
        if tag.element() == 0x0000 {
            continue;
        }
        out.extend_from_slice(&tag.group().to_le_bytes());
        out.extend_from_slice(&tag.element().to_le_bytes());
        out.extend_from_slice(&element.vr().to_bytes());
        match element.value() {
            Value::Primitive(v) => {
                let bytes = v.to_bytes();
                out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                out.extend_from_slice(&bytes);
            }
            Value::Sequence(seq) => {
                out.extend_from_slice(&(seq.items().len() as u64).to_le_bytes());
                for item in seq.items() {
                    write_content(item, out);
                    out.extend_from_slice(b"\xFE\xFF\x0D\xE0"); // item delimitation tag
                }
            }
            Value::PixelSequence(seq) => {
                for fragment in seq.fragments() {
                    out.extend_from_slice(&(fragment.len() as u64).to_le_bytes());
                    out.extend_from_slice(fragment);
                }
            }
        }
    }
}

/// A Part-10 file: preamble, "DICM", a meta group naming the SOP instance and transfer
/// syntax, then `dataset` exactly as given (e.g. as received over the network, not re-encoded).
pub fn part10_bytes(sop_class_uid: &str, sop_instance_uid: &str, transfer_syntax: &str, dataset: &[u8]) -> Vec<u8> {
    let mut out = part10_header(sop_class_uid, sop_instance_uid, transfer_syntax);
    out.extend_from_slice(dataset);
    out
}

/// The preamble, "DICM" and file meta group that [`part10_bytes`] puts before the data set, for
/// writers that send the data set on without copying it.
pub fn part10_header(sop_class_uid: &str, sop_instance_uid: &str, transfer_syntax: &str) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    meta_element(&mut group, 0x0001, b"OB", &[0, 1]);
    meta_element(&mut group, 0x0002, b"UI", sop_class_uid.as_bytes());
    meta_element(&mut group, 0x0003, b"UI", sop_instance_uid.as_bytes());
    meta_element(&mut group, 0x0010, b"UI", transfer_syntax.as_bytes());
    meta_element(&mut group, 0x0012, b"UI", IMPLEMENTATION_CLASS_UID.as_bytes());
    meta_element(&mut group, 0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.as_bytes());
    let mut out = Vec::with_capacity(132 + 12 + group.len());
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    meta_element(&mut out, 0x0000, b"UL", &(group.len() as u32).to_le_bytes());
    out.extend_from_slice(&group);
    out
}

/// One explicit-VR little-endian group-0002 element, padded to even length (UI with NUL,
/// text with a space, as PS3.5 requires).
fn meta_element(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], value: &[u8]) {
    let pad = value.len() % 2;
    let len = value.len() + pad;
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    if vr == b"OB" {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
    if pad == 1 {
        out.push(if vr == b"UI" { 0 } else { b' ' });
    }
}

impl DicomFile {
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let bytes = std::fs::read(path).map_err(|e| FileError::Io(path.to_owned(), e))?;
        Self::from_bytes(path, &bytes)
    }

    /// Parse a whole file already in memory; `path` is used for error messages only.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, FileError> {
        let (ts_uid, dataset) = split_meta(path, bytes)?;
        Self::from_dataset_bytes(path, &ts_uid, dataset)
    }

    /// Parses a bare data set in transfer syntax `ts_uid` (as received in a C-STORE);
    /// `path` names it in errors.
    pub fn from_dataset_bytes(path: &Path, ts_uid: &str, dataset: &[u8]) -> Result<Self, FileError> {
        let ts = TransferSyntaxRegistry
            .get(ts_uid)
            .ok_or_else(|| FileError::UnknownTransferSyntax(path.to_owned(), ts_uid.to_string()))?;
        let dataset = InMemDicomObject::read_dataset_with_ts(dataset, ts)
            .map_err(|e| FileError::Parse(path.to_owned(), e.to_string()))?;
        Self::from_dataset(path, dataset, ts_uid)
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
        let meta = FileMeta::read(path, bytes)?;
        let ts = meta
            .transfer_syntax
            .ok_or_else(|| FileError::MissingMeta(path.to_owned(), "TransferSyntaxUID (0002,0010)"))?;
        return Ok((ts, &bytes[meta.dataset_offset..]));
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
fn parse_meta_group(bytes: &[u8], mut pos: usize) -> Option<FileMeta> {
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
        match element {
            0x0002 => meta.sop_class_uid = Some(trim_uid(value)),
            0x0003 => meta.sop_instance_uid = Some(trim_uid(value)),
            0x0010 => meta.transfer_syntax = Some(trim_uid(value)),
            _ => {}
        }
        pos += header_len + len;
    }
    meta.dataset_offset = pos;
    Some(meta)
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

    #[test]
    fn written_meta_group_reads_back() {
        let bytes = part10_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2.1", b"");
        let meta = FileMeta::read(Path::new("x"), &bytes).unwrap();
        assert_eq!(meta.sop_class_uid.as_deref(), Some("1.2.840.10008.5.1.4.1.1.2"));
        assert_eq!(meta.sop_instance_uid.as_deref(), Some("1.2.3.45"));
        assert_eq!(meta.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(meta.dataset_offset, bytes.len());
        // dicom-object, strict about the meta group, accepts ours.
        let meta = dicom_object::FileMetaTable::from_reader(&bytes[128..]).unwrap();
        assert_eq!(meta.media_storage_sop_instance_uid(), "1.2.3.45");
        assert_eq!(meta.implementation_class_uid(), IMPLEMENTATION_CLASS_UID);
    }
}
