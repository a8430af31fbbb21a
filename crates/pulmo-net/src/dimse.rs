//! DIMSE command sets: parsing and writing group 0000 in Implicit VR Little Endian by hand.
//! Commands are small, flat and always this encoding, so a bounds-checked walker beats a parser.

/// Command Field values used here (PS3.7 E.1).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    /// Bit set in every response command field.
    pub const RESPONSE_BIT: u16 = 0x8000;
}

/// Element numbers of group 0000.
pub mod tag {
    pub const GROUP_LENGTH: u16 = 0x0000;
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
    pub const COMMAND_FIELD: u16 = 0x0100;
    pub const MESSAGE_ID: u16 = 0x0110;
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    pub const MOVE_DESTINATION: u16 = 0x0600;
    pub const PRIORITY: u16 = 0x0700;
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    pub const STATUS: u16 = 0x0900;
    pub const ERROR_COMMENT: u16 = 0x0902;
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
    pub const NUMBER_OF_REMAINING_SUBOPERATIONS: u16 = 0x1020;
    pub const NUMBER_OF_COMPLETED_SUBOPERATIONS: u16 = 0x1021;
    pub const NUMBER_OF_FAILED_SUBOPERATIONS: u16 = 0x1022;
    pub const NUMBER_OF_WARNING_SUBOPERATIONS: u16 = 0x1023;
}

/// CommandDataSetType value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;
/// Any other value means a data set follows; DCMTK uses this one.
pub const DATA_SET_PRESENT: u16 = 0x0102;

/// A parsed command set: (element, raw value) pairs of group 0000 in wire order.
#[derive(Debug, Clone, Default)]
pub struct Command {
    elements: Vec<(u16, Vec<u8>)>,
}

impl Command {
    /// Parses an Implicit VR LE group-0000 command set; errors name the offending offset.
    pub fn parse(bytes: &[u8]) -> Result<Command, String> {
        let mut elements = Vec::new();
        let mut pos = 0usize;
        while pos < bytes.len() {
            let head = bytes
                .get(pos..pos + 8)
                .ok_or_else(|| format!("truncated element header at byte {pos}"))?;
            let group = u16::from_le_bytes([head[0], head[1]]);
            let element = u16::from_le_bytes([head[2], head[3]]);
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if group != 0x0000 {
                return Err(format!(
                    "element ({group:04X},{element:04X}) outside the command group at byte {pos}"
                ));
            }
            let value = bytes
                .get(pos + 8..(pos + 8).saturating_add(len))
                .ok_or_else(|| format!("element (0000,{element:04X}) of {len} bytes overruns the command set"))?;
            elements.push((element, value.to_vec()));
            pos += 8 + len;
        }
        Ok(Command { elements })
    }

    /// As `parse`, for what peers answer us: when the command set starts with its Command Group
    /// Length, bytes past that length are ignored. Orthanc 1.10 (through DCMTK) appends a C-GET's
    /// Failed SOP Instance UID List (0008,0058) to the command set of its responses there.
    pub fn parse_lenient(bytes: &[u8]) -> Result<Command, String> {
        let group_end = match bytes.get(..12) {
            Some([0, 0, 0, 0, 4, 0, 0, 0, a, b, c, d]) => {
                12usize.saturating_add(u32::from_le_bytes([*a, *b, *c, *d]) as usize)
            }
            _ => bytes.len(),
        };
        Command::parse(bytes.get(..group_end).unwrap_or(bytes))
    }

    fn raw(&self, element: u16) -> Option<&[u8]> {
        self.elements
            .iter()
            .find(|(e, _)| *e == element)
            .map(|(_, v)| v.as_slice())
    }

    /// An US value; `None` when absent or not exactly two bytes.
    pub fn u16(&self, element: u16) -> Option<u16> {
        match self.raw(element)? {
            [a, b] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    /// A text value (UI, LO, AE) without its padding; `None` when absent, empty or not UTF-8.
    pub fn text(&self, element: u16) -> Option<String> {
        let s = std::str::from_utf8(self.raw(element)?).ok()?;
        let s = s.trim_end_matches(['\0', ' ']).trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    pub fn command_field(&self) -> Option<u16> {
        self.u16(tag::COMMAND_FIELD)
    }

    pub fn message_id(&self) -> Option<u16> {
        self.u16(tag::MESSAGE_ID)
    }

    /// Whether a data set follows. A missing CommandDataSetType is read as "none": a data
    /// fragment arriving anyway is then a protocol error, which aborts the association.
    pub fn has_data_set(&self) -> bool {
        self.u16(tag::COMMAND_DATA_SET_TYPE).is_some_and(|v| v != NO_DATA_SET)
    }
}

/// Builds a command set; elements are sorted and the group length is prepended on `build`.
#[derive(Debug, Default)]
pub struct CommandWriter {
    elements: Vec<(u16, Vec<u8>)>,
}

impl CommandWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn us(mut self, element: u16, value: u16) -> Self {
        self.elements.push((element, value.to_le_bytes().to_vec()));
        self
    }

    /// UI value, padded with NUL to even length.
    pub fn uid(mut self, element: u16, value: &str) -> Self {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        self.elements.push((element, v));
        self
    }

    /// AE value (e.g. Move Destination), padded with a space to even length; the caller has
    /// checked it is a valid AE title.
    pub fn ae(mut self, element: u16, value: &str) -> Self {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        self.elements.push((element, v));
        self
    }

    /// LO value (e.g. Error Comment): no backslash or control characters, at most 64
    /// characters, padded with a space to even length.
    pub fn lo(mut self, element: u16, value: &str) -> Self {
        let mut v: Vec<u8> = value
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '\\')
            .take(64)
            .map(|c| c as u8)
            .collect();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        self.elements.push((element, v));
        self
    }

    pub fn build(mut self) -> Vec<u8> {
        self.elements.sort_by_key(|(e, _)| *e);
        let body_len: usize = self.elements.iter().map(|(_, v)| 8 + v.len()).sum();
        let mut out = Vec::with_capacity(12 + body_len);
        put_element(&mut out, tag::GROUP_LENGTH, &(body_len as u32).to_le_bytes());
        for (e, v) in &self.elements {
            put_element(&mut out, *e, v);
        }
        out
    }
}

fn put_element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

pub fn echo_rq(message_id: u16) -> Vec<u8> {
    CommandWriter::new()
        .uid(tag::AFFECTED_SOP_CLASS_UID, dicom_dictionary_std::uids::VERIFICATION)
        .us(tag::COMMAND_FIELD, field::C_ECHO_RQ)
        .us(tag::MESSAGE_ID, message_id)
        .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .build()
}

pub fn echo_rsp(message_id: u16) -> Vec<u8> {
    CommandWriter::new()
        .uid(tag::AFFECTED_SOP_CLASS_UID, dicom_dictionary_std::uids::VERIFICATION)
        .us(tag::COMMAND_FIELD, field::C_ECHO_RSP)
        .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, message_id)
        .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .us(tag::STATUS, 0x0000)
        .build()
}

pub fn store_rq(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    CommandWriter::new()
        .uid(tag::AFFECTED_SOP_CLASS_UID, sop_class_uid)
        .us(tag::COMMAND_FIELD, field::C_STORE_RQ)
        .us(tag::MESSAGE_ID, message_id)
        .us(tag::PRIORITY, 0x0000)
        .us(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
        .uid(tag::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid)
        .build()
}

/// A C-FIND-RQ, C-MOVE-RQ or C-GET-RQ (`request_field`), medium priority, with an identifier
/// following; a C-MOVE names its destination AE.
pub fn query_rq(request_field: u16, message_id: u16, sop_class_uid: &str, move_destination: Option<&str>) -> Vec<u8> {
    let mut w = CommandWriter::new()
        .uid(tag::AFFECTED_SOP_CLASS_UID, sop_class_uid)
        .us(tag::COMMAND_FIELD, request_field)
        .us(tag::MESSAGE_ID, message_id)
        .us(tag::PRIORITY, 0x0000)
        .us(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT);
    if let Some(ae) = move_destination {
        w = w.ae(tag::MOVE_DESTINATION, ae);
    }
    w.build()
}

/// How a status of a (possibly multi-response) operation is to be taken (PS3.7 C, PS3.4 C.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Success,
    Warning,
    /// More responses follow (0xFF00, and 0xFF01: optional keys not supported).
    Pending,
    Cancel,
    Failure,
}

pub fn status_kind(status: u16) -> StatusKind {
    match status {
        0x0000 => StatusKind::Success,
        0xFF00 | 0xFF01 => StatusKind::Pending,
        0xFE00 => StatusKind::Cancel,
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusKind::Warning,
        _ => StatusKind::Failure,
    }
}

/// What a query/retrieve status means, for messages (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4).
pub fn status_meaning(status: u16) -> &'static str {
    match status {
        0x0000 => "success",
        0xFF00 | 0xFF01 => "pending",
        0xFE00 => "cancelled",
        0xB000 => "sub-operations complete, one or more failures or warnings",
        0xA700 => "out of resources",
        0xA701 => "out of resources: unable to calculate number of matches",
        0xA702 => "out of resources: unable to perform sub-operations",
        0xA801 => "move destination unknown",
        0xA900 => "identifier does not match SOP class",
        0x0122 => "SOP class not supported",
        0x0211 => "unrecognized operation",
        0xC000..=0xCFFF => "unable to process",
        s if status_kind(s) == StatusKind::Warning => "warning",
        _ => "failure",
    }
}

/// A response to `request_field` with `status`; UIDs are echoed when the request had them.
pub struct Response<'a> {
    pub request_field: u16,
    pub message_id: u16,
    pub status: u16,
    pub sop_class_uid: Option<&'a str>,
    pub sop_instance_uid: Option<&'a str>,
    pub comment: Option<&'a str>,
}

impl Response<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = CommandWriter::new()
            .us(tag::COMMAND_FIELD, self.request_field | field::RESPONSE_BIT)
            .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, self.message_id)
            .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
            .us(tag::STATUS, self.status);
        if let Some(uid) = self.sop_class_uid {
            w = w.uid(tag::AFFECTED_SOP_CLASS_UID, uid);
        }
        if let Some(uid) = self.sop_instance_uid {
            w = w.uid(tag::AFFECTED_SOP_INSTANCE_UID, uid);
        }
        // Error Comment only accompanies non-success statuses (PS3.7 C.4).
        if let Some(text) = self.comment.filter(|_| self.status != 0) {
            w = w.lo(tag::ERROR_COMMENT, text);
        }
        w.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_rq_round_trips() {
        let bytes = store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3");
        let c = Command::parse(&bytes).unwrap();
        assert_eq!(c.command_field(), Some(field::C_STORE_RQ));
        assert_eq!(c.message_id(), Some(7));
        assert!(c.has_data_set());
        assert_eq!(c.text(tag::AFFECTED_SOP_INSTANCE_UID).as_deref(), Some("1.2.3"));
        // Group length counts everything after itself.
        assert_eq!(c.u16(tag::GROUP_LENGTH), None);
        let gl = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(gl, bytes.len() - 12);
    }

    #[test]
    fn response_carries_comment_only_on_failure() {
        let r = Response {
            request_field: field::C_STORE_RQ,
            message_id: 3,
            status: 0xA900,
            sop_class_uid: Some("1.2"),
            sop_instance_uid: Some("1.2.3"),
            comment: Some("bad\\thing\n"),
        };
        let c = Command::parse(&r.encode()).unwrap();
        assert_eq!(c.command_field(), Some(field::C_STORE_RSP));
        assert_eq!(c.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(3));
        assert_eq!(c.u16(tag::STATUS), Some(0xA900));
        assert_eq!(c.text(tag::ERROR_COMMENT).as_deref(), Some("badthing"));
        assert!(!c.has_data_set());
        let ok = Response { status: 0, ..r };
        assert_eq!(Command::parse(&ok.encode()).unwrap().text(tag::ERROR_COMMENT), None);
    }

    #[test]
    fn move_rq_names_its_destination() {
        let bytes = query_rq(field::C_MOVE_RQ, 4, "1.2.840.10008.5.1.4.1.2.2.2", Some("PULMO"));
        let c = Command::parse(&bytes).unwrap();
        assert_eq!(c.command_field(), Some(field::C_MOVE_RQ));
        assert_eq!(c.message_id(), Some(4));
        assert!(c.has_data_set());
        assert_eq!(c.text(tag::MOVE_DESTINATION).as_deref(), Some("PULMO"));
        assert_eq!(bytes.len() % 2, 0);
        let find = Command::parse(&query_rq(field::C_FIND_RQ, 1, "1.2", None)).unwrap();
        assert_eq!(find.text(tag::MOVE_DESTINATION), None);
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(status_kind(0xFF01), StatusKind::Pending);
        assert_eq!(status_kind(0xB000), StatusKind::Warning);
        assert_eq!(status_kind(0xFE00), StatusKind::Cancel);
        assert_eq!(status_kind(0xA801), StatusKind::Failure);
        assert_eq!(status_kind(0xC123), StatusKind::Failure);
        assert_eq!(status_meaning(0xA801), "move destination unknown");
        assert_eq!(status_meaning(0xC123), "unable to process");
    }

    #[test]
    fn lenient_parsing_ignores_what_follows_the_command_group() {
        let mut bytes = echo_rq(2);
        // (0008,0058) UI "1.2" after the group, as Orthanc sends in a C-GET-RSP.
        bytes.extend_from_slice(&[0x08, 0, 0x58, 0, 4, 0, 0, 0, b'1', b'.', b'2', 0]);
        assert!(Command::parse(&bytes).is_err(), "the SCP stays strict");
        let c = Command::parse_lenient(&bytes).unwrap();
        assert_eq!(c.message_id(), Some(2));
        // Without a group length, or with one past the end, nothing is skipped.
        assert!(Command::parse_lenient(&bytes[12..]).is_err());
        let mut long = bytes.clone();
        long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Command::parse_lenient(&long).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Command::parse(&[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(Command::parse(&[8, 0, 0x16, 0, 2, 0, 0, 0, b'1', 0]).is_err());
        let good = echo_rq(1);
        for cut in 0..good.len() {
            let _ = Command::parse(&good[..cut]);
            let _ = Command::parse_lenient(&good[..cut]);
        }
    }
}
