//! StudyFindings for writer tests: ball-shaped nodules placed on a real CT series' grid, with
//! measurements that follow from the ball (no analysis run), so a test knows every value.

use pulmo_clinical::density::Density;
use pulmo_clinical::lung_rads::{self, Category, Features, Status};
use pulmo_dicom::CtSeries;
use pulmo_findings::{
    Algorithm, ExamAssessment, HuStats, LungSummary, Measurements, ModelRef, NoduleFinding, PatientFacts, Processing, Side, StudyFindings,
    Zone, Level, SCHEMA_VERSION,
};
use pulmo_volume::BoxRegion;

/// A ball of `radius_mm` around grid index `centre` (z, y, x).
pub struct Ball {
    pub centre: [usize; 3],
    pub radius_mm: f64,
    pub side: Side,
}

pub fn findings_with_balls(ct: &CtSeries, balls: &[Ball]) -> StudyFindings {
    let source = ct.source_series();
    let nodules: Vec<NoduleFinding> = balls.iter().enumerate().map(|(i, b)| nodule(ct, i as u32 + 1, b)).collect();
    StudyFindings {
        schema_version: SCHEMA_VERSION,
        source,
        algorithm: Algorithm {
            name: "pulmo".into(),
            version: "0.0.0-test".into(),
            models: vec![ModelRef { name: "fp-reduction".into(), version: "0.2.0".into(), sha256: "ab".repeat(32) }],
        },
        patient: PatientFacts { age_years: Some(64.0), female: Some(true) },
        lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.02, emphysema: false },
        exam: ExamAssessment { lung_rads: Category::FourA, management: "3-month LDCT".into(), fleischner: None },
        nodules,
        notes: vec!["test findings: balls, not an analysis".into()],
        processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
    }
}

fn nodule(ct: &CtSeries, id: u32, ball: &Ball) -> NoduleFinding {
    let g = ct.volume.geometry();
    let dims = ct.volume.dims();
    let reach = [0, 1, 2].map(|a| (ball.radius_mm / g.spacing[a]).ceil() as usize + 1);
    let start = [0, 1, 2].map(|a| ball.centre[a].saturating_sub(reach[a]));
    let size = [0, 1, 2].map(|a| (ball.centre[a] + reach[a] + 1).min(dims[a]) - start[a]);
    let centre_lps = g.index_to_lps(ball.centre.map(|c| c as f64));
    let mut inside = Vec::with_capacity(size.iter().product());
    for z in 0..size[0] {
        for y in 0..size[1] {
            for x in 0..size[2] {
                let p = g.index_to_lps([(start[0] + z) as f64, (start[1] + y) as f64, (start[2] + x) as f64]);
                inside.push(pulmo_volume::vec3::dist(p, centre_lps) <= ball.radius_mm);
            }
        }
    }
    let region = BoxRegion::from_mask(start, size, &inside);
    let d = 2.0 * ball.radius_mm;
    let along_x = g.direction[2];
    let axis = |r: f64| [0, 1, 2].map(|a| centre_lps[a] + along_x[a] * r);
    let measurements = Measurements {
        centre_lps_mm: centre_lps,
        long_axis_mm: d,
        short_axis_mm: d,
        long_axis_lps_mm: [axis(-ball.radius_mm), axis(ball.radius_mm)],
        short_axis_lps_mm: [centre_lps, centre_lps],
        mean_diameter_mm: d,
        axial_plane_z_mm: centre_lps[2],
        longest_diameter_3d_mm: d,
        volume_mm3: std::f64::consts::PI / 6.0 * d.powi(3),
        hu: HuStats { mean: 20.0, sd: 15.0, min: -100.0, max: 80.0 },
        mass_mg: std::f64::consts::PI / 6.0 * d.powi(3) * 1.02,
        solid_core: None,
        solid_fraction: 1.0,
        density: Density::Solid,
        sphericity: 1.0,
        spiculated: None,
        calcified: false,
        juxtapleural: false,
    };
    let assessment = lung_rads::assess(&lung_rads::Nodule {
        density: Density::Solid,
        mean_diameter_mm: d,
        solid_component_mm: 0.0,
        status: Status::Baseline,
        features: Features { benign: false, juxtapleural_benign_shape: false, suspicious: false },
    });
    NoduleFinding {
        id,
        tracking_uid: pulmo_dicom::derived_uid(&format!("test nodule {id}")),
        detection_probability: 0.9,
        zone: Some(Zone { side: ball.side, level: Level::Upper }),
        measurements,
        lung_rads: assessment,
        brock: None,
        mayo: None,
        mesh_file: None,
        region,
    }
}
