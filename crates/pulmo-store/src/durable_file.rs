//! Creating a file whose bytes are on disk when the call returns: written with O_DIRECT where
//! the file system allows it, else through the page cache, and fsynced either way.
//!
//! Why O_DIRECT: a received instance is written once and read much later (if at all before it
//! leaves the page cache). A buffered write first copies it into freshly allocated page-cache
//! pages, and on virtual machines touching fresh pages is the single largest cost of ingest
//! (measured: ~1.2 ms of system time per 512 KB file, against ~0.15 ms written directly from a
//! reused buffer). The fsync still follows, for the file's size and block map.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// O_DIRECT wants the buffer address, the file offset and the length aligned to the device's
/// logical block size; 4 KiB covers every common device.
const ALIGN: usize = 4096;
/// Bytes per direct write; larger files take several.
const CHUNK: usize = 1 << 20;

thread_local! {
    /// Each writer thread's aligned bounce buffer, reused so that its pages stay resident.
    static BOUNCE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How files get their bytes: directly while the file system accepts it. Starts direct and
/// falls back to buffered for good at the first refusal (tmpfs, some FUSE file systems).
#[derive(Debug)]
pub(crate) struct WriteMode {
    direct: AtomicBool,
}

impl WriteMode {
    pub fn new() -> Self {
        WriteMode { direct: AtomicBool::new(true) }
    }

    #[cfg(test)]
    pub fn buffered() -> Self {
        WriteMode { direct: AtomicBool::new(false) }
    }

    /// Creates `path` (which must not exist) holding the concatenation of `parts`, fsynced.
    pub fn create_synced(&self, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        if self.direct.load(Relaxed) {
            match create_direct(path, parts) {
                Err(e) if is_direct_refused(&e) => {
                    let _ = std::fs::remove_file(path);
                    self.direct.store(false, Relaxed);
                    tracing::info!(dir = %path.parent().unwrap_or(path).display(), "file system refuses O_DIRECT; spool writes go through the page cache");
                }
                written => return written,
            }
        }
        create_buffered(path, parts)
    }
}

fn is_direct_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

fn create_direct(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let direct = rustix::fs::OFlags::DIRECT.bits() as i32;
    let file = OpenOptions::new().write(true).create_new(true).custom_flags(direct).open(path)?;
    BOUNCE.with_borrow_mut(|bounce| write_aligned(&file, parts, bounce))?;
    file.sync_all()
}

/// Copies `parts` through the aligned bounce buffer, one CHUNK per direct write. The last
/// partial block goes through the page cache instead: padding it and truncating afterwards
/// would make the file system read that block back from disk.
fn write_aligned(file: &File, parts: &[&[u8]], bounce: &mut Vec<u8>) -> io::Result<()> {
    if bounce.len() < CHUNK + ALIGN {
        bounce.resize(CHUNK + ALIGN, 0);
    }
    let start = bounce.as_ptr().align_offset(ALIGN);
    let chunk = &mut bounce[start..start + CHUNK];
    let (mut offset, mut filled) = (0u64, 0usize);
    for part in parts {
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let n = rest.len().min(CHUNK - filled);
            chunk[filled..filled + n].copy_from_slice(&rest[..n]);
            (filled, rest) = (filled + n, &rest[n..]);
            if filled == CHUNK {
                file.write_all_at(chunk, offset)?;
                (offset, filled) = (offset + CHUNK as u64, 0);
            }
        }
    }
    let whole = filled / ALIGN * ALIGN;
    if whole > 0 {
        file.write_all_at(&chunk[..whole], offset)?;
    }
    if whole < filled {
        let flags = rustix::fs::fcntl_getfl(file)?;
        rustix::fs::fcntl_setfl(file, flags - rustix::fs::OFlags::DIRECT)?;
        file.write_all_at(&chunk[whole..filled], offset + whole as u64)?;
    }
    Ok(())
}

fn create_buffered(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around the alignment and the chunk, split at awkward places.
    #[test]
    fn both_modes_write_exactly_the_bytes_given() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i * 7 % 251) as u8).collect();
        for (m, mode) in [WriteMode::new(), WriteMode::buffered()].iter().enumerate() {
            for len in [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, CHUNK - 3, CHUNK, CHUNK + 5, 3 * CHUNK + 77] {
                let path = dir.path().join(format!("{m}-{len}"));
                let (head, body) = bytes[..len].split_at(len.min(131));
                mode.create_synced(&path, &[head, body]).unwrap();
                assert!(std::fs::read(&path).unwrap() == bytes[..len], "mode {m}, {len} bytes");
            }
        }
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"keep").unwrap();
        for mode in [WriteMode::new(), WriteMode::buffered()] {
            let err = mode.create_synced(&path, &[b"new"]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
