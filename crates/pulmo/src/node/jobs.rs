//! The job workers: each takes queued jobs (one complete study version each) and runs the
//! profile of the AE title the study was sent to: the nodule analysis (compared with the
//! patient's prior when there is one; findings into the store, their SEG, SR, summary page and
//! key images queued to every destination), the receipt (a Key Object Selection "received by
//! pulmo" queued to every destination), or none.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pulmo_analysis::{Analysis, Pipeline, PriorExam, Progress, Stage};
use pulmo_dicom::write::kos::{DocumentTitle, KeyObjectSelection, ReferencedInstance, KEY_OBJECT_SELECTION_STORAGE as KOS_SOP_CLASS};
use pulmo_dicom::write::sc::SECONDARY_CAPTURE_STORAGE;
use pulmo_dicom::write::seg::SEGMENTATION_STORAGE;
use pulmo_dicom::write::sr::COMPREHENSIVE_3D_SR_STORAGE;
use pulmo_dicom::write::{StudyContext, RECEIPT_SERIES_NUMBER};
use pulmo_dicom::{DicomFile, InstanceHeader, CT_SOP_CLASSES};
use pulmo_store::{ExportObject, InstanceRecord, Job, SpoolPath, Store, Timestamp, Uid};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::blocking;
use super::priors::{find_prior, PriorSource};
use crate::config::Profile;
use crate::outputs::{self, OutputObject};

const IDLE_POLL: Duration = Duration::from_millis(500);

/// What the job runner needs from the configuration.
#[derive(Clone)]
pub struct JobSettings {
    pub destinations: Vec<String>,
    pub profiles: BTreeMap<String, Profile>,
    pub priors: PriorSource,
}

/// One worker: its own models (when a profile analyses), one job at a time.
pub struct Worker {
    pub id: usize,
    /// Locked for a whole analysis; only this worker's jobs use it.
    pub pipeline: Option<Arc<Mutex<Pipeline>>>,
}

pub async fn run(store: Store, settings: JobSettings, worker: Worker, mut stop: watch::Receiver<bool>) {
    loop {
        let job = blocking(&store, |s| s.claim_next_job(Timestamp::now())).await.flatten();
        let delay = match job {
            Some(job) => {
                let settings = settings.clone();
                let (id, pipeline) = (worker.id, worker.pipeline.clone());
                let runtime = Handle::current();
                blocking(&store, move |s| {
                    let outcome = run_job(s, &job, &settings, pipeline.as_deref(), &runtime);
                    match &outcome {
                        Ok(summary) => info!(worker = id, job = %job.id, study = %job.study_uid, version = job.study_version, "{summary}"),
                        Err(e) => warn!(worker = id, job = %job.id, study = %job.study_uid, error = %e, "job failed"),
                    }
                    s.finish_job(job.id, outcome.as_ref().map(|_| ()).map_err(String::as_str), Timestamp::now())
                })
                .await;
                Duration::ZERO
            }
            None => IDLE_POLL,
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}

/// Runs the profile of the AE title this study version was sent to.
fn run_job(store: &Store, job: &Job, settings: &JobSettings, pipeline: Option<&Mutex<Pipeline>>, runtime: &Handle) -> Result<String, String> {
    let instances = store.study_instances(&job.study_uid).map_err(|e| e.to_string())?;
    let called_ae = instances.iter().find(|i| i.study_version == job.study_version).map(|i| i.called_ae.trim().to_string());
    let profile = called_ae.as_deref().and_then(|ae| settings.profiles.get(ae)).copied().unwrap_or(Profile::Receipt);
    match profile {
        Profile::StoreOnly => Ok(format!("stored only (profile store-only for {})", called_ae.unwrap_or_default())),
        Profile::Receipt => receipt(store, job, &instances, &settings.destinations),
        Profile::Analyze => {
            let pipeline = pipeline.ok_or("the analyze profile has no models loaded")?;
            let analysed = analyze(store, job, &instances, pipeline, settings, runtime)?;
            let receipt = receipt(store, job, &instances, &settings.destinations)?;
            Ok(format!("{analysed}; {receipt}"))
        }
    }
}

/// Analyses the study's CT series (the one with the most slices, as received up to this
/// version) against its prior, stores the findings and sends their DICOM objects to every
/// destination; a panic in the analysis fails the job, not the worker.
fn analyze(
    store: &Store,
    job: &Job,
    instances: &[InstanceRecord],
    pipeline: &Mutex<Pipeline>,
    settings: &JobSettings,
    runtime: &Handle,
) -> Result<String, String> {
    let paths: Vec<PathBuf> = instances
        .iter()
        .filter(|i| i.study_version <= job.study_version && CT_SOP_CLASSES.contains(&i.sop_class_uid.as_str()))
        .map(|i| store.spool().absolute(&i.path))
        .collect();
    if paths.is_empty() {
        return Ok("no CT images: nothing to analyse".into());
    }
    // Only new CT makes new findings: a version that brought e.g. our own SEG back is done.
    let new_ct = instances.iter().any(|i| i.study_version == job.study_version && CT_SOP_CLASSES.contains(&i.sop_class_uid.as_str()));
    if !new_ct {
        return Ok("no new CT images in this version: nothing to analyse".into());
    }
    let ct = pulmo_dicom::load_ct_series(&paths).map_err(|e| format!("loading the CT series: {e}"))?;
    let pipeline = pipeline.lock().unwrap_or_else(PoisonError::into_inner);
    let mut current = None;
    let mut log_stage = |p: Progress| log_progress(job, &mut current, p);
    let analysis = catch_unwind(AssertUnwindSafe(|| -> Result<Analysis, String> {
        let lookup = find_prior(store, &settings.priors, &ct, &pipeline, runtime)?;
        let exam = lookup.prior.as_ref().map(|p| PriorExam { ct: &p.ct, findings: &p.findings });
        let mut analysis = pipeline.analyze_with_prior(&ct, exam, &mut log_stage).map_err(|e| format!("analysing series {}: {e}", ct.series_uid))?;
        let findings = &mut analysis.findings;
        findings.notes.extend(lookup.note);
        if let (Some(comparison), Some(prior)) = (findings.prior.as_mut(), lookup.prior) {
            comparison.prior_objects = prior.objects;
        }
        Ok(analysis)
    }))
    .map_err(|_| format!("the analysis of series {} panicked (a bug: please report it)", ct.series_uid))??;
    let f = &analysis.findings;
    store.put_findings(&job.study_uid, job.study_version, f, Timestamp::now()).map_err(|e| e.to_string())?;
    let seed = format!("{}/{}", job.study_uid, job.study_version);
    let objects = outputs::study_objects(f, &ct.volume, &StudyContext::from(&ct.patient_study), &seed).map_err(|e| format!("writing the results: {e}"))?;
    for object in &objects {
        send(store, job, object, &settings.destinations)?;
    }
    let sent = format!(", {} object(s) queued", objects.len());
    let prior = f.prior.as_ref().map_or(" (baseline)".to_string(), |p| format!(" (compared with prior study {})", p.study_uid));
    Ok(format!(
        "series {} of {} slices: {} nodule(s), Lung-RADS {}{prior}{sent}",
        ct.series_uid,
        f.source.dims[0],
        f.nodules.len(),
        f.exam.lung_rads.code()
    ))
}

/// Objects of the kinds pulmo itself sends (a PACS may route them back to it).
fn is_own_output(instance: &InstanceRecord) -> bool {
    [KOS_SOP_CLASS, SEGMENTATION_STORAGE, COMPREHENSIVE_3D_SR_STORAGE, SECONDARY_CAPTURE_STORAGE].contains(&instance.sop_class_uid.as_str())
}

/// Writes an object into the spool, in its study, and queues it to every destination.
fn send(store: &Store, job: &Job, object: &OutputObject, destinations: &[String]) -> Result<(), String> {
    let uid = |s: &str| Uid::parse(s).map_err(|e| e.to_string());
    let path = SpoolPath::instance(&job.study_uid, &uid(&object.series_uid)?, &uid(&object.sop_instance_uid)?);
    store.spool().write_atomically(&path, &[&object.bytes]).map_err(|e| e.to_string())?;
    let export = ExportObject {
        sop_instance_uid: uid(&object.sop_instance_uid)?,
        sop_class_uid: uid(object.sop_class_uid)?,
        path: store.spool().absolute(&path),
    };
    for d in destinations {
        store.queue_exports(&job.study_uid, d, std::slice::from_ref(&export), Timestamp::now()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A log line when a stage starts, and per measured detection at debug level.
fn log_progress(job: &Job, current: &mut Option<Stage>, p: Progress) {
    if *current != Some(p.stage) {
        *current = Some(p.stage);
        info!(job = %job.id, stage = p.stage.name(), "analysis stage");
    } else {
        debug!(job = %job.id, stage = p.stage.name(), done = p.done, total = p.total, "analysis progress");
    }
}

/// Writes the receipt KOS of this study version into the spool and queues it for export.
fn receipt(store: &Store, job: &Job, instances: &[InstanceRecord], destinations: &[String]) -> Result<String, String> {
    // A study that only got pulmo's own kind of object back (e.g. the PACS forwarding our
    // receipt or SEG) needs no new receipt: that would loop.
    let new_images = instances.iter().any(|i| i.study_version == job.study_version && !is_own_output(i));
    if !new_images {
        return Ok("nothing new to acknowledge".into());
    }
    let images: Vec<&InstanceRecord> = instances.iter().filter(|i| !is_own_output(i)).collect();
    let first = store.spool().absolute(&images[0].path);
    let file = DicomFile::open(&first).map_err(|e| e.to_string())?;
    let header = InstanceHeader::read(&file).map_err(|e| e.to_string())?;
    let kos = receipt_document(job, &header, &images)?;
    let object = OutputObject {
        file_name: "receipt.dcm",
        sop_class_uid: KOS_SOP_CLASS,
        bytes: kos.to_part10().map_err(|e| e.to_string())?,
        series_uid: kos.series_uid,
        sop_instance_uid: kos.sop_instance_uid,
    };
    send(store, job, &object, destinations)?;
    Ok(format!("receipt written for {} instance(s), queued to {} destination(s)", images.len(), destinations.len()))
}

fn receipt_document(job: &Job, header: &InstanceHeader, images: &[&InstanceRecord]) -> Result<KeyObjectSelection, String> {
    let (date, time) = Timestamp::now().dicom_date_time();
    Ok(KeyObjectSelection {
        study: StudyContext::from(&header.patient_study),
        // Same study version, same UIDs: a rerun replaces its receipt instead of adding one.
        series_uid: derived_uid(job, "receipt-series"),
        sop_instance_uid: derived_uid(job, "receipt-instance"),
        series_number: RECEIPT_SERIES_NUMBER,
        instance_number: 1,
        content_datetime: (date, time),
        title: DocumentTitle::OfInterest,
        description: Some(format!("Received by pulmo: {} instance(s), study version {}", images.len(), job.study_version)),
        references: images
            .iter()
            .map(|i| ReferencedInstance {
                series_uid: i.series_uid.to_string(),
                sop_class_uid: i.sop_class_uid.to_string(),
                sop_instance_uid: i.sop_instance_uid.to_string(),
            })
            .collect(),
        manufacturer: "pulmo".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Deterministic per study version and object, so a re-run replaces rather than duplicates.
fn derived_uid(job: &Job, label: &str) -> String {
    pulmo_dicom::derived_uid(&format!("{}/{}/{label}", job.study_uid, job.study_version))
}
