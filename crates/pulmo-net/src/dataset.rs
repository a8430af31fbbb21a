//! Just enough data-set reading for the network layer: the SOP Class and Instance UIDs at the
//! head of a received data set, found by a bounds-checked walker that allocates nothing.

use std::io::Read;

use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQUENCE_END: u32 = 0xFFFE_E0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// How much of a deflated data set is inflated to find the UIDs.
const DEFLATED_PREFIX: u64 = 256 * 1024;
/// Nesting beyond this is treated as malformed (protects the stack).
const MAX_DEPTH: usize = 16;

/// The SOP UIDs a data set declares about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SopUids {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
}

pub use pulmo_dicom::valid_uid;

/// Reads the top-level elements up to (0008,0018) and returns the SOP UIDs found there.
pub fn read_sop_uids(bytes: &[u8], ts_uid: &str) -> Result<SopUids, String> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    let big = ts.endianness() == Endianness::Big;
    // dicom-encoding keeps the VR flag private; only these two standard syntaxes are implicit.
    let explicit = !matches!(ts.uid(), "1.2.840.10008.1.2" | "1.2.840.10008.1.20");
    match ts.codec() {
        // Deflated syntaxes compress the whole data set: inflate a bounded prefix.
        Codec::Dataset(Some(adapter)) => {
            let mut prefix = Vec::new();
            adapter
                .adapt_reader(Box::new(bytes))
                .take(DEFLATED_PREFIX)
                .read_to_end(&mut prefix)
                .map_err(|e| format!("cannot inflate data set: {e}"))?;
            Walker::new(&prefix, explicit, big).sop_uids()
        }
        Codec::Dataset(None) => Err(format!("transfer syntax {ts_uid} cannot be read by this build")),
        _ => Walker::new(bytes, explicit, big).sop_uids(),
    }
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
}

impl<'a> Walker<'a> {
    fn new(b: &'a [u8], explicit: bool, big: bool) -> Self {
        Walker {
            b,
            pos: 0,
            explicit,
            big,
        }
    }

    fn sop_uids(mut self) -> Result<SopUids, String> {
        let mut uids = SopUids::default();
        while self.pos < self.b.len() {
            let h = self.header(self.explicit)?;
            if h.tag > SOP_INSTANCE_UID {
                break;
            }
            if h.tag == SOP_CLASS_UID || h.tag == SOP_INSTANCE_UID {
                let text = self.text(h.len)?;
                let slot = if h.tag == SOP_CLASS_UID {
                    &mut uids.sop_class_uid
                } else {
                    &mut uids.sop_instance_uid
                };
                *slot = Some(text);
            } else {
                self.skip_value(&h, 0)?;
            }
        }
        Ok(uids)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at + 2)?;
        Some(if self.big {
            u16::from_be_bytes([s[0], s[1]])
        } else {
            u16::from_le_bytes([s[0], s[1]])
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    /// Element header; items and delimiters (group FFFE) never carry a VR.
    fn header(&mut self, explicit: bool) -> Result<Header, String> {
        let p = self.pos;
        let trunc = || format!("truncated element header at byte {p}");
        let tag =
            (u32::from(self.u16_at(p).ok_or_else(trunc)?) << 16) | u32::from(self.u16_at(p + 2).ok_or_else(trunc)?);
        if !explicit || tag >> 16 == 0xFFFE {
            let len = self.u32_at(p + 4).ok_or_else(trunc)?;
            self.pos = p + 8;
            return Ok(Header { tag, vr: None, len });
        }
        let vr: [u8; 2] = self
            .b
            .get(p + 4..p + 6)
            .ok_or_else(trunc)?
            .try_into()
            .map_err(|_| trunc())?;
        let (len, size) = match &vr {
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV" => {
                (self.u32_at(p + 8).ok_or_else(trunc)?, 12)
            }
            _ => (u32::from(self.u16_at(p + 6).ok_or_else(trunc)?), 8),
        };
        self.pos = p + size;
        Ok(Header { tag, vr: Some(vr), len })
    }

    fn text(&mut self, len: u32) -> Result<String, String> {
        let end = self.pos.checked_add(len as usize).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| format!("value at byte {} overruns the data set", self.pos))?;
        let raw = &self.b[self.pos..end];
        self.pos = end;
        let s = std::str::from_utf8(raw).map_err(|_| "UID value is not text".to_string())?;
        Ok(s.trim_end_matches(['\0', ' ']).trim().to_string())
    }

    fn skip_value(&mut self, h: &Header, depth: usize) -> Result<(), String> {
        if h.len != UNDEFINED {
            let end = self.pos.checked_add(h.len as usize).filter(|e| *e <= self.b.len());
            self.pos = end.ok_or_else(|| format!("value of ({:08X}) overruns the data set", h.tag))?;
            return Ok(());
        }
        // Undefined length: a sequence (an explicit UN of undefined length holds implicit VR).
        let explicit = self.explicit && h.vr.as_ref() != Some(b"UN");
        self.skip_sequence(explicit, depth + 1)
    }

    fn skip_sequence(&mut self, explicit: bool, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("sequences nested too deeply".into());
        }
        loop {
            let h = self.header(explicit)?;
            match h.tag {
                SEQUENCE_END => return Ok(()),
                ITEM if h.len == UNDEFINED => self.skip_item(explicit, depth)?,
                ITEM => self.skip_value(&h, depth)?,
                other => return Err(format!("unexpected ({other:08X}) inside a sequence")),
            }
        }
    }

    fn skip_item(&mut self, explicit: bool, depth: usize) -> Result<(), String> {
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

    const ELE: &str = "1.2.840.10008.1.2.1";
    const ILE: &str = "1.2.840.10008.1.2";

    fn explicit_uids() -> Vec<u8> {
        let mut ds = Vec::new();
        // (0008,0006) SQ undefined length: one undefined-length item with one element, then end.
        ds.extend_from_slice(&[0x08, 0, 0x06, 0, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend_from_slice(&[0x08, 0, 0x00, 0x01, b'S', b'H', 2, 0, b'A', b'B']);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[0x08, 0x00, 0x16, 0x00, b'U', b'I', 4, 0]);
        ds.extend_from_slice(b"1.2\0");
        ds.extend_from_slice(&[0x08, 0x00, 0x18, 0x00, b'U', b'I', 6, 0]);
        ds.extend_from_slice(b"1.2.3\0");
        ds.extend_from_slice(&[0x08, 0x00, 0x20, 0x00, b'D', b'A', 0, 0]);
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
    fn truncation_and_garbage_are_errors_not_panics() {
        let ds = explicit_uids();
        for cut in 0..ds.len() {
            let _ = read_sop_uids(&ds[..cut], ELE);
            let _ = read_sop_uids(&ds[..cut], ILE);
        }
        let junk: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for ts in [ELE, ILE, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"] {
            let _ = read_sop_uids(&junk, ts);
        }
        // Deeply nested undefined-length sequences.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[
                0x08, 0, 0x06, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
        }
        assert!(read_sop_uids(&deep, ILE).is_err());
        assert!(read_sop_uids(&ds, "9.9.9").is_err());
    }
}
