//! Shared fixtures for the store's integration tests: a store in a tempdir and instance builders.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pulmo_store::{Backoff, NewInstance, Outcome, Store, StoreConfig, Timestamp, Uid};

pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

pub fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}

pub fn t(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis)
}

pub fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir.join("db").join("pulmo.sqlite"), dir.join("spool"));
    c.export_backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(10),
        max_attempts: 5,
    };
    c.association_log_limit = 3;
    c
}

pub fn open(dir: &Path) -> Store {
    Store::open(config(dir)).unwrap()
}

/// An owned instance; `new()` lends it as the `NewInstance` the store takes.
pub struct Inst {
    pub study: Uid,
    pub series: Uid,
    pub sop: Uid,
    pub class: Uid,
    pub ts: Uid,
    pub bytes: Vec<u8>,
    pub at: Timestamp,
}

impl Inst {
    pub fn new(study: &str, series: &str, sop: &str, bytes: &[u8], at: i64) -> Self {
        Inst {
            study: uid(study),
            series: uid(series),
            sop: uid(sop),
            class: uid(CT),
            ts: uid(EXPLICIT_LE),
            bytes: bytes.to_vec(),
            at: t(at),
        }
    }

    pub fn as_new(&self) -> NewInstance<'_> {
        NewInstance {
            sop_instance_uid: &self.sop,
            sop_class_uid: &self.class,
            study_uid: &self.study,
            series_uid: &self.series,
            patient_id: "PAT-0001",
            transfer_syntax: &self.ts,
            calling_ae: "SCANNER",
            called_ae: "PULMO",
            received_at: self.at,
            file: [&[], &self.bytes],
            same_content: None,
        }
    }

    pub fn put(&self, store: &Store) -> Outcome {
        store.put_instance(&self.as_new()).unwrap()
    }
}

pub fn spool_file(dir: &Path, rel: &str) -> PathBuf {
    dir.join("spool").join(rel)
}
