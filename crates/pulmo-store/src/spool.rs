//! The spool directory of received instances: `<spool>/<study_uid>/<series_uid>/<sop_uid>.dcm`.
//! Owns path construction (only from validated UIDs), crash-safe writes and the free-space check.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::durable_file::WriteMode;
use crate::error::{Result, StoreError};
use crate::uid::Uid;

const EXTENSION: &str = ".dcm";
const TEMP_SUFFIX: &str = ".tmp";

/// The location of one instance relative to the spool root. It is built only from three [`Uid`]s,
/// so it cannot name anything outside the spool; the database stores its text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpoolPath {
    study: Uid,
    series: Uid,
    sop_instance: Uid,
}

impl SpoolPath {
    pub fn instance(study: &Uid, series: &Uid, sop_instance: &Uid) -> Self {
        SpoolPath {
            study: study.clone(),
            series: series.clone(),
            sop_instance: sop_instance.clone(),
        }
    }

    /// Parse the text form `<uid>/<uid>/<uid>.dcm` (as stored in the database), re-validating
    /// every component.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || StoreError::InvalidSpoolPath {
            path: text.chars().take(256).collect(),
        };
        let mut parts = text.split('/');
        let (Some(study), Some(series), Some(file), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let sop = file.strip_suffix(EXTENSION).ok_or_else(bad)?;
        let uid = |s: &str| Uid::parse(s).map_err(|_| bad());
        Ok(SpoolPath {
            study: uid(study)?,
            series: uid(series)?,
            sop_instance: uid(sop)?,
        })
    }

    pub fn study(&self) -> &Uid {
        &self.study
    }

    pub fn series(&self) -> &Uid {
        &self.series
    }

    pub fn sop_instance(&self) -> &Uid {
        &self.sop_instance
    }

    fn file_name(&self) -> String {
        format!("{}{EXTENSION}", self.sop_instance)
    }
}

impl fmt::Display for SpoolPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}{EXTENSION}",
            self.study, self.series, self.sop_instance
        )
    }
}

/// The spool root plus the set of series directories whose entries this process has made durable.
#[derive(Debug)]
pub struct Spool {
    root: PathBuf,
    /// Series directories known to exist with their directory entries fsynced. Checked under the
    /// lock so that no instance is acknowledged in a directory another thread created but has
    /// not yet fsynced into its parent.
    durable_dirs: Mutex<HashSet<(Uid, Uid)>>,
    write_mode: WriteMode,
}

/// Distinguishes temp files of concurrent writers of the same file name.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Spool {
    /// Open (creating if needed) the spool rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| StoreError::io("create spool directory", &root, e))?;
        Ok(Spool {
            root,
            durable_dirs: Mutex::new(HashSet::new()),
            write_mode: WriteMode::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of an instance file.
    pub fn absolute(&self, rel: &SpoolPath) -> PathBuf {
        self.series_dir(rel).join(rel.file_name())
    }

    fn series_dir(&self, rel: &SpoolPath) -> PathBuf {
        self.root.join(rel.study.as_str()).join(rel.series.as_str())
    }

    /// Write the concatenation of `parts` so that after return the file is durable under its
    /// final name, and a crash at any point leaves either the previous file or the new one, never
    /// a torn file: temp file in the same directory, fsync it, rename over the target, fsync the
    /// directory.
    pub fn write_atomically(&self, rel: &SpoolPath, parts: &[&[u8]]) -> Result<()> {
        self.ensure_series_dir(rel)?;
        let dir = self.series_dir(rel);
        let target = dir.join(rel.file_name());
        let temp = dir.join(format!(
            ".{}.{}.{}{TEMP_SUFFIX}",
            rel.file_name(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = self.write_mode.create_synced(&temp, parts) {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io("write temp file", &temp, e));
        }
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io("rename into spool", &target, e));
        }
        sync_dir(&dir)
    }

    /// Read an instance back.
    pub fn read(&self, rel: &SpoolPath) -> Result<Vec<u8>> {
        let path = self.absolute(rel);
        fs::read(&path).map_err(|e| StoreError::io("read spool file", path, e))
    }

    /// Remove an instance file (used after a replacement moved it to another study/series).
    /// A file that is already gone is not an error.
    pub fn remove(&self, rel: &SpoolPath) -> Result<()> {
        let path = self.absolute(rel);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io("remove spool file", path, e))
            }
            _ => Ok(()),
        }
    }

    /// Size of the file on disk, `None` if it does not exist.
    pub fn file_size(&self, rel: &SpoolPath) -> Result<Option<u64>> {
        let path = self.absolute(rel);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("stat spool file", path, e)),
        }
    }

    /// Bytes available to this (unprivileged) process on the spool's file system, so the SCP
    /// can answer "Out of Resources" below a configured floor instead of failing mid-write.
    pub fn free_bytes(&self) -> Result<u64> {
        let st = rustix::fs::statvfs(&self.root)
            .map_err(|e| StoreError::io("statvfs", &self.root, e.into()))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Delete temp files left by writes that a crash interrupted (they were never acknowledged).
    /// Walks the whole spool, so call it once at start-up, before serving. Returns the count.
    pub fn sweep_temp_files(&self) -> Result<usize> {
        let mut removed = 0;
        for study in read_dir(&self.root)? {
            for series in read_dir(&study)? {
                for file in read_dir(&series)? {
                    if is_temp_file(&file) {
                        fs::remove_file(&file)
                            .map_err(|e| StoreError::io("remove temp file", &file, e))?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Create `<study>/<series>` if needed and make both directory entries durable, once per
    /// series per process (a directory left by a previous process may never have been fsynced).
    fn ensure_series_dir(&self, rel: &SpoolPath) -> Result<()> {
        let key = (rel.study.clone(), rel.series.clone());
        let mut known = self.durable_dirs.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(&key) {
            return Ok(());
        }
        let study_dir = self.root.join(rel.study.as_str());
        create_dir(&study_dir)?;
        create_dir(&self.series_dir(rel))?;
        sync_dir(&self.root)?;
        sync_dir(&study_dir)?;
        known.insert(key);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

fn create_dir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(StoreError::io("create spool directory", dir, e))
        }
        _ => Ok(()),
    }
}

/// Entries of a directory that are themselves directories or files; a missing directory is empty.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(StoreError::io("list spool directory", dir, e)),
    };
    entries
        .map(|entry| {
            entry
                .map(|e| e.path())
                .map_err(|e| StoreError::io("list spool directory", dir, e))
        })
        .collect()
}

fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(TEMP_SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    #[test]
    fn path_round_trips_and_rejects_traversal() {
        let p = SpoolPath::instance(&uid("1.2"), &uid("1.2.3"), &uid("1.2.3.4"));
        assert_eq!(p.to_string(), "1.2/1.2.3/1.2.3.4.dcm");
        assert_eq!(SpoolPath::parse(&p.to_string()).unwrap(), p);
        for bad in [
            "../1/1.dcm",
            "1/1/1",
            "1/1/../1.dcm",
            "/1/1/1.dcm",
            "1/1/1/1.dcm",
            "1/1.dcm",
            "",
        ] {
            assert!(SpoolPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_atomically_writes_exact_bytes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let p = SpoolPath::instance(&uid("1.2"), &uid("1.2.3"), &uid("1.2.3.4"));
        spool.write_atomically(&p, &[b"fir", b"st"]).unwrap();
        assert_eq!(
            fs::read(dir.path().join("spool/1.2/1.2.3/1.2.3.4.dcm")).unwrap(),
            b"first"
        );
        spool.write_atomically(&p, &[b"second!"]).unwrap();
        assert_eq!(spool.read(&p).unwrap(), b"second!");
        assert_eq!(spool.file_size(&p).unwrap(), Some(7));
        // Only the final file remains in the series directory.
        assert_eq!(read_dir(&spool.series_dir(&p)).unwrap().len(), 1);
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let p = SpoolPath::instance(&uid("1.2"), &uid("1.2.3"), &uid("1.2.3.4"));
        spool.write_atomically(&p, &[b"x"]).unwrap();
        fs::write(spool.series_dir(&p).join(".1.2.3.5.dcm.99.0.tmp"), b"torn").unwrap();
        assert_eq!(spool.sweep_temp_files().unwrap(), 1);
        assert_eq!(spool.read(&p).unwrap(), b"x");
    }

    #[test]
    fn free_bytes_is_positive() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(spool.free_bytes().unwrap() > 0);
    }
}
