//! DIMSE message reassembly from P-DATA value fragments: command and data fragments are
//! accumulated separately, `is_last` closes each part, and both must use one presentation context.

use dicom_ul::pdu::{PDataValue, PDataValueType};

use crate::dimse::Command;

/// Command sets are a few hundred bytes; anything this large is garbage.
const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Reserve no more than this ahead of a data set on the strength of the previous one.
const MAX_SIZE_HINT: u64 = 64 * 1024 * 1024;

/// One complete DIMSE message.
#[derive(Debug)]
pub struct Message {
    pub presentation_context_id: u8,
    pub command: Command,
    /// `None` when the command says no data set follows.
    pub data: Option<Vec<u8>>,
    /// The data set exceeded the size limit: its bytes were drained, not kept.
    pub oversized: bool,
}

/// Accumulates fragments until a message is complete. A protocol violation is returned
/// as `Err(reason)`; the caller aborts the association.
#[derive(Debug)]
pub struct Assembler {
    max_data_bytes: u64,
    /// Command sets are read with `Command::parse_lenient` (an SCU reading responses).
    lenient: bool,
    context: Option<u8>,
    command_bytes: Vec<u8>,
    /// Set once the command is complete and a data set is expected.
    pending: Option<Command>,
    data: Vec<u8>,
    data_len: u64,
    oversized: bool,
    /// Size of the previous data set: senders send series of alike objects, so reserving this
    /// much up front saves growing (and copying) the buffer fragment by fragment.
    size_hint: usize,
    /// The previous data set's buffer, handed back after storing: reusing it keeps its pages
    /// resident instead of faulting in fresh memory for every instance.
    spare: Vec<u8>,
}

impl Assembler {
    pub fn new(max_data_bytes: u64) -> Self {
        Assembler {
            max_data_bytes,
            lenient: false,
            context: None,
            command_bytes: Vec::new(),
            pending: None,
            data: Vec::new(),
            data_len: 0,
            oversized: false,
            size_hint: 0,
            spare: Vec::new(),
        }
    }

    /// Reads command sets leniently (see `Command::parse_lenient`): for responses to our requests.
    pub fn lenient(mut self) -> Self {
        self.lenient = true;
        self
    }

    /// Gives back a data set buffer this assembler produced, for the next message to fill.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() as u64 <= MAX_SIZE_HINT {
            buffer.clear();
            self.spare = buffer;
        }
    }

    /// True while part of a message has been received.
    pub fn in_progress(&self) -> bool {
        self.context.is_some()
    }

    pub fn push(&mut self, pdv: PDataValue) -> Result<Option<Message>, String> {
        match self.context {
            Some(id) if id != pdv.presentation_context_id => {
                return Err(format!(
                    "fragment on presentation context {} inside a message on context {id}",
                    pdv.presentation_context_id
                ));
            }
            _ => self.context = Some(pdv.presentation_context_id),
        }
        match pdv.value_type {
            PDataValueType::Command => self.push_command(pdv),
            PDataValueType::Data => self.push_data(pdv),
        }
    }

    fn push_command(&mut self, pdv: PDataValue) -> Result<Option<Message>, String> {
        if self.pending.is_some() {
            return Err("command fragment received while the data set was expected".into());
        }
        if self.command_bytes.len() + pdv.data.len() > MAX_COMMAND_BYTES {
            return Err(format!("command set larger than {MAX_COMMAND_BYTES} bytes"));
        }
        self.command_bytes.extend_from_slice(&pdv.data);
        if !pdv.is_last {
            return Ok(None);
        }
        let parse = if self.lenient {
            Command::parse_lenient
        } else {
            Command::parse
        };
        let command =
            parse(&std::mem::take(&mut self.command_bytes)).map_err(|e| format!("malformed command set: {e}"))?;
        if command.has_data_set() {
            self.pending = Some(command);
            return Ok(None);
        }
        Ok(Some(self.finish(command, None)))
    }

    fn push_data(&mut self, pdv: PDataValue) -> Result<Option<Message>, String> {
        let Some(command) = self.pending.take() else {
            return Err("data fragment received before a complete command that announces one".into());
        };
        self.data_len += pdv.data.len() as u64;
        if self.data_len > self.max_data_bytes {
            // Keep reading to the end of the message, but stop keeping the bytes.
            self.oversized = true;
            self.data = Vec::new();
        } else {
            if self.data_len == pdv.data.len() as u64 {
                // The first fragment of this data set.
                self.data = std::mem::take(&mut self.spare);
                self.data.reserve(self.size_hint.max(pdv.data.len()));
            }
            self.data.extend_from_slice(&pdv.data);
        }
        if !pdv.is_last {
            self.pending = Some(command);
            return Ok(None);
        }
        let data = std::mem::take(&mut self.data);
        if !self.oversized {
            self.size_hint = usize::try_from(self.data_len.min(MAX_SIZE_HINT)).unwrap_or(0);
        }
        Ok(Some(self.finish(command, Some(data))))
    }

    fn finish(&mut self, command: Command, data: Option<Vec<u8>>) -> Message {
        let message = Message {
            presentation_context_id: self.context.take().unwrap_or_default(),
            command,
            data,
            oversized: self.oversized,
        };
        self.data_len = 0;
        self.oversized = false;
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse;

    fn pdv(pc: u8, command: bool, last: bool, data: &[u8]) -> PDataValue {
        PDataValue {
            presentation_context_id: pc,
            value_type: if command {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last: last,
            data: data.to_vec(),
        }
    }

    #[test]
    fn command_split_across_fragments_then_data() {
        let cmd = dimse::store_rq(9, "1.2", "1.2.3");
        let mut a = Assembler::new(1 << 20);
        assert!(a.push(pdv(3, true, false, &cmd[..5])).unwrap().is_none());
        assert!(a.push(pdv(3, true, true, &cmd[5..])).unwrap().is_none());
        assert!(a.push(pdv(3, false, false, b"ab")).unwrap().is_none());
        let m = a.push(pdv(3, false, true, b"cd")).unwrap().unwrap();
        assert_eq!(m.presentation_context_id, 3);
        assert_eq!(m.command.message_id(), Some(9));
        assert_eq!(m.data.as_deref(), Some(&b"abcd"[..]));
        assert!(!a.in_progress());
    }

    #[test]
    fn echo_has_no_data_set() {
        let mut a = Assembler::new(10);
        let m = a.push(pdv(1, true, true, &dimse::echo_rq(5))).unwrap().unwrap();
        assert_eq!(m.data, None);
    }

    #[test]
    fn violations_are_errors() {
        let mut a = Assembler::new(10);
        assert!(a.push(pdv(1, false, true, b"xx")).is_err(), "data before command");
        let mut a = Assembler::new(10);
        a.push(pdv(1, true, true, &dimse::store_rq(1, "1.2", "1.2.3"))).unwrap();
        assert!(
            a.push(pdv(3, false, true, b"xx")).is_err(),
            "context switch inside a message"
        );
        let mut a = Assembler::new(10);
        a.push(pdv(1, true, true, &dimse::store_rq(1, "1.2", "1.2.3"))).unwrap();
        assert!(
            a.push(pdv(1, true, true, b"xx")).is_err(),
            "command while data expected"
        );
        let mut a = Assembler::new(10);
        assert!(a.push(pdv(1, true, true, b"garbage!!")).is_err(), "unparseable command");
    }

    #[test]
    fn a_recycled_buffer_carries_the_next_data_set_and_nothing_of_the_last() {
        let mut a = Assembler::new(1 << 20);
        a.push(pdv(1, true, true, &dimse::store_rq(1, "1.2", "1.2.3"))).unwrap();
        a.push(pdv(1, false, false, b"first ")).unwrap();
        let m = a.push(pdv(1, false, true, b"data set")).unwrap().unwrap();
        let buffer = m.data.unwrap();
        assert_eq!(buffer, b"first data set");
        let ptr = buffer.as_ptr();
        a.recycle(buffer);
        a.push(pdv(1, true, true, &dimse::store_rq(2, "1.2", "1.2.4"))).unwrap();
        let m = a.push(pdv(1, false, true, b"second")).unwrap().unwrap();
        let data = m.data.unwrap();
        assert_eq!(data, b"second");
        assert_eq!(data.as_ptr(), ptr, "the recycled allocation is reused");
    }

    #[test]
    fn oversized_data_is_drained_and_flagged() {
        let mut a = Assembler::new(3);
        a.push(pdv(1, true, true, &dimse::store_rq(1, "1.2", "1.2.3"))).unwrap();
        a.push(pdv(1, false, false, b"ab")).unwrap();
        let m = a.push(pdv(1, false, true, b"cd")).unwrap().unwrap();
        assert!(m.oversized);
        assert_eq!(m.data.as_deref(), Some(&b""[..]));
        // The next message is unaffected.
        let m = a.push(pdv(1, true, true, &dimse::echo_rq(2))).unwrap().unwrap();
        assert!(!m.oversized);
    }
}
