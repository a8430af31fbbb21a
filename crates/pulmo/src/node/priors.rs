//! A study's prior: the patient's most recent earlier CT study with pulmo's findings on it,
//! held here, or found on the PACS (C-FIND) and retrieved (C-MOVE or C-GET) when configured.
//! The prior's findings are pulmo's stored ones, else those of pulmo's SR in the prior study
//! (which a study-level retrieval brings along), else a new analysis of the prior.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pulmo_analysis::Pipeline;
use pulmo_dicom::write::seg::SEGMENTATION_STORAGE;
use pulmo_dicom::write::sr::COMPREHENSIVE_3D_SR_STORAGE;
use pulmo_dicom::report::{read_prior_report, PriorReport, ReportError};
use pulmo_dicom::{CtSeries, DicomFile, InstanceHeader, PatientStudy, CT_SOP_CLASSES};
use pulmo_findings::{PriorFindings, PriorObject};
use pulmo_net::{NodePolicy, Peer, RetrieveLevel, StudyQuery};
use pulmo_store::{Store, Timestamp, Uid};
use tokio::runtime::Handle;
use tracing::{debug, info, warn};

use super::Ingest;
use crate::config::{Config, PatientMatch, Retrieve};

/// Where priors come from, as the job workers need it.
#[derive(Clone)]
pub struct PriorSource {
    pub enabled: bool,
    pub match_on: PatientMatch,
    pub pacs: Option<Pacs>,
}

/// The PACS asked for priors that are not held here.
#[derive(Clone)]
pub struct Pacs {
    pub peer: Peer,
    pub calling_ae: String,
    pub retrieve: Retrieve,
    pub retrieve_ae: String,
    pub timeout: Duration,
    /// C-GET stores what arrives through the node's own ingest, under `retrieve_ae`.
    pub ingest: Arc<Ingest>,
    pub node: Arc<NodePolicy>,
}

impl PriorSource {
    pub fn from_config(config: &Config, ingest: Arc<Ingest>) -> PriorSource {
        let p = &config.priors;
        let pacs = p.query.as_deref().and_then(|name| config.destination(name)).map(|d| Pacs {
            peer: d.peer(),
            calling_ae: config.export.calling_ae.clone(),
            retrieve: p.retrieve,
            retrieve_ae: p.retrieve_ae.clone(),
            timeout: config.prior_timeout(),
            ingest,
            node: Arc::new(config.node.clone()),
        });
        PriorSource { enabled: p.enabled, match_on: p.match_on, pacs }
    }
}

/// The prior exam: its CT, pulmo's findings on it, and pulmo's SR and SEG of it (for the new
/// SR's references).
pub struct Prior {
    pub ct: CtSeries,
    pub findings: PriorFindings,
    pub objects: Vec<PriorObject>,
}

/// What looking for a prior gave: the prior, and a note for the findings when the lack of one
/// is worth a reader's attention (a retrieval that failed).
pub struct Lookup {
    pub prior: Option<Prior>,
    pub note: Option<String>,
}

impl Lookup {
    fn none(note: Option<String>) -> Lookup {
        Lookup { prior: None, note }
    }
}

/// Finds `current`'s prior: held here first, else on the PACS. Runs on a blocking thread;
/// `runtime` drives the network calls. A prior without findings is analysed now with
/// `pipeline` and its findings stored.
pub fn find_prior(store: &Store, source: &PriorSource, current: &CtSeries, pipeline: &Pipeline, runtime: &Handle) -> Result<Lookup, String> {
    let patient = &current.patient_study;
    let (Some(_), Some(date)) = (&patient.patient_id, &patient.study_date) else {
        return Ok(Lookup::none(Some("no prior looked for: the study has no Patient ID or Study Date".into())));
    };
    if !source.enabled {
        return Ok(Lookup::none(None));
    }
    if let Some(held) = held_prior(store, source.match_on, patient, None)? {
        return Ok(usable(load(store, held, pipeline)));
    }
    let Some(pacs) = &source.pacs else { return Ok(Lookup::none(None)) };
    let study_uid = match runtime.block_on(retrieve(pacs, source.match_on, patient, date)) {
        Ok(Some(uid)) => uid,
        Ok(None) => return Ok(Lookup::none(None)),
        Err(reason) => return Ok(Lookup::none(Some(format!("analysed as a baseline: the prior could not be retrieved ({reason})")))),
    };
    match held_prior(store, source.match_on, patient, Some(&study_uid))? {
        Some(held) => Ok(usable(load(store, held, pipeline))),
        None => Ok(Lookup::none(Some(format!("analysed as a baseline: prior study {study_uid} was retrieved but holds no usable CT")))),
    }
}

/// A prior that cannot be loaded or analysed leaves a baseline that says why.
fn usable(loaded: Result<Prior, String>) -> Lookup {
    match loaded {
        Ok(prior) => Lookup { prior: Some(prior), note: None },
        Err(reason) => Lookup::none(Some(format!("analysed as a baseline: the prior could not be used ({reason})"))),
    }
}

/// A prior held in the spool: its study, the CT files of it and the SRs in it.
struct Held {
    study_uid: Uid,
    study_version: i64,
    ct_paths: Vec<PathBuf>,
    report_paths: Vec<PathBuf>,
}

/// The patient's most recent study here dated before the current one that has CT images
/// (only `only`, when given).
fn held_prior(store: &Store, match_on: PatientMatch, current: &PatientStudy, only: Option<&str>) -> Result<Option<Held>, String> {
    let (Some(patient_id), Some(date)) = (&current.patient_id, &current.study_date) else { return Ok(None) };
    let this = Uid::from_dicom(&current.study_uid).map_err(|e| e.to_string())?;
    let mut best: Option<(String, Held)> = None;
    for study in store.patient_studies(patient_id, &this).map_err(|e| e.to_string())? {
        if only.is_some_and(|uid| uid != study.study_uid.as_str()) {
            continue;
        }
        let instances = store.study_instances(&study.study_uid).map_err(|e| e.to_string())?;
        let paths = |keep: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
            instances.iter().filter(|i| keep(i.sop_class_uid.as_str())).map(|i| store.spool().absolute(&i.path)).collect()
        };
        let ct_paths = paths(&|class| CT_SOP_CLASSES.contains(&class));
        let report_paths = paths(&|class| class == COMPREHENSIVE_3D_SR_STORAGE);
        let Some(header) = ct_paths.first().and_then(|p| header(p)) else { continue };
        let same_issuer = match_on == PatientMatch::PatientId || header.issuer_of_patient_id == current.issuer_of_patient_id;
        let Some(then) = header.study_date.filter(|d| d < date && same_issuer) else { continue };
        if best.as_ref().is_none_or(|(b, _)| then > *b) {
            best = Some((then, Held { study_uid: study.study_uid, study_version: study.version, ct_paths, report_paths }));
        }
    }
    Ok(best.map(|(_, held)| held))
}

fn header(path: &std::path::Path) -> Option<PatientStudy> {
    let file = DicomFile::open(path).ok()?;
    InstanceHeader::read(&file).ok().map(|h| h.patient_study)
}

/// Loads the held prior's CT and finds (or makes) its findings.
fn load(store: &Store, held: Held, pipeline: &Pipeline) -> Result<Prior, String> {
    let ct = pulmo_dicom::load_ct_series(&held.ct_paths).map_err(|e| format!("loading prior study {}: {e}", held.study_uid))?;
    let stored = store.study_findings(&held.study_uid).map_err(|e| e.to_string())?;
    if let Some(s) = stored.into_iter().rev().find(|s| s.findings.source.series_uid == ct.series_uid) {
        let objects = prior_objects(store, &held.study_uid)?;
        return Ok(Prior { findings: PriorFindings::from(&s.findings), ct, objects });
    }
    if let Some(report) = latest_report(&held.report_paths, &ct) {
        info!(study = %held.study_uid, "the prior's findings are read from pulmo's report of it");
        return Ok(Prior { ct, findings: report.findings, objects: report.objects });
    }
    info!(study = %held.study_uid, "analysing the prior study first");
    let findings = pipeline.analyze(&ct, &mut |_| {}).map_err(|e| format!("analysing prior study {}: {e}", held.study_uid))?.findings;
    store.put_findings(&held.study_uid, held.study_version, &findings, Timestamp::now()).map_err(|e| e.to_string())?;
    let objects = prior_objects(store, &held.study_uid)?;
    Ok(Prior { findings: PriorFindings::from(&findings), ct, objects })
}

/// The most recently written of pulmo's reports on `ct` among `paths`. Other systems' SRs are
/// passed over; one of pulmo's that cannot be read is logged and passed over too, so the prior
/// is analysed again rather than compared with half a report.
fn latest_report(paths: &[PathBuf], ct: &CtSeries) -> Option<PriorReport> {
    let source = ct.source_series();
    let mut latest: Option<PriorReport> = None;
    for path in paths {
        let file = match DicomFile::open(path) {
            Ok(file) => file,
            Err(e) => {
                warn!(error = %e, "an SR of the prior cannot be read");
                continue;
            }
        };
        match read_prior_report(&file, &source) {
            Ok(report) if latest.as_ref().is_none_or(|l| report.written > l.written) => latest = Some(report),
            Ok(_) => {}
            Err(ReportError::NotPulmoReport { .. }) => debug!(path = %path.display(), "an SR of the prior that is not pulmo's"),
            Err(e) => warn!(error = %e, "pulmo's report of the prior cannot be read; the prior is analysed instead"),
        }
    }
    latest
}

/// pulmo's SR and SEG of the prior, as queued for export (once, whatever the destinations).
fn prior_objects(store: &Store, study_uid: &Uid) -> Result<Vec<PriorObject>, String> {
    let mut objects: Vec<PriorObject> = Vec::new();
    for export in store.study_exports(study_uid).map_err(|e| e.to_string())? {
        let class = export.object.sop_class_uid.as_str();
        let series = export.object.path.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned());
        let (Some(series_uid), true) = (series, [COMPREHENSIVE_3D_SR_STORAGE, SEGMENTATION_STORAGE].contains(&class)) else { continue };
        let object = PriorObject {
            study_uid: study_uid.to_string(),
            series_uid,
            sop_class_uid: class.to_string(),
            sop_instance_uid: export.object.sop_instance_uid.to_string(),
        };
        if !objects.contains(&object) {
            objects.push(object);
        }
    }
    Ok(objects)
}

/// Asks the PACS for the patient's CT studies before `date`, retrieves the most recent one and
/// returns its UID; `None` when the PACS has none. Bounded by the PACS's timeout as a whole.
async fn retrieve(pacs: &Pacs, match_on: PatientMatch, current: &PatientStudy, date: &str) -> Result<Option<String>, String> {
    let work = async {
        let query = StudyQuery {
            patient_id: current.patient_id.clone().unwrap_or_default(),
            issuer_of_patient_id: (match_on == PatientMatch::PatientIdAndIssuer).then(|| current.issuer_of_patient_id.clone()).flatten(),
            modality: Some("CT".into()),
            before_date: pulmo_clinical::dates::add_days(date, -1),
        };
        let studies = pulmo_net::find_studies(&pacs.peer, &pacs.calling_ae, &query, pacs.timeout).await.map_err(|e| format!("C-FIND: {e}"))?;
        let latest = studies
            .into_iter()
            .filter(|s| s.study_instance_uid != current.study_uid)
            .filter(|s| s.modalities_in_study.is_empty() || s.modalities_in_study.iter().any(|m| m == "CT"))
            .filter(|s| s.study_date.as_deref().is_some_and(|d| d < date))
            .max_by(|a, b| (&a.study_date, &a.study_time).cmp(&(&b.study_date, &b.study_time)));
        let Some(study) = latest else { return Ok(None) };
        info!(study = %study.study_instance_uid, retrieve = ?pacs.retrieve, "retrieving the prior study from the PACS");
        let what = RetrieveLevel::Study { study_uid: study.study_instance_uid.clone() };
        let report = match pacs.retrieve {
            Retrieve::CMove => pulmo_net::move_to(&pacs.peer, &pacs.calling_ae, &what, &pacs.retrieve_ae, pacs.timeout).await,
            Retrieve::CGet => {
                let handler: Arc<dyn pulmo_net::StoreHandler> = pacs.ingest.clone();
                pulmo_net::get(&pacs.peer, &pacs.retrieve_ae, &what, &pacs.node, handler, pacs.timeout).await
            }
        }
        .map_err(|e| format!("retrieving study {}: {e}", study.study_instance_uid))?;
        if report.completed == 0 {
            return Err(format!("retrieving study {}: nothing arrived (status {:#06x}, {} failed)", study.study_instance_uid, report.status, report.failed));
        }
        Ok(Some(study.study_instance_uid))
    };
    tokio::time::timeout(pacs.timeout, work).await.map_err(|_| format!("no answer within {:?}", pacs.timeout))?
}
