//! Part-10 files to `OutgoingObject`s: the file meta group is read by pulmo-dicom's tolerant
//! reader (real archives write values dicom-object rejects); the data set bytes are kept as is.

use std::path::Path;

use pulmo_dicom::{FileError, FileMeta};

use pulmo_dicom::valid_uid;
use pulmo_dicom::wire::read_sop_uids;
use crate::scu::OutgoingObject;
use crate::NetError;

impl OutgoingObject {
    /// Reads a Part-10 file (128-byte preamble, "DICM", group 0002, data set).
    pub fn from_part10_file(path: &Path) -> Result<OutgoingObject, NetError> {
        let file_error = |reason: String| NetError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
        Self::from_part10_bytes(&bytes).map_err(file_error)
    }

    /// As `from_part10_file`, from bytes in memory. The SOP UIDs are taken from the data set
    /// itself when readable (the receiver checks them against the command), else from the meta.
    pub fn from_part10_bytes(bytes: &[u8]) -> Result<OutgoingObject, String> {
        let meta = FileMeta::read(Path::new("file"), bytes).map_err(|e| match e {
            FileError::NotDicom(_) => "not a DICOM Part-10 file (no DICM prefix)".to_string(),
            _ => "truncated file meta group".to_string(),
        })?;
        let transfer_syntax_uid = meta.transfer_syntax.ok_or("file meta lacks Transfer Syntax UID")?;
        let dataset = bytes[meta.dataset_offset..].to_vec();
        let own = read_sop_uids(&dataset, &transfer_syntax_uid).unwrap_or_default();
        let sop_class_uid = own.sop_class_uid.or(meta.sop_class_uid).ok_or("no SOP Class UID")?;
        let sop_instance_uid = own
            .sop_instance_uid
            .or(meta.sop_instance_uid)
            .ok_or("no SOP Instance UID")?;
        if ![&sop_class_uid, &sop_instance_uid, &transfer_syntax_uid]
            .iter()
            .all(|u| valid_uid(u))
        {
            return Err("invalid UID in file".into());
        }
        Ok(OutgoingObject {
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
            dataset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_part10_and_truncation_without_panicking() {
        assert!(OutgoingObject::from_part10_bytes(b"hello").is_err());
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 20, 0]);
        b.extend_from_slice(b"1.2.840.10008.1.2.1\0");
        for cut in 0..b.len() {
            let _ = OutgoingObject::from_part10_bytes(&b[..cut]);
        }
        // Meta complete but no UIDs anywhere.
        assert!(OutgoingObject::from_part10_bytes(&b).is_err());
    }
}
