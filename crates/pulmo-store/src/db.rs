//! The `Store` handle: opening the database (WAL, synchronous=FULL), migrations, and the
//! connection discipline (one writer connection, one reader connection, each behind a mutex).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Result, SqlContext, StoreError};
use crate::model::Backoff;
use crate::schema;
use crate::spool::Spool;
use crate::uid::Uid;

/// Where the store lives and how it behaves.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub db_path: PathBuf,
    pub spool_dir: PathBuf,
    pub export_backoff: Backoff,
    /// The association log keeps this many most recent associations.
    pub association_log_limit: u32,
    /// How long a connection waits for another process's lock before failing with "busy".
    pub busy_timeout: Duration,
}

impl StoreConfig {
    pub fn new(db_path: impl Into<PathBuf>, spool_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            db_path: db_path.into(),
            spool_dir: spool_dir.into(),
            export_backoff: Backoff::default(),
            association_log_limit: 1000,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// pulmo's durable state. Cheap to clone (an `Arc`), `Send + Sync`; every method blocks on disk
/// I/O, so async callers use `spawn_blocking`.
///
/// Writes go through a single connection behind a mutex (SQLite has one writer at a time anyway,
/// and a mutex is fairer and cheaper than `SQLITE_BUSY` retries); reads use a second connection,
/// so `pulmo status` never waits behind a write and WAL lets it read while a write commits.
/// Spool file writes (the slow, fsync-bound part of `put_instance`) run outside both mutexes.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    pub(crate) spool: Spool,
    pub(crate) config: StoreConfig,
    /// Serialises `put_instance` calls for the same SOP Instance UID (striped by hash), so that
    /// two concurrent sends of one UID cannot interleave their file writes and row updates.
    sop_locks: Vec<Mutex<()>>,
}

const SOP_LOCK_STRIPES: usize = 64;
const STATEMENT_CACHE: usize = 64;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.inner.config.db_path)
            .field("spool", &self.inner.spool.root())
            .finish()
    }
}

impl Store {
    /// Open or create the database and the spool, and migrate the schema. A file that is not a
    /// SQLite database, or one from a newer pulmo, is an error, never a panic or a silent reset.
    pub fn open(config: StoreConfig) -> Result<Store> {
        let spool = Spool::open(&config.spool_dir)?;
        if let Some(parent) = config
            .db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::io("create database directory", parent, e))?;
        }
        let mut writer = connect(&config)?;
        enable_wal(&writer)?;
        schema::migrate(&mut writer)?;
        let reader = connect(&config)?;
        reader
            .pragma_update(None, "query_only", true)
            .ctx("set query_only")?;
        let sop_locks = (0..SOP_LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        let inner = Inner {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            spool,
            config,
            sop_locks,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Run `f` in an immediate write transaction and commit it. An error rolls back.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin write")?;
        let value = f(&tx)?;
        tx.commit().ctx("commit")?;
        Ok(value)
    }

    /// Run `f` in a read transaction on the reader connection (one consistent snapshot).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.inner.reader);
        let tx = conn.transaction().ctx("begin read")?;
        let value = f(&tx)?;
        tx.finish().ctx("end read")?;
        Ok(value)
    }

    pub(crate) fn lock_sop(&self, sop_instance_uid: &Uid) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        sop_instance_uid.hash(&mut h);
        let stripe = (h.finish() % SOP_LOCK_STRIPES as u64) as usize;
        lock(&self.inner.sop_locks[stripe])
    }
}

// The network layer shares one `Store` across tokio tasks and `spawn_blocking` threads.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Store>();
};

/// A panic while holding a connection cannot leave a transaction open (rusqlite's `Transaction`
/// rolls back on drop), so a poisoned mutex still guards a usable connection.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn connect(config: &StoreConfig) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX; // our own mutexes serialise access
    let conn = Connection::open_with_flags(&config.db_path, flags).ctx("open database")?;
    conn.busy_timeout(config.busy_timeout)
        .ctx("set busy_timeout")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // synchronous=FULL: a commit is on disk before it returns, so an acknowledged instance
    // survives power loss, not just a process crash (NORMAL in WAL mode only survives the latter).
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("set synchronous")?;
    conn.pragma_update(None, "foreign_keys", true)
        .ctx("set foreign_keys")?;
    Ok(conn)
}

/// WAL: readers do not block the writer and a commit is one sequential append + fsync.
fn enable_wal(conn: &Connection) -> Result<()> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .ctx("set journal_mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL mode; commits will be slower");
    }
    Ok(())
}
