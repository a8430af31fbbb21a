//! Reading a data set's top level straight from its encoded bytes, without decoding it: the few
//! attributes a DICOM node files an instance under, plus a bounds check of every element.

use std::io::Read;

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

const SPECIFIC_CHARACTER_SET: u32 = 0x0008_0005;
const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const PATIENT_ID: u32 = 0x0010_0020;
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const SERIES_INSTANCE_UID: u32 = 0x0020_000E;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQUENCE_END: u32 = 0xFFFE_E0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// How much of a deflated data set is inflated to find the SOP UIDs alone.
const DEFLATED_PREFIX: u64 = 256 * 1024;
/// Nesting beyond this is treated as malformed (protects the stack).
const MAX_DEPTH: usize = 16;

/// Why a data set's bytes could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unknown transfer syntax {0}")]
    UnknownTransferSyntax(String),
    #[error("transfer syntax {0} cannot be read by this build")]
    UnsupportedTransferSyntax(String),
    #[error("cannot inflate data set: {0}")]
    Inflate(String),
    #[error("{0}")]
    Malformed(String),
}

/// The SOP UIDs a data set declares about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SopUids {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
}

/// What a node needs to file a received instance: where it belongs and whose it is.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct FilingAttributes {
    pub sop: SopUids,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    /// PHI, decoded with the data set's Specific Character Set.
    pub patient_id: Option<String>,
}

impl std::fmt::Debug for FilingAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilingAttributes")
            .field("sop", &self.sop)
            .field("study_uid", &self.study_uid)
            .field("series_uid", &self.series_uid)
            .finish_non_exhaustive()
    }
}

/// Reads the top-level elements up to (0008,0018) and returns the SOP UIDs found there.
pub fn read_sop_uids(bytes: &[u8], ts_uid: &str) -> Result<SopUids, WireError> {
    let mut uids = SopUids::default();
    let mut collect = |tag, value: &[u8]| {
        match tag {
            SOP_CLASS_UID => uids.sop_class_uid = Some(uid_text(value)?),
            SOP_INSTANCE_UID => uids.sop_instance_uid = Some(uid_text(value)?),
            _ => {}
        }
        Ok(())
    };
    with_walker(bytes, ts_uid, Some(DEFLATED_PREFIX), |w| w.top_level(SOP_INSTANCE_UID, &mut collect))?;
    Ok(uids)
}

/// Walks the whole top level (every element's length checked against the bytes, sequences
/// included) and returns the filing attributes. Values are not decoded, so this costs a pass
/// over the element headers only, however large the pixel data.
pub fn read_filing_attributes(bytes: &[u8], ts_uid: &str) -> Result<FilingAttributes, WireError> {
    let mut out = FilingAttributes::default();
    let mut charset: Option<String> = None;
    let mut patient_id: Option<Vec<u8>> = None;
    let mut collect = |tag, value: &[u8]| {
        match tag {
            SPECIFIC_CHARACTER_SET => charset = Some(String::from_utf8_lossy(value).into_owned()),
            SOP_CLASS_UID => out.sop.sop_class_uid = Some(uid_text(value)?),
            SOP_INSTANCE_UID => out.sop.sop_instance_uid = Some(uid_text(value)?),
            PATIENT_ID => patient_id = Some(value.to_vec()),
            STUDY_INSTANCE_UID => out.study_uid = Some(uid_text(value)?),
            SERIES_INSTANCE_UID => out.series_uid = Some(uid_text(value)?),
            _ => {}
        }
        Ok(())
    };
    with_walker(bytes, ts_uid, None, |w| w.top_level(u32::MAX, &mut collect))?;
    out.patient_id = patient_id.map(|raw| decode_text(&raw, charset.as_deref()));
    Ok(out)
}

/// Runs `walk` over the data set in `ts_uid`; a deflated data set is inflated first (only
/// `deflated_limit` bytes of it when given).
fn with_walker<T>(
    bytes: &[u8],
    ts_uid: &str,
    deflated_limit: Option<u64>,
    walk: impl FnOnce(&mut Walker<'_>) -> Result<T, WireError>,
) -> Result<T, WireError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| WireError::UnknownTransferSyntax(ts_uid.to_string()))?;
    let big = ts.endianness() == Endianness::Big;
    // dicom-encoding keeps the VR flag private; only these two standard syntaxes are implicit.
    let explicit = !matches!(ts.uid(), "1.2.840.10008.1.2" | "1.2.840.10008.1.20");
    match ts.codec() {
        Codec::Dataset(Some(adapter)) => {
            let mut inflated = Vec::new();
            adapter
                .adapt_reader(Box::new(bytes))
                .take(deflated_limit.unwrap_or(u64::MAX))
                .read_to_end(&mut inflated)
                .map_err(|e| WireError::Inflate(e.to_string()))?;
            walk(&mut Walker::new(&inflated, explicit, big, deflated_limit.is_some()))
        }
        Codec::Dataset(None) => Err(WireError::UnsupportedTransferSyntax(ts_uid.to_string())),
        _ => walk(&mut Walker::new(bytes, explicit, big, false)),
    }
}

fn uid_text(raw: &[u8]) -> Result<String, WireError> {
    let s = std::str::from_utf8(raw).map_err(|_| WireError::Malformed("UID value is not text".into()))?;
    Ok(s.trim_end_matches(['\0', ' ']).trim().to_string())
}

/// Text in the data set's character set (first value of Specific Character Set; a code this
/// build does not know, or bytes invalid in it, fall back to lossy UTF-8).
fn decode_text(raw: &[u8], charset: Option<&str>) -> String {
    let code = charset.and_then(|c| c.split('\\').next()).map(str::trim).unwrap_or("");
    let decoded = SpecificCharacterSet::from_code(code).and_then(|cs| cs.decode(raw).ok());
    let text = decoded.unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned());
    text.trim_matches([' ', '\0']).to_string()
}

struct Header {
    tag: u32,
    vr: Option<[u8; 2]>,
    len: u32,
}

struct Walker<'a> {
    b: &'a [u8],
    pos: usize,
    explicit: bool,
    big: bool,
    /// The bytes are a prefix of the data set: running out is the end, not truncation.
    prefix: bool,
}

impl<'a> Walker<'a> {
    fn new(b: &'a [u8], explicit: bool, big: bool, prefix: bool) -> Self {
        Walker { b, pos: 0, explicit, big, prefix }
    }

    /// Visits each top-level element with a defined length up to and including `last_tag`,
    /// skipping (and checking) sequences.
    fn top_level(
        &mut self,
        last_tag: u32,
        visit: &mut impl FnMut(u32, &'a [u8]) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        while self.pos < self.b.len() {
            let h = match self.header(self.explicit) {
                Err(_) if self.prefix => return Ok(()),
                h => h?,
            };
            if h.tag > last_tag {
                break;
            }
            if h.len == UNDEFINED {
                self.skip_value(&h, 0)?;
            } else {
                let value = self.take(&h)?;
                visit(h.tag, value)?;
            }
        }
        Ok(())
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at + 2)?;
        Some(if self.big { u16::from_be_bytes([s[0], s[1]]) } else { u16::from_le_bytes([s[0], s[1]]) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
    }

    /// Element header; items and delimiters (group FFFE) never carry a VR.
    fn header(&mut self, explicit: bool) -> Result<Header, WireError> {
        let p = self.pos;
        let trunc = || WireError::Malformed(format!("truncated element header at byte {p}"));
        let tag = (u32::from(self.u16_at(p).ok_or_else(trunc)?) << 16) | u32::from(self.u16_at(p + 2).ok_or_else(trunc)?);
        if !explicit || tag >> 16 == 0xFFFE {
            let len = self.u32_at(p + 4).ok_or_else(trunc)?;
            self.pos = p + 8;
            return Ok(Header { tag, vr: None, len });
        }
        let vr: [u8; 2] = self.b.get(p + 4..p + 6).ok_or_else(trunc)?.try_into().map_err(|_| trunc())?;
        let (len, size) = match &vr {
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV" => {
                (self.u32_at(p + 8).ok_or_else(trunc)?, 12)
            }
            _ => (u32::from(self.u16_at(p + 6).ok_or_else(trunc)?), 8),
        };
        self.pos = p + size;
        Ok(Header { tag, vr: Some(vr), len })
    }

    /// The value of a defined-length element.
    fn take(&mut self, h: &Header) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(h.len as usize).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| WireError::Malformed(format!("value of ({:08X}) overruns the data set", h.tag)))?;
        let value = &self.b[self.pos..end];
        self.pos = end;
        Ok(value)
    }

    fn skip_value(&mut self, h: &Header, depth: usize) -> Result<(), WireError> {
        if h.len != UNDEFINED {
            return self.take(h).map(|_| ());
        }
        // Undefined length: a sequence (an explicit UN of undefined length holds implicit VR),
        // or encapsulated pixel data, whose fragments are items too.
        let explicit = self.explicit && h.vr.as_ref() != Some(b"UN");
        self.skip_sequence(explicit, depth + 1)
    }

    fn skip_sequence(&mut self, explicit: bool, depth: usize) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::Malformed("sequences nested too deeply".into()));
        }
        loop {
            let h = self.header(explicit)?;
            match h.tag {
                SEQUENCE_END => return Ok(()),
                ITEM if h.len == UNDEFINED => self.skip_item(explicit, depth)?,
                ITEM => self.skip_value(&h, depth)?,
                other => return Err(WireError::Malformed(format!("unexpected ({other:08X}) inside a sequence"))),
            }
        }
    }

    fn skip_item(&mut self, explicit: bool, depth: usize) -> Result<(), WireError> {
        loop {
            let h = self.header(explicit)?;
            if h.tag == ITEM_END {
                return Ok(());
            }
            if h.len == UNDEFINED {
                self.skip_sequence(explicit && h.vr.as_ref() != Some(b"UN"), depth + 1)?;
            } else {
                self.skip_value(&h, depth)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::valid_uid;

    const ELE: &str = "1.2.840.10008.1.2.1";
    const ILE: &str = "1.2.840.10008.1.2";

    fn short(out: &mut Vec<u8>, group: u16, element: u16, vr: &[u8; 2], value: &[u8]) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
    }

    fn explicit_uids() -> Vec<u8> {
        let mut ds = Vec::new();
        short(&mut ds, 0x0008, 0x0005, b"CS", b"ISO_IR 100");
        // (0008,0006) SQ undefined length: one undefined-length item with one element, then end.
        ds.extend_from_slice(&[0x08, 0, 0x06, 0, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        short(&mut ds, 0x0008, 0x0100, b"SH", b"AB");
        ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        short(&mut ds, 0x0008, 0x0016, b"UI", b"1.2\0");
        short(&mut ds, 0x0008, 0x0018, b"UI", b"1.2.3\0");
        short(&mut ds, 0x0008, 0x0020, b"DA", b"");
        ds
    }

    /// The UIDs, then a Latin-1 patient ID, the study and series, and 8 bytes of OW pixel data.
    fn explicit_instance() -> Vec<u8> {
        let mut ds = explicit_uids();
        short(&mut ds, 0x0010, 0x0020, b"LO", b"M\xfcller ");
        short(&mut ds, 0x0020, 0x000D, b"UI", b"1.2.7\0");
        short(&mut ds, 0x0020, 0x000E, b"UI", b"1.2.7.1\0");
        ds.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 8, 0, 0, 0]);
        ds.extend_from_slice(&[1, 0, 2, 0, 3, 0, 4, 0]);
        ds
    }

    #[test]
    fn uid_syntax() {
        assert!(valid_uid("1.2.840.10008.5.1.4.1.1.2"));
        assert!(valid_uid("2.25.0"));
        assert!(!valid_uid(""));
        assert!(!valid_uid("1..2"));
        assert!(!valid_uid("1.02"));
        assert!(!valid_uid("../../etc/passwd"));
        assert!(!valid_uid("1.2.3 "));
        assert!(!valid_uid(&"1.".repeat(40)));
    }

    #[test]
    fn reads_uids_past_a_sequence() {
        let u = read_sop_uids(&explicit_uids(), ELE).unwrap();
        assert_eq!(u.sop_class_uid.as_deref(), Some("1.2"));
        assert_eq!(u.sop_instance_uid.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn reads_filing_attributes_in_the_data_sets_character_set() {
        let a = read_filing_attributes(&explicit_instance(), ELE).unwrap();
        assert_eq!(a.sop.sop_instance_uid.as_deref(), Some("1.2.3"));
        assert_eq!(a.study_uid.as_deref(), Some("1.2.7"));
        assert_eq!(a.series_uid.as_deref(), Some("1.2.7.1"));
        assert_eq!(a.patient_id.as_deref(), Some("Müller"));
        assert!(!format!("{a:?}").contains("ller"), "Debug must not show the patient ID");
    }

    #[test]
    fn a_truncated_value_anywhere_in_the_top_level_is_an_error() {
        let ds = explicit_instance();
        // The SOP UIDs sit before the cut, so the cheap read succeeds; the full walk does not.
        let cut = &ds[..ds.len() - 2];
        assert!(read_sop_uids(cut, ELE).is_ok());
        let err = read_filing_attributes(cut, ELE).unwrap_err();
        assert!(err.to_string().contains("(7FE00010) overruns"), "{err}");
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let ds = explicit_instance();
        for cut in 0..ds.len() {
            let _ = read_sop_uids(&ds[..cut], ELE);
            let _ = read_sop_uids(&ds[..cut], ILE);
            let _ = read_filing_attributes(&ds[..cut], ELE);
            let _ = read_filing_attributes(&ds[..cut], ILE);
        }
        let junk: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for ts in [ELE, ILE, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"] {
            let _ = read_sop_uids(&junk, ts);
            let _ = read_filing_attributes(&junk, ts);
        }
        // Deeply nested undefined-length sequences.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x08, 0, 0x06, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(read_sop_uids(&deep, ILE).is_err());
        assert!(read_filing_attributes(&deep, ILE).is_err());
        assert!(matches!(read_sop_uids(&ds, "9.9.9"), Err(WireError::UnknownTransferSyntax(_))));
    }
}
