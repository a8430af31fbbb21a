//! C-STORE into our SCP from DCMTK storescu: a real 30-slice CT series, compressed transfer
//! syntaxes (stored and decodable, or refused in negotiation), and our own status checks.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{open_file, InMemDicomObject};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use pulmo_net::{status, NodePolicy, OutgoingObject};

use crate::common::*;

fn ts_file(name: &str) -> Option<PathBuf> {
    shared_data(&format!("transfer-syntaxes/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_series_is_stored_and_parses_back() {
    init_tracing();
    let (true, Some(files)) = (have_dcmtk(), b40f_files()) else {
        return;
    };
    assert_eq!(files.len(), 30);
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(test_policy(), handler.clone()).await;

    let run = storescu(scp.port, &["-aet", "CT1"], &files).await;
    assert!(run.ok, "storescu failed:\n{}", run.log);
    scp.stop().await;

    assert_eq!(handler.stored_count(), 30);
    let ended = handler.ended.lock().unwrap();
    assert_eq!(ended.len(), 1, "one association");
    assert_eq!((ended[0].1.stored, ended[0].1.failed), (30, 0));
    assert_eq!(ended[0].0.calling_ae, "CT1");
    for f in &files {
        let original = OutgoingObject::from_part10_file(f).unwrap();
        let stored = std::fs::read(handler.path_of(&original.sop_instance_uid)).unwrap();
        let received = OutgoingObject::from_part10_bytes(&stored).unwrap();
        assert_eq!(received.sop_class_uid, uids::CT_IMAGE_STORAGE);
        let ts = TransferSyntaxRegistry.get(&received.transfer_syntax_uid).unwrap();
        let ours = InMemDicomObject::read_dataset_with_ts(&received.dataset[..], ts).expect("data set parses back");
        let theirs = InMemDicomObject::read_dataset_with_ts(&original.dataset[..], ts).unwrap();
        let pixels = |o: &InMemDicomObject| o.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap().to_vec();
        assert_eq!(pixels(&ours), pixels(&theirs), "pixel data intact for {}", f.display());
        assert_eq!(
            ours.element(tags::SOP_INSTANCE_UID).unwrap().to_str().unwrap(),
            original.sop_instance_uid
        );
    }
}

/// Decoded pixel samples of a stored Part-10 file.
fn decoded(path: &Path) -> Vec<u8> {
    let obj = open_file(path).expect("stored file opens");
    obj.decode_pixel_data().expect("pixel data decodes").data().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_compressed_syntaxes_are_stored_decodably_or_refused() {
    init_tracing();
    let cases = [
        (
            "-xs",
            "CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm",
            uids::JPEG_LOSSLESS_SV1,
        ),
        (
            "-xr",
            "CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm",
            uids::RLE_LOSSLESS,
        ),
        (
            "-xv",
            "CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm",
            uids::JPEG2000_LOSSLESS,
        ),
        (
            "-xt",
            "CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm",
            uids::JPEGLS_LOSSLESS,
        ),
    ];
    let Some(reference) = ts_file("CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm") else {
        return;
    };
    if !have_dcmtk() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let policy = test_policy();
    let offered = policy.decodable_transfer_syntaxes();
    let scp = Scp::start(policy, handler.clone()).await;

    // Uncompressed input with a compression flag: storescu proposes both and sends as is.
    let plain = storescu(scp.port, &["-xs"], std::slice::from_ref(&reference)).await;
    assert!(plain.ok, "{}", plain.log);
    let uid = OutgoingObject::from_part10_file(&reference).unwrap().sop_instance_uid;
    let expected = decoded(&handler.path_of(&uid));

    for (flag, name, ts) in cases {
        let Some(file) = ts_file(name) else { return };
        let before = handler.stored_count();
        let run = storescu(scp.port, &[flag], &[file]).await;
        let accepted = offered.iter().any(|t| t == ts);
        println!(
            "{flag} {ts}: {}",
            if accepted {
                "offered: expect stored"
            } else {
                "not decodable here: expect refusal"
            }
        );
        if accepted {
            assert!(run.ok, "{flag}: storescu failed:\n{}", run.log);
            assert_eq!(handler.stored_count(), before + 1);
            let last = handler.stored.lock().unwrap().last().unwrap().clone();
            assert_eq!(
                last.transfer_syntax_uid, ts,
                "{flag}: stored in the syntax it was sent in"
            );
            assert_eq!(
                decoded(&handler.path_of(&uid)),
                expected,
                "{flag}: lossless decode matches the reference"
            );
        } else {
            assert!(
                !run.ok,
                "{flag}: {ts} is not decodable here, storescu should fail:\n{}",
                run.log
            );
            assert_eq!(handler.stored_count(), before);
        }
    }
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_left_out_of_the_policy_is_refused_in_negotiation() {
    init_tracing();
    let Some(file) = ts_file("CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm") else {
        return;
    };
    if !have_dcmtk() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let policy = NodePolicy {
        transfer_syntaxes: vec![
            uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            uids::IMPLICIT_VR_LITTLE_ENDIAN.into(),
        ],
        ..test_policy()
    };
    let scp = Scp::start(policy, handler.clone()).await;
    // storescu -xt proposes JPEG-LS plus the uncompressed syntaxes; only the latter are
    // accepted, and storescu cannot decompress JPEG-LS to use them.
    let run = storescu(scp.port, &["-R", "-xt"], std::slice::from_ref(&file)).await;
    assert!(!run.ok, "storescu should fail:\n{}", run.log);
    assert!(
        run.log.contains("unable to convert") || run.log.contains("No presentation context"),
        "{}",
        run.log
    );
    // Our SCU proposes exactly the file's syntax, so the refusal shows as such.
    let target: pulmo_net::Peer = format!("PULMO@127.0.0.1:{}", scp.port).parse().unwrap();
    let object = OutgoingObject::from_part10_file(&file).unwrap();
    let err = pulmo_net::send(&target, "TESTSCU", vec![object]).await.unwrap_err();
    assert!(matches!(err, pulmo_net::NetError::ContextRefused { .. }), "{err}");
    assert_eq!(handler.stored_count(), 0);
    assert!(echo_eventually(scp.port).await.ok);
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_scu_into_our_scp_gets_network_level_statuses() {
    init_tracing();
    let Some(files) = b40f_files() else { return };
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(test_policy(), handler.clone()).await;
    let target: pulmo_net::Peer = format!("PULMO@127.0.0.1:{}", scp.port).parse().unwrap();

    let good = OutgoingObject::from_part10_file(&files[0]).unwrap();
    let other = OutgoingObject::from_part10_file(&files[1]).unwrap();
    let wrong_class = OutgoingObject {
        sop_class_uid: uids::ENHANCED_CT_IMAGE_STORAGE.into(),
        ..good.clone()
    };
    let wrong_instance = OutgoingObject {
        sop_instance_uid: other.sop_instance_uid.clone(),
        ..good.clone()
    };
    let garbage = OutgoingObject {
        dataset: vec![0xAB; 300],
        ..good.clone()
    };
    let report = pulmo_net::send(
        &target,
        "TESTSCU",
        vec![wrong_class, wrong_instance, garbage, good.clone()],
    )
    .await
    .unwrap();
    let statuses: Vec<u16> = report.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            status::CANNOT_UNDERSTAND,
            0
        ]
    );
    assert!(
        report.results[0].comment.as_deref().unwrap().contains("SOP Class"),
        "{report:?}"
    );
    assert_eq!(handler.stored_count(), 1, "only the good object reached the handler");
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_over_the_size_limit_is_drained_and_refused_with_a700() {
    init_tracing();
    let Some(files) = b40f_files() else { return };
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(
        NodePolicy {
            max_object_bytes: 100_000,
            ..test_policy()
        },
        handler.clone(),
    )
    .await;
    let target: pulmo_net::Peer = format!("PULMO@127.0.0.1:{}", scp.port).parse().unwrap();
    let big = OutgoingObject::from_part10_file(&files[0]).unwrap();
    assert!(big.dataset.len() > 100_000);
    // Two in one association: the first refusal leaves the association usable.
    let report = pulmo_net::send(&target, "TESTSCU", vec![big.clone(), big])
        .await
        .unwrap();
    assert!(
        report.results.iter().all(|r| r.status == status::OUT_OF_RESOURCES),
        "{report:?}"
    );
    assert_eq!(handler.stored_count(), 0);
    scp.stop().await;
}
