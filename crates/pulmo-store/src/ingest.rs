//! Receiving an instance: the durable spool write and the `instances`/`studies` update, in the
//! order that makes a C-STORE acknowledgement safe, with the duplicate/replacement policy.

use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use crate::db::Store;
use crate::error::{Result, SqlContext};
use crate::model::{NewInstance, Outcome};
use crate::spool::SpoolPath;
use crate::time::Timestamp;
use crate::uid::Uid;

/// What the database knows about a SOP Instance UID before this put.
struct Previous {
    study_uid: Uid,
    path: String,
    content_key: String,
}

impl Store {
    /// Make one received instance durable: write the file (temp, fsync, rename, fsync dir), then
    /// record it and update its study in one SQLite transaction. When this returns `Ok`, the SCP
    /// may send C-STORE-RSP success; on `Err`, it must not (see
    /// [`StoreError::is_out_of_resources`](crate::StoreError::is_out_of_resources)).
    ///
    /// Policy for a known SOP Instance UID (see the crate docs): identical bytes are a
    /// [`Outcome::Duplicate`] and change nothing; different bytes replace the old file and row
    /// ([`Outcome::Replaced`], newest wins).
    pub fn put_instance(&self, new: &NewInstance<'_>) -> Result<Outcome> {
        let _same_uid = self.lock_sop(new.sop_instance_uid);
        let sha256 = sha256_hex(new.bytes);
        let key = new.content_key.unwrap_or(&sha256);
        let path = SpoolPath::instance(new.study_uid, new.series_uid, new.sop_instance_uid);
        let path_text = path.to_string();
        let previous = self.read(|tx| find_previous(tx, new.sop_instance_uid))?;
        if let Some(prev) = &previous {
            if prev.content_key == key && prev.path == path_text {
                self.restore_if_missing(&path, new.bytes)?;
                return Ok(Outcome::Duplicate);
            }
        }
        self.inner.spool.write_atomically(&path, new.bytes)?;
        let hashes = Hashes { sha256: &sha256, content_key: key };
        let outcome = self.write(|tx| record_instance(tx, new, &path_text, hashes))?;
        if let Some(prev) = previous.filter(|p| p.path != path_text) {
            self.remove_moved_file(&prev.path);
        }
        tracing::debug!(sop = %new.sop_instance_uid, study = %new.study_uid, ?outcome, "instance stored");
        Ok(outcome)
    }

    /// A duplicate whose file has vanished from the spool (deleted by hand) is written again, so
    /// that "Duplicate" still means "this instance is on disk".
    fn restore_if_missing(&self, path: &SpoolPath, bytes: &[u8]) -> Result<()> {
        if self.inner.spool.file_size(path)? != Some(bytes.len() as u64) {
            tracing::warn!(%path, "spool file of a known instance missing or truncated; rewriting");
            self.inner.spool.write_atomically(path, bytes)?;
        }
        Ok(())
    }

    /// After a replacement moved an instance to another study or series, its old file is stale.
    /// The replacement is already committed, so failing to delete is only worth a warning.
    fn remove_moved_file(&self, old_path: &str) {
        let removed = SpoolPath::parse(old_path).and_then(|p| self.inner.spool.remove(&p));
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not remove the replaced instance's old file");
        }
    }
}

fn find_previous(tx: &Transaction<'_>, sop: &Uid) -> Result<Option<Previous>> {
    tx.prepare_cached("SELECT study_uid, path, content_key FROM instances WHERE sop_instance_uid = ?1")
        .and_then(|mut st| {
            st.query_row([sop], |r| {
                Ok(Previous {
                    study_uid: r.get(0)?,
                    path: r.get(1)?,
                    content_key: r.get(2)?,
                })
            })
            .optional()
        })
        .ctx("look up instance")
}

/// The database half of `put_instance`, inside one write transaction. Re-reads the previous row
/// so that the decision is made on the state being committed.
/// The file's SHA-256 (integrity) and the content key (duplicate detection).
#[derive(Clone, Copy)]
struct Hashes<'a> {
    sha256: &'a str,
    content_key: &'a str,
}

fn record_instance(
    tx: &Transaction<'_>,
    new: &NewInstance<'_>,
    path: &str,
    hashes: Hashes<'_>,
) -> Result<Outcome> {
    let now = new.received_at;
    match find_previous(tx, new.sop_instance_uid)? {
        Some(prev) if prev.content_key == hashes.content_key && prev.path == path => Ok(Outcome::Duplicate),
        Some(prev) => {
            let moved = prev.study_uid != *new.study_uid;
            if moved {
                leave_study(tx, &prev.study_uid, now)?;
            }
            let version = enter_study(tx, new, i64::from(moved))?;
            write_instance_row(tx, new, path, hashes, version)?;
            Ok(Outcome::Replaced)
        }
        None => {
            let version = enter_study(tx, new, 1)?;
            write_instance_row(tx, new, path, hashes, version)?;
            Ok(Outcome::Stored)
        }
    }
}

/// Create the study or note new content in it: `last_received_at` moves forward (restarting
/// the quiet time), and a complete study goes back to `receiving` at the next version.
/// Returns the study version the instance belongs to.
fn enter_study(tx: &Transaction<'_>, new: &NewInstance<'_>, added: i64) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO studies (study_uid, patient_id, state, version, first_received_at,
                              last_received_at, instance_count)
         VALUES (?1, ?2, 'receiving', 1, ?3, ?3, ?4)
         ON CONFLICT (study_uid) DO UPDATE SET
             version = version + (state = 'complete'),
             state = 'receiving',
             completed_at = NULL,
             patient_id = excluded.patient_id,
             last_received_at = max(last_received_at, excluded.last_received_at),
             instance_count = instance_count + excluded.instance_count
         RETURNING version",
    )
    .and_then(|mut st| {
        st.query_row(
            params![new.study_uid, new.patient_id, new.received_at, added],
            |r| r.get(0),
        )
    })
    .ctx("update study for new instance")
}

/// A replacement took an instance out of this study: its content changed, like an arrival.
fn leave_study(tx: &Transaction<'_>, study_uid: &Uid, now: Timestamp) -> Result<()> {
    tx.prepare_cached(
        "UPDATE studies SET
             version = version + (state = 'complete'),
             state = 'receiving',
             completed_at = NULL,
             last_received_at = max(last_received_at, ?2),
             instance_count = instance_count - 1
         WHERE study_uid = ?1",
    )
    .and_then(|mut st| st.execute(params![study_uid, now]))
    .ctx("update study left by a replaced instance")?;
    Ok(())
}

fn write_instance_row(
    tx: &Transaction<'_>,
    new: &NewInstance<'_>,
    path: &str,
    hashes: Hashes<'_>,
    study_version: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO instances (sop_instance_uid, sop_class_uid, study_uid, series_uid,
             patient_id, transfer_syntax, path, size_bytes, sha256, content_key, received_at,
             study_version, calling_ae, called_ae)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut st| {
        st.execute(params![
            new.sop_instance_uid,
            new.sop_class_uid,
            new.study_uid,
            new.series_uid,
            new.patient_id,
            new.transfer_syntax,
            path,
            new.bytes.len() as i64,
            hashes.sha256,
            hashes.content_key,
            new.received_at,
            study_version,
            new.calling_ae,
            new.called_ae,
        ])
    })
    .ctx("write instance row")?;
    Ok(())
}

/// SHA-256 (lowercase hex) of the file's bytes. A cryptographic hash rather than a cheap one
/// because "identical content" decides whether a resend may be silently dropped, and because it
/// lets anyone verify a spool file with `sha256sum` (~1 ms per 512 KB instance with SHA-NI).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}"); // writing to a String cannot fail
    }
    hex
}
