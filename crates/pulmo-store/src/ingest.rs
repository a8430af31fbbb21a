//! Receiving an instance: the durable spool write and the `instances`/`studies` update, in the
//! order that makes a C-STORE acknowledgement safe, with the duplicate/replacement policy.

use rusqlite::{params, OptionalExtension, Transaction};

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
}

impl Store {
    /// Make one received instance durable: write the file (temp, fsync, rename, fsync dir), then
    /// record it and update its study in one SQLite transaction. When this returns `Ok`, the SCP
    /// may send C-STORE-RSP success; on `Err`, it must not (see
    /// [`StoreError::is_out_of_resources`](crate::StoreError::is_out_of_resources)).
    ///
    /// Policy for a known SOP Instance UID (see the crate docs): the same content is a
    /// [`Outcome::Duplicate`] and changes nothing; different content replaces the old file and
    /// row ([`Outcome::Replaced`], newest wins).
    pub fn put_instance(&self, new: &NewInstance<'_>) -> Result<Outcome> {
        let _same_uid = self.lock_sop(new.sop_instance_uid);
        let path = SpoolPath::instance(new.study_uid, new.series_uid, new.sop_instance_uid);
        let path_text = path.to_string();
        let previous = self.read(|tx| find_previous(tx, new.sop_instance_uid))?;
        let same_file = previous.as_ref().is_some_and(|p| p.path == path_text);
        if same_file && self.holds_same_instance(&path, new) {
            return Ok(Outcome::Duplicate);
        }
        self.inner.spool.write_atomically(&path, &new.file)?;
        let outcome = self.write(|tx| record_instance(tx, new, &path_text))?;
        if let Some(prev) = previous.filter(|p| p.path != path_text) {
            self.remove_moved_file(&prev.path);
        }
        tracing::debug!(sop = %new.sop_instance_uid, study = %new.study_uid, ?outcome, "instance stored");
        Ok(outcome)
    }

    /// Whether the stored file at `path` is this instance: the same bytes, or the same data set
    /// by the caller's content test. Comparing with the file costs a read only on resends, where
    /// hashing every received instance would cost every instance. A missing or unreadable file
    /// (deleted by hand) cannot vouch for anything: the resend is then written as a replacement.
    fn holds_same_instance(&self, path: &SpoolPath, new: &NewInstance<'_>) -> bool {
        let Ok(stored) = self.inner.spool.read(path) else { return false };
        let [head, body] = new.file;
        let identical = stored.len() == head.len() + body.len()
            && stored[..head.len()] == *head
            && stored[head.len()..] == *body;
        identical || new.same_content.is_some_and(|same| same(&stored))
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
    tx.prepare_cached("SELECT study_uid, path FROM instances WHERE sop_instance_uid = ?1")
        .and_then(|mut st| {
            st.query_row([sop], |r| {
                Ok(Previous {
                    study_uid: r.get(0)?,
                    path: r.get(1)?,
                })
            })
            .optional()
        })
        .ctx("look up instance")
}

/// The database half of `put_instance`, inside one write transaction. Re-reads the previous row
/// so that the decision is made on the state being committed.
fn record_instance(tx: &Transaction<'_>, new: &NewInstance<'_>, path: &str) -> Result<Outcome> {
    let now = new.received_at;
    match find_previous(tx, new.sop_instance_uid)? {
        Some(prev) => {
            let moved = prev.study_uid != *new.study_uid;
            if moved {
                leave_study(tx, &prev.study_uid, now)?;
            }
            let version = enter_study(tx, new, i64::from(moved))?;
            write_instance_row(tx, new, path, version)?;
            Ok(Outcome::Replaced)
        }
        None => {
            let version = enter_study(tx, new, 1)?;
            write_instance_row(tx, new, path, version)?;
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

fn write_instance_row(tx: &Transaction<'_>, new: &NewInstance<'_>, path: &str, study_version: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO instances (sop_instance_uid, sop_class_uid, study_uid, series_uid,
             patient_id, transfer_syntax, path, size_bytes, received_at,
             study_version, calling_ae, called_ae)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
            new.file_size() as i64,
            new.received_at,
            study_version,
            new.calling_ae,
            new.called_ae,
        ])
    })
    .ctx("write instance row")?;
    Ok(())
}
