//! End-to-end checks of pulmo-phantom through its public API, on small coarse studies.

use std::path::Path;

use dicom_dictionary_std::tags;
use pulmo_volume::Volume;
use pulmo_phantom::{
    generate, generate_follow_up, insert_into, lung_mask, write_study, Attachment, BackgroundHeader, FollowUpSpec,
    LungRads, NoduleKind, NoduleRequest, NoduleShape, Phantom, PhantomSpec, RigidMotion, StudyKind, Truth,
};

/// 96 x 96 x 60 at 3.6 x 3.6 x 5 mm: the whole chest, fast in a debug build.
fn small(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        rows: 96,
        slices: 60,
        pixel_spacing_mm: 3.6,
        slice_spacing_mm: 5.0,
        slice_thickness_mm: 5.0,
        ..Default::default()
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn same_seed_same_study_different_seed_different_study() {
    let a = generate(&small(5)).unwrap();
    // Thread count must not matter: each slice draws its own noise stream.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let b = pool.install(|| generate(&small(5))).unwrap();
    assert_eq!(a.volume, b.volume);
    assert_eq!(serde_json::to_string(&a.truth).unwrap(), serde_json::to_string(&b.truth).unwrap());
    let c = generate(&small(6)).unwrap();
    assert_ne!(a.volume.data(), c.volume.data());
    assert_ne!(a.dicom.study_instance_uid, c.dicom.study_instance_uid);
    assert_eq!(a.truth.nodules.len(), 6);
}

#[test]
fn requested_sphere_has_axes_equal_to_its_diameter_and_matching_category() {
    let mut spec = small(8);
    spec.nodule_count = 3;
    spec.nodules = vec![
        NoduleRequest {
            kind: Some(NoduleKind::Solid),
            shape: Some(NoduleShape::Spherical),
            attachment: Some(Attachment::Isolated),
            diameter_mm: Some(8.0),
        },
        NoduleRequest {
            kind: Some(NoduleKind::PartSolid),
            shape: Some(NoduleShape::Spherical),
            attachment: None,
            diameter_mm: Some(20.0),
        },
    ];
    let p = generate(&spec).unwrap();
    let n = &p.truth.nodules[0];
    assert!(
        (n.long_axis_mm - 8.0).abs() < 0.02 && (n.short_axis_mm - 8.0).abs() < 0.02,
        "{} x {}",
        n.long_axis_mm,
        n.short_axis_mm
    );
    assert_eq!(n.mean_diameter_mm, 8.0);
    assert!((n.volume_mm3 - 4.0 / 3.0 * std::f64::consts::PI * 64.0).abs() < 0.5);
    assert_eq!(n.lung_rads, LungRads::FourA);
    let ps = &p.truth.nodules[1];
    let core = ps.solid_core.as_ref().expect("part-solid nodules have a core");
    assert!(core.long_axis_mm < ps.long_axis_mm && core.volume_mm3 < ps.volume_mm3);
    let expected = if core.mean_diameter_mm < 6.0 {
        LungRads::Three
    } else if core.mean_diameter_mm < 8.0 {
        LungRads::FourA
    } else {
        LungRads::FourB
    };
    assert_eq!(ps.lung_rads, expected);
    assert_eq!(p.truth.lung_rads, p.truth.nodules.iter().map(|n| n.lung_rads).max().unwrap());
}

#[test]
fn nodules_show_their_attenuation_at_their_centres() {
    let mut spec = small(9);
    spec.noise_hu = 0.0;
    spec.pixel_spacing_mm = 2.5;
    spec.rows = 144;
    spec.slice_spacing_mm = 2.0;
    spec.slice_thickness_mm = 2.0;
    spec.slices = 150;
    spec.nodule_count = 2;
    spec.nodules = vec![NoduleRequest {
        kind: Some(NoduleKind::Calcified),
        diameter_mm: Some(10.0),
        shape: Some(NoduleShape::Spherical),
        ..Default::default()
    }];
    let p = generate(&spec).unwrap();
    let n = &p.truth.nodules[0];
    let idx = n.centre_voxel_zyx.map(|v| v.round() as usize);
    let v = *p.volume.get(idx).unwrap() as f64;
    assert!((v - n.hu).abs() < 30.0, "centre voxel {v} HU vs nodule {} HU", n.hu);
}

#[test]
fn follow_up_moves_grows_and_matches_nodules() {
    let baseline = generate(&small(21)).unwrap();
    let prior = &baseline.truth;
    let ids: Vec<u32> = prior.nodules.iter().map(|n| n.id).collect();
    let spec = FollowUpSpec {
        seed: 4,
        interval_days: 200,
        motion: Some(RigidMotion { rotation_deg: [2.0, -3.0, 6.0], translation_mm: [12.0, -8.0, 20.0] }),
        breathing_scale_si: Some(1.02),
        vdt_days: [(ids[0], Some(100.0)), (ids[1], None), (ids[2], Some(-400.0))].into_iter().collect(),
        resolved: Some(vec![ids[3]]),
        new_nodules: 2,
        ..Default::default()
    };
    let f = generate_follow_up(prior, &spec).unwrap();
    let t = &f.truth;
    let fu = t.follow_up.as_ref().unwrap();
    assert_eq!(t.kind, StudyKind::FollowUp);
    assert_eq!(f.dicom.patient, baseline.dicom.patient);
    assert_ne!(f.dicom.study_instance_uid, baseline.dicom.study_instance_uid);
    assert_ne!(f.dicom.frame_of_reference_uid, baseline.dicom.frame_of_reference_uid);
    assert_eq!(f.dicom.study_date, "20240802");
    assert_eq!(fu.resolved_prior_ids, vec![ids[3]]);
    assert_eq!(t.nodules.len(), prior.nodules.len() - 1 + 2);
    assert_eq!(fu.matching.iter().filter(|m| m.prior.is_none()).count(), 2);
    for m in &fu.matching {
        let current = t.nodule(m.current).unwrap();
        let Some(prior_id) = m.prior else {
            assert!(current.growth.is_none());
            continue;
        };
        let before = prior.nodule(prior_id).unwrap();
        let moved = fu.prior_to_current.apply(before.centre_lps_mm);
        assert!(
            dist(moved, current.centre_lps_mm) < 1e-6,
            "nodule {prior_id}: {moved:?} vs {:?}",
            current.centre_lps_mm
        );
        let g = current.growth.as_ref().unwrap();
        let expected = g.vdt_days.map_or(1.0, |vdt| 2f64.powf(200.0 / vdt));
        assert!((g.volume_ratio - expected).abs() < 1e-12);
        assert!((current.volume_mm3 / before.volume_mm3 / expected - 1.0).abs() < 1e-3, "nodule {prior_id}");
    }
    let grown = fu.matching.iter().find(|m| m.prior == Some(ids[0])).unwrap();
    assert!((t.nodule(grown.current).unwrap().growth.as_ref().unwrap().volume_ratio - 2f64.powf(2.0)).abs() < 1e-12);
    // The transform is the given rigid motion about the body centre plus the S-I scale.
    let centre = prior.pose.translation_mm;
    let moved_centre = fu.prior_to_current.apply(centre);
    assert!(dist(moved_centre, [centre[0] + 12.0, centre[1] - 8.0, centre[2] + 20.0]) < 1e-9);
    let det = det(&fu.prior_to_current.linear);
    assert!((det - 1.02).abs() < 1e-9, "det {det}");
}

#[test]
fn follow_up_round_trips_through_truth_json() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = generate(&small(31)).unwrap();
    let path = dir.path().join("truth.json");
    baseline.truth.write(&path).unwrap();
    let read = Truth::read(&path).unwrap();
    assert_eq!(read, baseline.truth);
    let a = generate_follow_up(&read, &FollowUpSpec::default()).unwrap();
    let b = generate_follow_up(&baseline.truth, &FollowUpSpec::default()).unwrap();
    assert_eq!(a.volume, b.volume);
}

#[test]
fn dicom_files_read_back_with_positions_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let p = generate(&small(41)).unwrap();
    let files = write_study(&p, dir.path()).unwrap();
    assert_eq!(files.len(), 61);
    assert!(files[0].ends_with("CT000001.dcm") && files[60].ends_with("truth.json"));
    for k in [0usize, 17, 59] {
        let obj = dicom_object::open_file(&files[k]).unwrap();
        let text = |tag| obj.element(tag).unwrap().to_str().unwrap().to_string();
        let ipp: Vec<f64> = obj.element(tags::IMAGE_POSITION_PATIENT).unwrap().to_multi_float64().unwrap();
        let expected = p.volume.voxel_lps([k, 0, 0]);
        assert!(dist([ipp[0], ipp[1], ipp[2]], expected) < 1e-4, "slice {k}: {ipp:?} vs {expected:?}");
        assert_eq!(text(tags::SOP_INSTANCE_UID), p.dicom.sop_instance_uids[k]);
        assert_eq!(text(tags::INSTANCE_NUMBER), (k + 1).to_string());
        assert_eq!(text(tags::IMAGE_ORIENTATION_PATIENT), "1\\0\\0\\0\\1\\0");
        assert_eq!(text(tags::PIXEL_SPACING), "3.6\\3.6");
        assert_eq!(text(tags::MANUFACTURER), "pulmo phantom");
        assert_eq!(obj.meta().transfer_syntax().trim_end_matches('\0'), "1.2.840.10008.1.2.1");
        let bytes = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
        let pixels: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        assert_eq!(pixels, p.volume.slice(k));
    }
    assert_eq!(Truth::read(&files[60]).unwrap(), p.truth);
}

#[test]
fn inserted_nodules_sit_in_the_real_lungs() {
    let mut spec = small(51);
    spec.nodule_count = 0;
    let background = generate(&spec).unwrap().volume;
    let mask = lung_mask(&background);
    let insert = PhantomSpec { seed: 3, nodule_count: 3, ..Default::default() };
    let header = BackgroundHeader { source_series_instance_uid: Some("1.2.3.4".into()), ..Default::default() };
    let p: Phantom = insert_into(background.clone(), &header, &insert).unwrap();
    assert_eq!(p.truth.kind, StudyKind::Insertion);
    assert_eq!(p.truth.nodules.len(), 3);
    for n in &p.truth.nodules {
        assert_eq!(n.attachment, Attachment::Isolated);
        let idx = n.centre_voxel_zyx.map(|v| v.round() as usize);
        assert!(mask[background.offset(idx).unwrap()], "nodule {} centre outside the lung mask", n.id);
    }
    assert_ne!(p.volume.data(), background.data());
    let bad = PhantomSpec {
        nodule_count: 1,
        nodules: vec![NoduleRequest { attachment: Some(Attachment::Juxtapleural), ..Default::default() }],
        ..Default::default()
    };
    assert!(insert_into(background, &header, &bad).is_err());
}

/// A background with no nodules of its own, and an insertion of 3 nodules into it.
fn insertion(nodules: Vec<NoduleRequest>) -> (Volume<i16>, BackgroundHeader, Phantom) {
    let background = generate(&PhantomSpec { nodule_count: 0, ..small(51) }).unwrap().volume;
    let header = BackgroundHeader { source_series_instance_uid: Some("1.2.3.4".into()), ..Default::default() };
    let spec = PhantomSpec { seed: 3, nodule_count: 3, nodules, ..Default::default() };
    let prior = insert_into(background.clone(), &header, &spec).unwrap();
    (background, header, prior)
}

/// A follow-up of an insertion with no motion keeps the real voxels in place: the prior's
/// nodules return at their centres, grown by their doubling times, with the identity as
/// transform; a resolved one is gone and a new one lies apart from the others.
#[test]
fn insertion_follow_up_grows_the_nodules_in_place() {
    let (background, header, prior) = insertion(Vec::new());
    let still = RigidMotion { rotation_deg: [0.0; 3], translation_mm: [0.0; 3] };
    let spec = FollowUpSpec {
        seed: 4,
        motion: Some(still),
        breathing_scale_si: Some(1.0),
        resolved: Some(vec![2]),
        vdt_days: [(1, Some(200.0)), (3, None)].into(),
        ..Default::default()
    };
    let later = pulmo_phantom::insert_follow_up(&prior.truth, background.clone(), &header, &spec).unwrap();
    let fu = later.truth.follow_up.as_ref().unwrap();
    assert_eq!(later.truth.kind, StudyKind::FollowUp);
    assert_eq!(fu.prior_to_current, pulmo_volume::Affine::IDENTITY);
    assert_eq!((fu.motion, fu.breathing_scale_si), (still, 1.0));
    assert_eq!(fu.resolved_prior_ids, [2]);
    assert_eq!(later.truth.nodules.len(), 3, "two survivors and one new nodule");
    for m in &fu.matching {
        let n = later.truth.nodule(m.current).unwrap();
        match m.prior.map(|id| prior.truth.nodule(id).unwrap()) {
            Some(p) => {
                assert!(dist(n.centre_lps_mm, p.centre_lps_mm) < 1e-9, "nodule {} moved", n.id);
                let want = if p.id == 1 { 2f64.powf(365.0 / 200.0) } else { 1.0 };
                assert!((n.volume_mm3 / p.volume_mm3 - want).abs() < 0.02 * want, "nodule {}: {} -> {}", p.id, p.volume_mm3, n.volume_mm3);
            }
            None => assert!(prior.truth.nodules.iter().all(|p| dist(p.centre_lps_mm, n.centre_lps_mm) > 6.0)),
        }
    }
    assert_eq!(pulmo_clinical::dates::days_between(&prior.truth.identity.study_date, &later.truth.identity.study_date), Some(365));
    // Not resampled: away from the nodules (and their slice profile) every voxel is the real one.
    let changed: Vec<usize> = (0..background.len()).filter(|i| background.data()[*i] != later.volume.data()[*i]).collect();
    assert!(!changed.is_empty());
    for i in changed {
        let lps = voxel_lps(&later.volume, i);
        assert!(later.truth.nodules.iter().any(|n| dist(lps, n.centre_lps_mm) < n.model.bounding_radius() + 5.0), "voxel {i} changed");
    }
}

/// A follow-up of an insertion with motion: the real anatomy is resampled under the truth's
/// prior -> current transform, and the prior's nodules are drawn where it takes them.
#[test]
fn insertion_follow_up_moves_the_real_anatomy() {
    let solid = NoduleRequest { kind: Some(NoduleKind::Solid), diameter_mm: Some(10.0), ..Default::default() };
    let (background, header, prior) = insertion(vec![solid; 3]);
    let motion = RigidMotion { rotation_deg: [6.0, 0.0, 0.0], translation_mm: [12.0, 0.0, 0.0] };
    let spec = FollowUpSpec {
        seed: 4,
        motion: Some(motion),
        breathing_scale_si: Some(1.02),
        resolved: Some(Vec::new()),
        vdt_days: [(1, None), (2, None), (3, None)].into(),
        ..Default::default()
    };
    let later = pulmo_phantom::insert_follow_up(&prior.truth, background.clone(), &header, &spec).unwrap();
    let fu = later.truth.follow_up.as_ref().unwrap();
    let a = fu.prior_to_current;
    assert_eq!((fu.motion, fu.breathing_scale_si), (motion, 1.02));
    assert!((det(&a.linear) - 1.02).abs() < 1e-9);
    let mask = lung_mask(&later.volume);
    for m in fu.matching.iter().filter(|m| m.prior.is_some()) {
        let n = later.truth.nodule(m.current).unwrap();
        let p = prior.truth.nodule(m.prior.unwrap()).unwrap();
        assert!(dist(a.apply(p.centre_lps_mm), n.centre_lps_mm) < 1e-6, "nodule {}", p.id);
        assert!(dist(p.centre_lps_mm, n.centre_lps_mm) > 11.0, "nodule {} did not move", p.id);
        let expect = later.volume.geometry().lps_to_index(n.centre_lps_mm);
        assert!(dist(n.centre_voxel_zyx, expect) < 1e-9);
        let lung = shell_mean(&later.volume, &mask, n.centre_lps_mm, n.model.bounding_radius() + 3.0);
        let contrast = ball_mean(&later.volume, n.centre_lps_mm, 3.0) - lung;
        assert!(contrast > 0.5 * (n.hu - lung), "nodule {}: {contrast:.0} HU over the lung at its new centre", p.id);
    }
    // The background is the prior's real voxels at A^-1 x away from the nodules: in the lungs,
    // and where a prior nodule was (nothing is left drawn there).
    let far = |lps| later.truth.nodules.iter().all(|n| dist(lps, n.centre_lps_mm) > n.model.bounding_radius() + 8.0);
    let vacated: Vec<[f64; 3]> = prior.truth.nodules.iter().map(|p| p.centre_lps_mm).filter(|c| far(*c)).collect();
    assert!(!vacated.is_empty());
    let back = a.inverse().unwrap();
    let (mut lung, mut old_places) = (0, 0);
    for (i, &in_lung) in mask.iter().enumerate() {
        let lps = voxel_lps(&later.volume, i);
        let old_place = vacated.iter().any(|c| dist(*c, lps) < 4.0);
        if !(old_place || i % 7 == 0 && in_lung) || !far(lps) {
            continue;
        }
        let want = trilinear(&background, background.geometry().lps_to_index(back.apply(lps))).unwrap();
        let got = later.volume.data()[i] as f64;
        assert!((got - want).abs() <= 0.51, "voxel {i}: {got} HU, the prior's background there is {want:.1}");
        (lung, old_places) = (lung + !old_place as usize, old_places + old_place as usize);
    }
    assert!(lung > 1000 && old_places > 0, "only {lung} lung voxels and {old_places} at vacated places checked");
}

fn voxel_lps(v: &Volume<i16>, i: usize) -> [f64; 3] {
    let [_, ny, nx] = v.dims();
    v.voxel_lps([i / (ny * nx), (i / nx) % ny, i % nx])
}

/// `v` at the continuous index `p` (z, y, x): the 8 neighbours weighted by the opposite box.
fn trilinear(v: &Volume<i16>, p: [f64; 3]) -> Option<f64> {
    let d = v.dims();
    if (0..3).any(|a| !(0.0..=(d[a] - 1) as f64).contains(&p[a])) {
        return None;
    }
    let mut sum = 0.0;
    for corner in 0..8 {
        let (mut w, mut idx) = (1.0, [0usize; 3]);
        for a in 0..3 {
            let (lo, up) = (p[a].floor(), (corner >> a) & 1 == 1);
            w *= if up { p[a] - lo } else { 1.0 - (p[a] - lo) };
            idx[a] = ((lo as usize) + up as usize).min(d[a] - 1);
        }
        sum += w * *v.get(idx).unwrap() as f64;
    }
    Some(sum)
}

/// Mean HU of the voxels within `radius` mm of `c` (at least the nearest one).
fn ball_mean(v: &Volume<i16>, c: [f64; 3], radius: f64) -> f64 {
    let near: Vec<f64> = (0..v.len()).filter(|i| dist(voxel_lps(v, *i), c) <= radius).map(|i| v.data()[i] as f64).collect();
    if near.is_empty() {
        let idx = v.geometry().lps_to_index(c).map(|x| x.round() as usize);
        return *v.get(idx).unwrap() as f64;
    }
    near.iter().sum::<f64>() / near.len() as f64
}

/// Mean HU of the lung-mask voxels between `inner` and `inner + 7` mm from `c`.
fn shell_mean(v: &Volume<i16>, mask: &[bool], c: [f64; 3], inner: f64) -> f64 {
    let lung: Vec<f64> = (0..v.len())
        .filter(|i| mask[*i] && (inner..inner + 7.0).contains(&dist(voxel_lps(v, *i), c)))
        .map(|i| v.data()[i] as f64)
        .collect();
    assert!(lung.len() > 10, "{} lung voxels around {c:?}", lung.len());
    lung.iter().sum::<f64>() / lung.len() as f64
}

fn det(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

#[test]
fn bad_options_are_errors() {
    let mut spec = small(1);
    spec.rows = 40;
    assert!(generate(&spec).is_err());
    let p = generate(&small(2)).unwrap();
    let fu = FollowUpSpec { vdt_days: [(999, Some(100.0))].into_iter().collect(), ..Default::default() };
    assert!(generate_follow_up(&p.truth, &fu).is_err());
    let fu =
        FollowUpSpec { vdt_days: [(1, Some(10.0))].into_iter().collect(), interval_days: 3000, ..Default::default() };
    assert!(generate_follow_up(&p.truth, &fu).is_err());
    assert!(Truth::read(Path::new("/nonexistent/truth.json")).is_err());
}

/// dciodvfy (dicom3tools) must find no errors; skipped, saying so, where it is not installed.
#[test]
fn dciodvfy_finds_no_errors() {
    let Ok(out) = std::process::Command::new("dciodvfy").arg("-version").output() else {
        eprintln!("SKIPPED: dciodvfy not installed");
        return;
    };
    drop(out);
    let dir = tempfile::tempdir().unwrap();
    let files = write_study(&generate(&small(61)).unwrap(), dir.path()).unwrap();
    for f in [&files[0], &files[30]] {
        let out = std::process::Command::new("dciodvfy").arg(f).output().unwrap();
        let report = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(!report.contains("Error"), "dciodvfy {}:\n{report}", f.display());
    }
}

/// pydicom reads the series back (independent implementation); skipped, saying so, where no
/// Python with pydicom is found (PULMO_PYTHON, the project .venv, or python3).
#[test]
fn pydicom_reads_the_series() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var("PULMO_PYTHON").ok(),
        Some(root.join(".venv/bin/python").display().to_string()),
        Some("python3".into()),
    ];
    let python = candidates.into_iter().flatten().find(|py| {
        std::process::Command::new(py).args(["-c", "import pydicom, numpy"]).output().is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("SKIPPED: no python with pydicom and numpy (set PULMO_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = generate(&small(71)).unwrap();
    write_study(&p, dir.path()).unwrap();
    let script = r#"
import sys, glob, json, numpy as np, pydicom
d = sys.argv[1]
ds = [pydicom.dcmread(f) for f in sorted(glob.glob(d + "/CT*.dcm"))]
t = json.load(open(d + "/truth.json"))
assert ds[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
assert ds[0].file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
z = [float(x.ImagePositionPatient[2]) for x in ds]
assert np.allclose(np.diff(z), t["geometry"]["spacing"][0], atol=1e-4)
vol = np.stack([x.pixel_array.astype(np.int32) * int(x.RescaleSlope) + int(x.RescaleIntercept) for x in ds])
assert ds[0].pixel_array.dtype == np.int16
assert vol.shape == tuple(t["dims_zyx"])
print(int(vol.astype(np.int64).sum()))
"#;
    let out = std::process::Command::new(&python).args(["-c", script]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "pydicom check failed: {}", String::from_utf8_lossy(&out.stderr));
    let sum: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(sum, p.volume.data().iter().map(|v| *v as i64).sum::<i64>());
}
