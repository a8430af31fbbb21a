//! Every transfer syntax in ../shared/data/transfer-syntaxes against the uncompressed original:
//! lossless ones pixel-identical, lossy ones within a stated tolerance, the rest a clear error.

mod common;

use std::path::Path;

use pulmo_dicom::{load_ct_path, LoadError};

/// (file-name fragment, maximum |HU error| allowed; None = must fail with a named error)
const CASES: &[(&str, Option<i32>)] = &[
    ("LittleEndianImplicit", Some(0)),
    ("LittleEndianExplicit", Some(0)),
    ("BigEndianExplicit", Some(0)),
    ("DeflatedExplicitVRLittleEndian", Some(0)),
    ("RLELossless", Some(0)),
    ("JPEGProcess14TransferSyntax", Some(0)),
    ("JPEGProcess14SV1", Some(0)),
    ("JPEGLSLossless", Some(0)),
    ("JPEG2000LosslessOnly", Some(0)),
    ("JPEGLSLossy", Some(1)),
    ("JPEG2000TransferSyntax", Some(5)),
    // 8-bit baseline JPEG of a 12-bit image: coarse by nature of the syntax.
    ("JPEGProcess1TransferSyntax", Some(64)),
    ("JPEGProcess2_4", None),
    ("JPEGProcess6_8", None),
    ("JPEGProcess10_12", None),
    ("CT0012.fragmented_no_bot_jpeg_baseline.51", None),
];

fn hu(path: &Path) -> Result<Vec<i16>, LoadError> {
    load_ct_path(path).map(|ct| ct.volume.into_data())
}

#[test]
fn every_transfer_syntax_decodes_exactly_or_within_tolerance_or_fails_clearly() {
    let Some(dir) = common::shared_data("transfer-syntaxes") else { return };
    let reference = hu(&dir.join("CTImage.dcm_reference.dcm")).expect("reference decodes");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    for (fragment, tolerance) in CASES {
        let path = files
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().contains(fragment))
            .unwrap_or_else(|| panic!("no file for {fragment}"));
        let result = hu(path);
        match tolerance {
            Some(tol) => {
                let got = result.unwrap_or_else(|e| panic!("{fragment}: {e}"));
                if fragment.starts_with("CT0012") {
                    continue;
                }
                assert_eq!(got.len(), reference.len(), "{fragment}");
                let max = got.iter().zip(&reference).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max();
                println!("{fragment}: max |error| {max:?} HU (allowed {tol})");
                assert!(max.unwrap() <= *tol, "{fragment}: max error {max:?} > {tol}");
            }
            None => {
                let err = result.expect_err(fragment).to_string();
                println!("{fragment}: {err}");
                assert!(err.contains("1.2.840.10008.1.2.4.5"), "{fragment}: error must name the syntax: {err}");
            }
        }
    }
}

#[test]
fn non_ct_files_are_refused_naming_file_and_modality() {
    let Some(dir) = common::shared_data("transfer-syntaxes") else { return };
    for (name, modality) in [("no-pixel-data.dcm", "SR"), ("no-pixel-spacing.dcm", "US")] {
        let err = load_ct_path(&dir.join(name)).unwrap_err();
        assert!(matches!(&err, LoadError::NotCt { modality: m, .. } if m == modality), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}
