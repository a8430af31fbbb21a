//! Against a real Orthanc as the PACS: C-FIND of a patient's studies and a study's series,
//! C-MOVE of a series and a study to our own SCP, C-GET into a handler, and the failures.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use pulmo_net::{
    status, NetError, NodePolicy, OutgoingObject, Peer, ReceivedInstance, RetrieveLevel, StoreHandler, StoreResponse,
    StudyQuery,
};

use crate::common::{free_port, init_tracing, test_policy, DirHandler, Scp};
use crate::{PULMO, TIMEOUT};

/// A second destination Orthanc knows, whose store handler refuses all but CT.
const CT_ONLY: &str = "CTONLY";

/// Orthanc with a temporary storage, killed when dropped.
struct Orthanc {
    dir: tempfile::TempDir,
    child: Child,
    http: u16,
    peer: Peer,
}

impl Orthanc {
    /// `None` (after the SKIPPED line) when Orthanc is not installed.
    async fn start(pulmo_port: u16, ct_only_port: u16) -> Option<Orthanc> {
        if Command::new("Orthanc").arg("--version").output().is_err() {
            eprintln!("SKIPPED: Orthanc is not installed (scripts/setup installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (dicom, http) = (free_port(), free_port());
        let config = serde_json::json!({
            "Name": "pulmo-net-test-pacs",
            "StorageDirectory": dir.path().join("db"),
            "IndexDirectory": dir.path().join("db"),
            "DicomAet": "ORTHANC",
            "DicomPort": dicom,
            "HttpPort": http,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomModalities": {
                "pulmo": [PULMO, "127.0.0.1", pulmo_port],
                "ct-only": [CT_ONLY, "127.0.0.1", ct_only_port],
            },
            "Plugins": [],
        });
        let path = dir.path().join("orthanc.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
        let child = Command::new("Orthanc")
            .arg("--verbose")
            .arg(&path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let peer: Peer = format!("ORTHANC@127.0.0.1:{dicom}").parse().unwrap();
        let orthanc = Orthanc { dir, child, http, peer };
        let deadline = Instant::now() + Duration::from_secs(30);
        while pulmo_net::echo(&orthanc.peer, PULMO, Duration::from_secs(2))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "Orthanc did not start: {}", orthanc.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some(orthanc)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("orthanc.log")).unwrap_or_default()
    }

    /// Orthanc's own count of the instances matching `query` (REST /tools/find).
    fn count_instances(&self, query: serde_json::Value) -> usize {
        let body = serde_json::json!({ "Level": "Instance", "Query": query }).to_string();
        let url = format!("http://127.0.0.1:{}/tools/find", self.http);
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST", "--data-binary", &body, &url])
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "POST {url} failed");
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        found.as_array().expect("an array of instance ids").len()
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tiny instance (4x4 pixels) of a study.
struct Slice<'a> {
    patient_id: &'a str,
    study_uid: &'a str,
    study_date: &'a str,
    series_uid: &'a str,
    series_number: i32,
    /// "CT", or "OT" for a Secondary Capture.
    modality: &'a str,
    sop_uid: String,
}

impl Slice<'_> {
    fn object(&self) -> OutgoingObject {
        let class = if self.modality == "CT" {
            uids::CT_IMAGE_STORAGE
        } else {
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE
        };
        let mut o = InMemDicomObject::new_empty();
        let text = [
            (tags::SOP_CLASS_UID, VR::UI, class),
            (tags::SOP_INSTANCE_UID, VR::UI, self.sop_uid.as_str()),
            (tags::STUDY_DATE, VR::DA, self.study_date),
            (tags::STUDY_TIME, VR::TM, "101500"),
            (tags::ACCESSION_NUMBER, VR::SH, "ACC1"),
            (tags::MODALITY, VR::CS, self.modality),
            (tags::STUDY_DESCRIPTION, VR::LO, "CHEST CT"),
            (
                tags::SERIES_DESCRIPTION,
                VR::LO,
                if self.modality == "CT" { "LUNG 1mm" } else { "SUMMARY" },
            ),
            (tags::PATIENT_NAME, VR::PN, "QR^TEST"),
            (tags::PATIENT_ID, VR::LO, self.patient_id),
            (tags::ISSUER_OF_PATIENT_ID, VR::LO, "HOSP-A"),
            (tags::STUDY_INSTANCE_UID, VR::UI, self.study_uid),
            (tags::SERIES_INSTANCE_UID, VR::UI, self.series_uid),
            (tags::STUDY_ID, VR::SH, "1"),
            (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        ];
        for (tag, vr, value) in text {
            o.put_str(tag, vr, value);
        }
        o.put_str(tags::SERIES_NUMBER, VR::IS, self.series_number.to_string());
        o.put_str(tags::INSTANCE_NUMBER, VR::IS, self.sop_uid.rsplit('.').next().unwrap());
        for (tag, value) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, 4),
            (tags::COLUMNS, 4),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
            (tags::HIGH_BIT, 11),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        }
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![1000u16; 16].into()),
        ));
        let ts = TransferSyntaxRegistry.get(uids::EXPLICIT_VR_LITTLE_ENDIAN).unwrap();
        let mut dataset = Vec::new();
        o.write_dataset_with_ts(&mut dataset, ts).unwrap();
        OutgoingObject {
            sop_class_uid: class.into(),
            sop_instance_uid: self.sop_uid.clone(),
            transfer_syntax_uid: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            dataset,
        }
    }
}

/// Stores CT, refuses everything else with 0xA700.
struct CtOnly(Arc<DirHandler>);

impl StoreHandler for CtOnly {
    fn store(&self, req: &ReceivedInstance) -> StoreResponse {
        if req.sop_class_uid == uids::CT_IMAGE_STORAGE {
            self.0.store(req)
        } else {
            StoreResponse::failure(status::OUT_OF_RESOURCES, "CT only")
        }
    }
}

const PATIENT: &str = "QR-PAT-1";
const STUDY_2023: &str = "2.25.310001";
const CT_2023: &str = "2.25.310001.1";
const OT_2023: &str = "2.25.310001.2";
const STUDY_2024: &str = "2.25.310002";
const CT_2024: &str = "2.25.310002.1";
const OTHER_STUDY: &str = "2.25.310003";

/// Patient QR-PAT-1: a 2023 study (3 CT slices + 1 Secondary Capture) and a 2024 study (2 CT
/// slices); patient QR-PAT-2: one CT study of 2023.
fn studies() -> Vec<Slice<'static>> {
    let mut slices = Vec::new();
    let mut add = |patient_id, study_uid, study_date, series_uid: &'static str, series_number, modality, n| {
        for i in 1..=n {
            slices.push(Slice {
                patient_id,
                study_uid,
                study_date,
                series_uid,
                series_number,
                modality,
                sop_uid: format!("{series_uid}.{i}"),
            });
        }
    };
    add(PATIENT, STUDY_2023, "20230115", CT_2023, 2, "CT", 3);
    add(PATIENT, STUDY_2023, "20230115", OT_2023, 900, "OT", 1);
    add(PATIENT, STUDY_2024, "20240220", CT_2024, 2, "CT", 2);
    add("QR-PAT-2", OTHER_STUDY, "20231010", "2.25.310003.1", 1, "CT", 1);
    slices
}

fn received_uids(handler: &DirHandler) -> BTreeSet<String> {
    std::fs::read_dir(&handler.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".dcm").map(str::to_string))
        .collect()
}

fn uids_of(slices: &[Slice], series_uid: Option<&str>, study_uid: &str) -> BTreeSet<String> {
    slices
        .iter()
        .filter(|s| s.study_uid == study_uid && series_uid.is_none_or(|u| s.series_uid == u))
        .map(|s| s.sop_uid.clone())
        .collect()
}

async fn upload(orthanc: &Orthanc, slices: &[Slice<'_>]) {
    let objects: Vec<OutgoingObject> = slices.iter().map(Slice::object).collect();
    let report = pulmo_net::send(&orthanc.peer, PULMO, objects).await.unwrap();
    assert!(report.all_stored(), "{report:?}");
}

fn query(patient_id: &str) -> StudyQuery {
    StudyQuery {
        patient_id: patient_id.into(),
        ..StudyQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_move_and_get_against_orthanc() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(test_policy(), handler.clone()).await;
    let ct_dir = tempfile::tempdir().unwrap();
    let ct_handler = Arc::new(CtOnly(DirHandler::new(ct_dir.path())));
    let ct_policy = NodePolicy {
        ae_titles: vec![CT_ONLY.into()],
        ..test_policy()
    };
    let ct_scp = Scp::start(ct_policy, ct_handler.clone()).await;
    let Some(orthanc) = Orthanc::start(scp.port, ct_scp.port).await else {
        return;
    };
    let slices = studies();
    upload(&orthanc, &slices).await;
    let pacs = &orthanc.peer;

    // The patient's two studies, with what the priors logic needs, and not the other patient's.
    let mut found = pulmo_net::find_studies(pacs, PULMO, &query(PATIENT), TIMEOUT)
        .await
        .unwrap();
    found.sort_by(|a, b| a.study_date.cmp(&b.study_date));
    let uids: Vec<&str> = found.iter().map(|m| m.study_instance_uid.as_str()).collect();
    assert_eq!(uids, [STUDY_2023, STUDY_2024], "{found:?}");
    assert_eq!(found[0].study_date.as_deref(), Some("20230115"));
    assert_eq!(found[1].study_date.as_deref(), Some("20240220"));
    assert_eq!(found[0].study_time.as_deref(), Some("101500"));
    let modalities: BTreeSet<&str> = found[0].modalities_in_study.iter().map(String::as_str).collect();
    assert_eq!(modalities, BTreeSet::from(["CT", "OT"]));
    assert_eq!(found[1].modalities_in_study, ["CT"]);
    assert_eq!(found[0].number_of_study_related_instances, Some(4));
    assert_eq!(found[1].number_of_study_related_instances, Some(2));
    assert_eq!(found[0].patient_id.as_deref(), Some(PATIENT));
    assert_eq!(found[0].study_description.as_deref(), Some("CHEST CT"));
    assert_eq!(found[0].accession_number.as_deref(), Some("ACC1"));
    assert_eq!(found[0].issuer_of_patient_id.as_deref(), Some("HOSP-A"));

    // A date bound (inclusive) leaves out the later study.
    let before = StudyQuery {
        before_date: Some("20231231".into()),
        ..query(PATIENT)
    };
    let early = pulmo_net::find_studies(pacs, PULMO, &before, TIMEOUT).await.unwrap();
    assert_eq!(
        early.iter().map(|m| m.study_instance_uid.as_str()).collect::<Vec<_>>(),
        [STUDY_2023]
    );

    // ModalitiesInStudy: a CT query keeps both studies (the 2023 one also has an OT series);
    // Orthanc matches the key, so MR finds nothing (a PACS that ignores it would return both,
    // with their true ModalitiesInStudy for the caller to filter on).
    let ct = StudyQuery {
        modality: Some("CT".into()),
        ..query(PATIENT)
    };
    assert_eq!(
        pulmo_net::find_studies(pacs, PULMO, &ct, TIMEOUT).await.unwrap().len(),
        2
    );
    let mr = StudyQuery {
        modality: Some("MR".into()),
        ..query(PATIENT)
    };
    assert!(pulmo_net::find_studies(pacs, PULMO, &mr, TIMEOUT)
        .await
        .unwrap()
        .is_empty());

    // Orthanc matches IssuerOfPatientID too: the same ID from another issuer is another patient.
    for (issuer, studies) in [("HOSP-A", 2), ("HOSP-B", 0)] {
        let by_issuer = StudyQuery {
            issuer_of_patient_id: Some(issuer.into()),
            ..query(PATIENT)
        };
        let found = pulmo_net::find_studies(pacs, PULMO, &by_issuer, TIMEOUT).await.unwrap();
        assert_eq!(found.len(), studies, "{issuer}");
    }

    // Nobody by that ID: no match, no error.
    assert!(pulmo_net::find_studies(pacs, PULMO, &query("NOBODY"), TIMEOUT)
        .await
        .unwrap()
        .is_empty());

    // The series of the 2023 study, to choose the CT one.
    let mut series = pulmo_net::find_series(pacs, PULMO, STUDY_2023, TIMEOUT).await.unwrap();
    series.sort_by_key(|s| s.series_number);
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(
        (series[0].series_uid.as_str(), series[0].modality.as_deref()),
        (CT_2023, Some("CT"))
    );
    assert_eq!(series[0].series_number, Some(2));
    assert_eq!(series[0].number_of_series_related_instances, Some(3));
    assert_eq!(series[0].series_description.as_deref(), Some("LUNG 1mm"));
    assert_eq!(
        (series[1].series_uid.as_str(), series[1].modality.as_deref()),
        (OT_2023, Some("OT"))
    );

    // C-MOVE of the CT series to our SCP: exactly its instances arrive.
    let ct_series = RetrieveLevel::Series {
        study_uid: STUDY_2023.into(),
        series_uid: CT_2023.into(),
    };
    let report = pulmo_net::move_to(pacs, PULMO, &ct_series, PULMO, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", orthanc.log()));
    let in_orthanc = orthanc.count_instances(serde_json::json!({ "SeriesInstanceUID": CT_2023 }));
    assert_eq!(in_orthanc, 3);
    assert_eq!(
        (report.completed, report.failed, report.warning, report.status),
        (3, 0, 0, 0),
        "{report:?}"
    );
    assert!(report.is_complete());
    assert_eq!(received_uids(&handler), uids_of(&slices, Some(CT_2023), STUDY_2023));

    // C-MOVE of the whole study: the Secondary Capture comes too.
    let study = RetrieveLevel::Study {
        study_uid: STUDY_2023.into(),
    };
    let report = pulmo_net::move_to(pacs, PULMO, &study, PULMO, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", orthanc.log()));
    let in_orthanc = orthanc.count_instances(serde_json::json!({ "StudyInstanceUID": STUDY_2023 }));
    assert_eq!(in_orthanc, 4);
    assert_eq!(report.completed as usize, in_orthanc, "{report:?}");
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(received_uids(&handler), uids_of(&slices, None, STUDY_2023));
    assert_eq!(handler.stored_count(), 3 + 4);

    // A destination Orthanc does not know: a typed failure naming the status, not worth
    // retrying. The standard's status is 0xA801; Orthanc 1.10 answers 0xC000 (its log says
    // "Unknown modality for AET"), and sends no Error Comment.
    let err = pulmo_net::move_to(pacs, PULMO, &study, "NOWHERE", TIMEOUT)
        .await
        .unwrap_err();
    let NetError::OperationFailed {
        operation,
        status,
        ref report,
        ..
    } = err
    else {
        panic!("{err}");
    };
    assert_eq!(operation, "C-MOVE");
    assert!(matches!(status, 0xA801 | 0xC000), "{err}");
    assert_eq!(report.map(|r| r.completed), Some(0), "{err}");
    assert!(err.to_string().contains(&format!("0x{status:04X}")), "{err}");
    assert!(err.to_string().contains("ORTHANC@127.0.0.1"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(handler.stored_count(), 7, "nothing more arrived");

    // A sub-operation the destination refuses is reported, not swallowed: Orthanc 1.10 stops
    // at the first and answers 0xC000 (a PACS that carries on answers 0xB000 with the failed
    // count: see the scripted tests).
    let result = pulmo_net::move_to(pacs, PULMO, &study, CT_ONLY, TIMEOUT).await;
    match &result {
        Err(NetError::OperationFailed {
            status,
            report: Some(_),
            ..
        }) => assert_eq!(*status, 0xC000),
        Ok(report) => assert!(report.failed >= 1 && !report.is_complete(), "{report:?}"),
        Err(e) => panic!("{e}"),
    }
    assert!(ct_handler.0.stored_count() < 4, "the Secondary Capture was refused");

    // C-GET of the 2024 study: its instances come back on our association, into our handler.
    let get_dir = tempfile::tempdir().unwrap();
    let got = DirHandler::new(get_dir.path());
    let study_2024 = RetrieveLevel::Study {
        study_uid: STUDY_2024.into(),
    };
    let report = pulmo_net::get(pacs, PULMO, &study_2024, &test_policy(), got.clone(), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", orthanc.log()));
    assert_eq!(
        orthanc.count_instances(serde_json::json!({ "StudyInstanceUID": STUDY_2024 })),
        2
    );
    assert_eq!(
        (report.completed, report.failed, report.status),
        (2, 0, 0),
        "{report:?}"
    );
    assert_eq!(received_uids(&got), uids_of(&slices, None, STUDY_2024));
    for instance in got.stored.lock().unwrap().iter() {
        assert_eq!(
            (instance.calling_ae.as_str(), instance.called_ae.as_str()),
            ("ORTHANC", PULMO)
        );
        // Orthanc picked the syntax the instances are stored in from all that we offered.
        assert_eq!(instance.transfer_syntax_uid, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    }

    // C-GET whose handler refuses the Secondary Capture: Orthanc carries on with the CT slices
    // and ends with 0xB000, the refused instance counted as failed (it also appends the Failed
    // SOP Instance UID List to the command set of its responses, which we must get past).
    let refusing = Arc::new(CtOnly(DirHandler::new(get_dir.path())));
    let report = pulmo_net::get(pacs, PULMO, &study, &test_policy(), refusing.clone(), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", orthanc.log()));
    assert_eq!(
        (report.completed, report.failed, report.status),
        (3, 1, 0xB000),
        "{report:?}"
    );
    assert!(!report.is_complete());
    assert_eq!(refusing.0.stored_count(), 3);

    drop(orthanc);
    scp.stop().await;
    ct_scp.stop().await;
}
