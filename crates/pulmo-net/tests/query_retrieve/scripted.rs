//! Against a scripted SCP that answers one C-FIND/C-MOVE with exactly the PDUs a test gives:
//! warnings with failed sub-operations, failures, aborts, fragments and malformed responses.

use std::time::Duration;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{Pdu, ServerAssociationOptions};
use pulmo_net::dimse::{field, tag, CommandWriter, DATA_SET_PRESENT, NO_DATA_SET};
use pulmo_net::{NetError, Peer, RetrieveLevel, RetrieveReport, StudyMatch, StudyQuery};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::{free_port, init_tracing};
use crate::PULMO;

/// Short: every script ends the operation, so nothing should ever wait this long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the PDUs to send, given the presentation context id and transfer syntax agreed.
type Script = Box<dyn FnOnce(u8, &str) -> Vec<Pdu> + Send>;

/// Accepts one association as FAKE (FIND and MOVE), reads the request's command and
/// identifier, sends the script, then answers a release if one comes.
async fn scripted_scp(script: Script) -> (Peer, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut assoc = ServerAssociationOptions::new()
            .accept_any()
            .ae_title("FAKE")
            .with_abstract_syntax(uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND)
            .with_abstract_syntax(uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE)
            .with_transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .with_transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN)
            .establish_async(socket)
            .await
            .unwrap();
        let pc = assoc.presentation_contexts()[0].clone();
        loop {
            match assoc.receive().await.unwrap() {
                Pdu::PData { data } if data.iter().any(|v| v.value_type == PDataValueType::Data && v.is_last) => break,
                Pdu::PData { .. } => {}
                other => panic!("unexpected {other:?} before the request's identifier"),
            }
        }
        for pdu in script(pc.id, pc.transfer_syntax.trim_end_matches('\0')) {
            assoc.send(&pdu).await.unwrap();
        }
        if let Ok(Pdu::ReleaseRQ) = assoc.receive().await {
            let _ = assoc.send(&Pdu::ReleaseRP).await;
        }
    });
    (format!("FAKE@127.0.0.1:{port}").parse().unwrap(), task)
}

fn pdv(pc: u8, command: bool, is_last: bool, data: &[u8]) -> PDataValue {
    PDataValue {
        presentation_context_id: pc,
        value_type: if command {
            PDataValueType::Command
        } else {
            PDataValueType::Data
        },
        is_last,
        data: data.to_vec(),
    }
}

fn pdata(values: Vec<PDataValue>) -> Pdu {
    Pdu::PData { data: values }
}

/// A response command to message 1 (`response_field`), with `status` and the extra US elements.
fn rsp(response_field: u16, status: u16, with_data: bool, extra: &[(u16, u16)]) -> Vec<u8> {
    let mut w = CommandWriter::new()
        .uid(
            tag::AFFECTED_SOP_CLASS_UID,
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
        )
        .us(tag::COMMAND_FIELD, response_field)
        .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, 1)
        .us(
            tag::COMMAND_DATA_SET_TYPE,
            if with_data { DATA_SET_PRESENT } else { NO_DATA_SET },
        )
        .us(tag::STATUS, status);
    for (element, value) in extra {
        w = w.us(*element, *value);
    }
    w.build()
}

fn counts(remaining: Option<u16>, completed: u16, failed: u16, warning: u16) -> Vec<(u16, u16)> {
    let mut v = vec![
        (tag::NUMBER_OF_COMPLETED_SUBOPERATIONS, completed),
        (tag::NUMBER_OF_FAILED_SUBOPERATIONS, failed),
        (tag::NUMBER_OF_WARNING_SUBOPERATIONS, warning),
    ];
    v.extend(remaining.map(|r| (tag::NUMBER_OF_REMAINING_SUBOPERATIONS, r)));
    v
}

/// A C-FIND match in `ts`.
fn identifier(ts: &str, values: &[(Tag, VR, String)]) -> Vec<u8> {
    let mut o = InMemDicomObject::new_empty();
    o.put_str(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY");
    for (tag, vr, value) in values {
        o.put_str(*tag, *vr, value.as_str());
    }
    let mut out = Vec::new();
    o.write_dataset_with_ts(&mut out, TransferSyntaxRegistry.get(ts).unwrap())
        .unwrap();
    out
}

fn study(uid: &str, date: &str) -> Vec<(Tag, VR, String)> {
    vec![
        (tags::STUDY_INSTANCE_UID, VR::UI, uid.into()),
        (tags::STUDY_DATE, VR::DA, date.into()),
        (tags::MODALITIES_IN_STUDY, VR::CS, "CT\\SR".into()),
        (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, "12".into()),
    ]
}

fn query() -> StudyQuery {
    StudyQuery {
        patient_id: "P-1".into(),
        ..StudyQuery::default()
    }
}

async fn find(script: Script) -> Result<Vec<StudyMatch>, NetError> {
    let (peer, task) = scripted_scp(script).await;
    let result = pulmo_net::find_studies(&peer, PULMO, &query(), TIMEOUT).await;
    let _ = task.await;
    result
}

async fn move_study(script: Script) -> Result<RetrieveReport, NetError> {
    let (peer, task) = scripted_scp(script).await;
    let what = RetrieveLevel::Study {
        study_uid: "1.2.3".into(),
    };
    let result = pulmo_net::move_to(&peer, PULMO, &what, PULMO, TIMEOUT).await;
    let _ = task.await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_split_across_pdus_and_packed_into_one() {
    init_tracing();
    let found = find(Box::new(|pc, ts| {
        let first = identifier(ts, &study("1.2.3", "20230115"));
        let second = identifier(ts, &study("1.2.4", "20240220"));
        let (a, b) = first.split_at(first.len() / 2);
        vec![
            // The first match: command, then its identifier in two PDUs.
            pdata(vec![pdv(pc, true, true, &rsp(field::C_FIND_RSP, 0xFF00, true, &[]))]),
            pdata(vec![pdv(pc, false, false, a)]),
            pdata(vec![pdv(pc, false, true, b)]),
            // The second match and the final response packed into one PDU.
            pdata(vec![
                pdv(pc, true, true, &rsp(field::C_FIND_RSP, 0xFF01, true, &[])),
                pdv(pc, false, true, &second),
                pdv(pc, true, true, &rsp(field::C_FIND_RSP, 0x0000, false, &[])),
            ]),
        ]
    }))
    .await
    .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].study_instance_uid, "1.2.3");
    assert_eq!(found[0].study_date.as_deref(), Some("20230115"));
    assert_eq!(found[0].modalities_in_study, ["CT", "SR"]);
    assert_eq!(found[0].number_of_study_related_instances, Some(12));
    assert_eq!(found[1].study_instance_uid, "1.2.4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_warning_reports_the_failed_sub_operations() {
    init_tracing();
    let report = move_study(Box::new(|pc, _| {
        vec![
            pdata(vec![
                pdv(
                    pc,
                    true,
                    true,
                    &rsp(field::C_MOVE_RSP, 0xFF00, false, &counts(Some(2), 1, 0, 0)),
                ),
                pdv(
                    pc,
                    true,
                    true,
                    &rsp(field::C_MOVE_RSP, 0xFF00, false, &counts(Some(1), 1, 1, 0)),
                ),
            ]),
            pdata(vec![pdv(
                pc,
                true,
                true,
                &rsp(field::C_MOVE_RSP, 0xB000, false, &counts(None, 2, 1, 0)),
            )]),
        ]
    }))
    .await
    .unwrap();
    assert_eq!(
        report,
        RetrieveReport {
            completed: 2,
            failed: 1,
            warning: 0,
            status: 0xB000
        }
    );
    assert!(!report.is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_failure_keeps_the_counts_so_far() {
    init_tracing();
    let err = move_study(Box::new(|pc, _| {
        vec![
            pdata(vec![pdv(
                pc,
                true,
                true,
                &rsp(field::C_MOVE_RSP, 0xFF00, false, &counts(Some(3), 1, 0, 0)),
            )]),
            // The final response without counts: those of the last pending response stand.
            pdata(vec![pdv(pc, true, true, &rsp(field::C_MOVE_RSP, 0xA702, false, &[]))]),
        ]
    }))
    .await
    .unwrap_err();
    let NetError::OperationFailed { status, report, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*status, 0xA702);
    assert_eq!(report.map(|r| (r.completed, r.failed)), Some((1, 0)));
    assert!(err.to_string().contains("unable to perform sub-operations"), "{err}");
    assert!(err.is_transient(), "out of resources may pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_store_during_a_move_is_a_protocol_error() {
    init_tracing();
    let err = move_study(Box::new(|pc, _| {
        let store = CommandWriter::new()
            .uid(tag::AFFECTED_SOP_CLASS_UID, uids::CT_IMAGE_STORAGE)
            .us(tag::COMMAND_FIELD, field::C_STORE_RQ)
            .us(tag::MESSAGE_ID, 1)
            .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
            .build();
        vec![pdata(vec![pdv(pc, true, true, &store)])]
    }))
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("C-STORE-RQ on a C-MOVE association"), "{err}");
}

/// Each case: the PDUs after the request, and what the error must say.
fn malformed_cases() -> Vec<(&'static str, Script, &'static str)> {
    let pending =
        |ts: &str, values: &[(Tag, VR, String)]| (rsp(field::C_FIND_RSP, 0xFF00, true, &[]), identifier(ts, values));
    vec![
        (
            "a date that is not one",
            Box::new(move |pc, ts: &str| {
                let (c, d) = pending(ts, &study("1.2.3", "2023-01-15"));
                vec![pdata(vec![pdv(pc, true, true, &c), pdv(pc, false, true, &d)])]
            }),
            "C-FIND match 1: StudyDate (0008,0020) \"2023-01-15\" is not a date",
        ),
        (
            "a match without its study",
            Box::new(move |pc, ts: &str| {
                let (c, d) = pending(ts, &[(tags::STUDY_DATE, VR::DA, "20230115".into())]);
                vec![pdata(vec![pdv(pc, true, true, &c), pdv(pc, false, true, &d)])]
            }),
            "StudyInstanceUID (0020,000D) is missing",
        ),
        (
            "a count that is not one",
            Box::new(move |pc, ts: &str| {
                let mut values = study("1.2.3", "20230115");
                values[3].2 = "many".into();
                let (c, d) = pending(ts, &values);
                vec![pdata(vec![pdv(pc, true, true, &c), pdv(pc, false, true, &d)])]
            }),
            "NumberOfStudyRelatedInstances (0020,1208) \"many\" is not a count",
        ),
        (
            "a pending response without identifier",
            Box::new(|pc, _: &str| {
                vec![pdata(vec![pdv(
                    pc,
                    true,
                    true,
                    &rsp(field::C_FIND_RSP, 0xFF00, false, &[]),
                )])]
            }),
            "pending C-FIND response 1 without an identifier",
        ),
        (
            "junk for an identifier",
            Box::new(|pc, _: &str| {
                let junk: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
                let c = rsp(field::C_FIND_RSP, 0xFF00, true, &[]);
                vec![pdata(vec![pdv(pc, true, true, &c), pdv(pc, false, true, &junk)])]
            }),
            "malformed identifier",
        ),
        (
            "a response to another message",
            Box::new(|pc, _: &str| {
                let c = CommandWriter::new()
                    .us(tag::COMMAND_FIELD, field::C_FIND_RSP)
                    .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, 7)
                    .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
                    .us(tag::STATUS, 0)
                    .build();
                vec![pdata(vec![pdv(pc, true, true, &c)])]
            }),
            "expected response 0x8020 to message 1",
        ),
        (
            "a C-MOVE response to a C-FIND",
            Box::new(|pc, _: &str| vec![pdata(vec![pdv(pc, true, true, &rsp(field::C_MOVE_RSP, 0, false, &[]))])]),
            "expected response 0x8020",
        ),
        (
            "a response without status",
            Box::new(|pc, _: &str| {
                let c = CommandWriter::new()
                    .us(tag::COMMAND_FIELD, field::C_FIND_RSP)
                    .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, 1)
                    .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
                    .build();
                vec![pdata(vec![pdv(pc, true, true, &c)])]
            }),
            "response without Status (0000,0900)",
        ),
        (
            "a garbled command set",
            Box::new(|pc, _: &str| vec![pdata(vec![pdv(pc, true, true, &[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF])])]),
            "malformed command set",
        ),
        (
            "a response on a context we never proposed",
            Box::new(|pc, _: &str| {
                vec![pdata(vec![pdv(
                    pc + 2,
                    true,
                    true,
                    &rsp(field::C_FIND_RSP, 0, false, &[]),
                )])]
            }),
            "on presentation context",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_find_responses_are_protocol_errors_naming_the_peer() {
    init_tracing();
    for (case, script, says) in malformed_cases() {
        let err = find(script).await.unwrap_err();
        assert!(matches!(err, NetError::Protocol { .. }), "{case}: {err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("protocol error with FAKE@127.0.0.1:"),
            "{case}: {text}"
        );
        assert!(text.contains(says), "{case}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_statuses_and_aborts_are_typed() {
    init_tracing();
    let err = find(Box::new(|pc, _| {
        let c = CommandWriter::new()
            .us(tag::COMMAND_FIELD, field::C_FIND_RSP)
            .us(tag::MESSAGE_ID_BEING_RESPONDED_TO, 1)
            .us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
            .us(tag::STATUS, 0xA700)
            .lo(tag::ERROR_COMMENT, "index busy")
            .build();
        vec![pdata(vec![pdv(pc, true, true, &c)])]
    }))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NetError::OperationFailed { operation: "C-FIND", status: 0xA700, comment: Some(c), report: None, .. } if c == "index busy"),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.starts_with("FAKE@127.0.0.1:"), "{text}");
    assert!(
        text.ends_with(" answered C-FIND with status 0xA700 (out of resources): index busy"),
        "{text}"
    );
    assert!(err.is_transient());

    let err = find(Box::new(|_, _| {
        vec![Pdu::AbortRQ {
            source: dicom_ul::pdu::AbortRQSource::ServiceUser,
        }]
    }))
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::Aborted { .. }), "{err}");

    let err = find(Box::new(|pc, _| {
        vec![pdata(vec![pdv(
            pc,
            true,
            true,
            &rsp(field::C_FIND_RSP, 0xFE00, false, &[]),
        )])]
    }))
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::OperationFailed { status: 0xFE00, .. }), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_connection_error() {
    init_tracing();
    let nobody: Peer = format!("PACS@127.0.0.1:{}", free_port()).parse().unwrap();
    let err = pulmo_net::find_studies(&nobody, PULMO, &query(), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err}");
    assert!(err.is_transient());
    let what = RetrieveLevel::Study {
        study_uid: "1.2.3".into(),
    };
    let err = pulmo_net::move_to(&nobody, PULMO, &what, PULMO, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err}");
    // Bad input is refused before connecting.
    let err = pulmo_net::move_to(&nobody, PULMO, &what, "NOT A VALID AE TITLE", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::InvalidInput(_)), "{err}");
}
