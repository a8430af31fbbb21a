//! The summary page: what a radiologist whose viewer reads neither SEG nor SR needs to find and
//! judge each nodule, laid out top to bottom on one image.

use pulmo_clinical::density::Density;
use pulmo_clinical::dates::display as display_date;
use pulmo_clinical::growth::VolumeChange;
use pulmo_clinical::lung_rads::Status;
use pulmo_findings::{found_on_prior_ct, nodule_colour, nodule_table, NoduleFinding, PriorComparison, StudyFindings, UnmatchedPrior};
use pulmo_volume::{Geometry, Vec3, Volume};

use crate::canvas::{Canvas, Rgb};

pub const PAGE_WIDTH: usize = 1600;
const MARGIN: i64 = 24;
/// Side of a nodule's key-slice crop on the page, pixels.
const CROP_PX: usize = 320;
/// Nodules drawn with a crop; the table lists them all.
const MAX_PANELS: usize = 10;
/// Lung window: level and width, HU.
const WINDOW: (f64, f64) = (-600.0, 1500.0);

const BACKGROUND: Rgb = [16, 16, 16];
const TEXT: Rgb = [230, 230, 230];
const DIM: Rgb = [150, 150, 150];
const WARNING_BAND: Rgb = [150, 20, 20];
const LONG_AXIS: Rgb = [255, 230, 0];
const SHORT_AXIS: Rgb = [0, 220, 255];

/// The whole page for `findings` of the CT `ct` (the volume they were made from).
pub fn summary_page(findings: &StudyFindings, ct: &Volume<i16>) -> Canvas {
    let panels = findings.nodules.len().min(MAX_PANELS);
    let table = nodule_table(findings);
    let prior = findings.prior.as_ref().map_or_else(Vec::new, |p| prior_lines(p, &findings.nodules));
    let notes: Vec<String> = findings.notes.iter().flat_map(|n| wrap(&format!("- {n}"), 190)).collect();
    let prior_height = if prior.is_empty() { 0 } else { 20 * prior.len() + 16 };
    let height = 200 + prior_height + 20 * table.len() + (CROP_PX + 24) * panels + 60 + 12 * notes.len();
    let mut page = Canvas::new(PAGE_WIDTH, height, BACKGROUND);
    let mut y = header(&mut page, findings);
    for line in &prior {
        page.text(MARGIN, y, 2, TEXT, line);
        y += 20;
    }
    if !prior.is_empty() {
        y += 16;
    }
    for line in &table {
        page.text(MARGIN, y, 2, TEXT, line);
        y += 20;
    }
    y += 16;
    for nodule in findings.nodules.iter().take(panels) {
        panel(&mut page, y, nodule, ct);
        y += CROP_PX as i64 + 24;
    }
    if findings.nodules.len() > panels {
        page.text(MARGIN, y, 2, DIM, &format!("{} more nodules: see the table above and the SR", findings.nodules.len() - panels));
    }
    y += 32;
    for line in &notes {
        page.text(MARGIN, y, 1, DIM, line);
        y += 12;
    }
    page
}

/// Warning band, title and exam; returns the y below them.
fn header(page: &mut Canvas, f: &StudyFindings) -> i64 {
    page.fill(0, 0, PAGE_WIDTH, 44, WARNING_BAND);
    let warning = format!("NOT FOR DIAGNOSIS WITHOUT REVIEW - automated findings by {} {}", f.algorithm.name, f.algorithm.version);
    page.text(MARGIN, 14, 2, [255, 255, 255], &warning);
    let date = f.source.study_date.as_deref().map(display_date).unwrap_or_else(|| "unknown date".into());
    page.text(MARGIN, 60, 3, TEXT, &format!("Lung nodules - CT of {date}"));
    let exam = format!("Exam Lung-RADS {}: {}", f.exam.lung_rads.code(), f.exam.management);
    let mut y = 100;
    for line in wrap(&exam, 95) {
        page.text(MARGIN, y, 2, TEXT, &line);
        y += 20;
    }
    if f.nodules.is_empty() {
        page.text(MARGIN, y + 10, 2, TEXT, "No nodules reported.");
        y += 30;
    }
    y + 16
}

/// Which prior the nodules were compared with, its nodules that none matches, and the nodules
/// its findings missed but its CT shows.
fn prior_lines(p: &PriorComparison, nodules: &[NoduleFinding]) -> Vec<String> {
    let interval = p.interval_days.map_or_else(String::new, |_| format!(", {}", p.interval_text()));
    let mut lines = vec![format!("Compared with the CT of {}{interval}.", p.date_text())];
    let unmatched: Vec<String> = p.unmatched_prior.iter().map(UnmatchedPrior::describe).collect();
    if !unmatched.is_empty() {
        lines.extend(wrap(&format!("Prior nodules not seen: {}.", unmatched.join("; ")), 95));
    }
    if let Some(found) = found_on_prior_ct(nodules) {
        lines.extend(wrap(&format!("Not in the prior's findings, seen on its CT: {found}."), 95));
    }
    lines
}

/// One nodule: its key-slice crop on the left, what the report says about it on the right.
fn panel(page: &mut Canvas, y: i64, nodule: &NoduleFinding, ct: &Volume<i16>) {
    let colour = nodule_colour(nodule.id);
    page.paste(MARGIN, y, &crop(ct, nodule, CROP_PX));
    let x = MARGIN + CROP_PX as i64 + 24;
    page.text(x, y, 3, colour, &format!("Nodule {}", nodule.id));
    let mut line_y = y + 40;
    for line in panel_lines(nodule, ct) {
        for wrapped in wrap(&line, 75) {
            page.text(x, line_y, 2, TEXT, &wrapped);
            line_y += 22;
        }
    }
}

fn panel_lines(n: &NoduleFinding, ct: &Volume<i16>) -> Vec<String> {
    let m = &n.measurements;
    let zone = n.zone.map_or("outside the lung masks".to_string(), |z| format!("{z} zone"));
    let mut lines = vec![
        zone,
        format!("{}, {:.1} x {:.1} mm (mean {:.1} mm)", m.density.label(), m.long_axis_mm, m.short_axis_mm, m.mean_diameter_mm),
        format!("volume {:.0} mm3, mean {:.0} HU", m.volume_mm3, m.hu.mean),
    ];
    if let Some(core) = m.solid_core.filter(|_| m.density == Density::PartSolid) {
        lines.push(format!("solid component {:.1} mm", core.mean_diameter_mm));
    }
    lines.push(format!("Lung-RADS {}: {}", n.lung_rads.category.code(), n.lung_rads.category.management()));
    lines.extend(change_lines(n));
    let risk = |name: &str, p: f64| format!("{name} {:.1}%", 100.0 * p);
    let risks: Vec<String> = [n.brock.as_ref().map(|r| risk("Brock", r.estimate.probability)), n.mayo.as_ref().map(|r| risk("Mayo", r.estimate.probability))]
        .into_iter()
        .flatten()
        .collect();
    if !risks.is_empty() {
        lines.push(format!("malignancy risk: {}", risks.join(", ")));
    }
    let slice = n.key_slice(ct.geometry(), ct.dims()[0]) + 1;
    lines.push(format!("key slice: image {slice} of {} (z = {:.1} mm)", ct.dims()[0], m.axial_plane_z_mm));
    lines
}

/// What changed since the prior, and the prior's size; nothing for a baseline.
fn change_lines(n: &NoduleFinding) -> Vec<String> {
    let word = match n.status {
        Status::Baseline => return Vec::new(),
        Status::New => return vec!["new since the prior".into()],
        Status::Growing => "growing",
        Status::SlowlyGrowing => "slowly growing",
        Status::Stable => "stable",
    };
    let Some(c) = &n.change else { return vec![format!("since the prior: {word}")] };
    let mut change = format!("since the prior: {word}, {:+.1} mm, volume {:+.0}%", c.mean_diameter_change_mm, c.volume_change_percent);
    match c.volume_change {
        Some(VolumeChange::Growing { doubling_time_days: d }) if d > 0.0 => change += &format!(", VDT {d:.0} d"),
        Some(VolumeChange::Shrinking) => change += " (shrinking)",
        _ => {}
    }
    let p = &c.prior;
    vec![change, format!("prior: {:.1} mm, {:.0} mm3, Lung-RADS {}", p.mean_diameter_mm, p.volume_mm3, p.lung_rads.code())]
}

/// A square crop of the key slice around the nodule in the lung window, with the outline of its
/// segmentation in its colour, its long axis in yellow and short axis in cyan, and a 10 mm bar.
fn crop(ct: &Volume<i16>, n: &NoduleFinding, size: usize) -> Canvas {
    let g = ct.geometry();
    let z = n.key_slice(g, ct.dims()[0]);
    let view = View::around(g, n.measurements.centre_lps_mm, (3.0 * n.measurements.long_axis_mm).max(40.0), size);
    let mut image = Canvas::new(size, size, [0, 0, 0]);
    let mut mask = vec![false; size * size];
    let on_slice: std::collections::HashSet<[usize; 2]> = n.region.voxels().filter(|p| p[0] == z).map(|p| [p[1], p[2]]).collect();
    for v in 0..size {
        for u in 0..size {
            let [y, x] = view.voxel(u as f64, v as f64);
            let grey = window(sample(ct, z, y, x));
            image.set(u as i64, v as i64, [grey; 3]);
            let (yi, xi) = (y.round(), x.round());
            mask[v * size + u] = yi >= 0.0 && xi >= 0.0 && on_slice.contains(&[yi as usize, xi as usize]);
        }
    }
    let colour = nodule_colour(n.id);
    for v in 0..size {
        for u in 0..size {
            let edge = |du: i64, dv: i64| {
                let (a, b) = (u as i64 + du, v as i64 + dv);
                a < 0 || b < 0 || a >= size as i64 || b >= size as i64 || !mask[b as usize * size + a as usize]
            };
            if mask[v * size + u] && (edge(-1, 0) || edge(1, 0) || edge(0, -1) || edge(0, 1)) {
                image.fill(u as i64 - 1, v as i64 - 1, 2, 2, colour);
            }
        }
    }
    let axis = |ends: [Vec3; 2]| ends.map(|p| view.pixel(g.lps_to_index(p)));
    image.line(axis(n.measurements.long_axis_lps_mm)[0], axis(n.measurements.long_axis_lps_mm)[1], 2, LONG_AXIS);
    image.line(axis(n.measurements.short_axis_lps_mm)[0], axis(n.measurements.short_axis_lps_mm)[1], 2, SHORT_AXIS);
    // The scale bar sits on a dark plate: the crop's corner may be chest wall, as bright as it.
    let bar = 10.0 / view.mm_per_px;
    let base = size as f64 - 16.0;
    image.fill(6, base as i64 - 10, bar as usize + 64, 20, [0, 0, 0]);
    image.line([12.0, base], [12.0 + bar, base], 3, [255, 255, 255]);
    image.text(18 + bar as i64, base as i64 - 4, 1, [255, 255, 255], "10 mm");
    image
}

/// How a crop's pixels map onto one slice of the grid.
struct View {
    centre: [f64; 2],
    mm_per_px: f64,
    spacing: [f64; 2],
    half: f64,
}

impl View {
    fn around(g: &Geometry, centre_lps: Vec3, field_mm: f64, size: usize) -> View {
        let c = g.lps_to_index(centre_lps);
        View { centre: [c[1], c[2]], mm_per_px: field_mm / size as f64, spacing: [g.spacing[1], g.spacing[2]], half: size as f64 / 2.0 }
    }

    /// Continuous (row, column) grid index under the centre of crop pixel (u, v).
    fn voxel(&self, u: f64, v: f64) -> [f64; 2] {
        [
            self.centre[0] + (v + 0.5 - self.half) * self.mm_per_px / self.spacing[0],
            self.centre[1] + (u + 0.5 - self.half) * self.mm_per_px / self.spacing[1],
        ]
    }

    /// Crop pixel coordinates (x, y) of a continuous grid index (z, y, x).
    fn pixel(&self, index: Vec3) -> [f64; 2] {
        [
            (index[2] - self.centre[1]) * self.spacing[1] / self.mm_per_px + self.half - 0.5,
            (index[1] - self.centre[0]) * self.spacing[0] / self.mm_per_px + self.half - 0.5,
        ]
    }
}

/// Bilinear HU at a continuous (row, column) of slice `z`; air outside the grid.
fn sample(ct: &Volume<i16>, z: usize, y: f64, x: f64) -> f64 {
    let at = |yy: f64, xx: f64| {
        if yy < 0.0 || xx < 0.0 {
            return -1000.0;
        }
        ct.get([z, yy as usize, xx as usize]).map_or(-1000.0, |h| f64::from(*h))
    };
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let bottom = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

fn window(hu: f64) -> u8 {
    let (level, width) = WINDOW;
    ((hu - (level - width / 2.0)) / width * 255.0).clamp(0.0, 255.0) as u8
}

/// Splits text into lines of at most `width` characters at spaces (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let current = lines.last_mut().expect("never empty");
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        let current = lines.last_mut().expect("never empty");
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.into_iter().flat_map(|l| cut(&l, width)).collect()
}

fn cut(line: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(width.max(1)).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_and_dates() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
    }

    /// A grown 24 mm nodule (20 mm a year before) in a study compared with its prior.
    fn follow_up() -> (StudyFindings, Volume<i16>) {
        use pulmo_clinical::lung_rads::{Assessment, Category};
        use pulmo_findings::*;
        let g = Geometry::axial([0.0; 3], [2.0, 0.7, 0.7]).unwrap();
        let ct = Volume::filled([20, 64, 64], g, -800i16).unwrap();
        let c = [22.0, 22.0, 20.0];
        let ball = |d: f64| std::f64::consts::PI / 6.0 * d.powi(3);
        let prior = PriorNodule {
            id: 1,
            tracking_uid: "2.25.1".into(),
            centre_lps_mm: c,
            density: Density::Solid,
            long_axis_mm: 20.0,
            short_axis_mm: 20.0,
            mean_diameter_mm: 20.0,
            volume_mm3: ball(20.0),
            solid_core_mean_diameter_mm: None,
            lung_rads: Category::FourA,
        };
        let nodule = NoduleFinding {
            id: 1,
            tracking_uid: "2.25.1".into(),
            detection_probability: 0.9,
            zone: Some(Zone { side: Side::Right, level: Level::Upper }),
            measurements: Measurements {
                centre_lps_mm: c,
                long_axis_mm: 24.0,
                short_axis_mm: 24.0,
                long_axis_lps_mm: [[8.0, 22.0, 20.0], [32.0, 22.0, 20.0]],
                short_axis_lps_mm: [[22.0, 10.0, 20.0], [22.0, 34.0, 20.0]],
                mean_diameter_mm: 24.0,
                axial_plane_z_mm: 20.0,
                longest_diameter_3d_mm: 24.0,
                volume_mm3: ball(24.0),
                hu: HuStats { mean: 20.0, sd: 15.0, min: -100.0, max: 80.0 },
                mass_mg: 0.0,
                solid_core: None,
                solid_fraction: 1.0,
                density: Density::Solid,
                sphericity: 1.0,
                spiculated: None,
                spicules: None,
                spiculation_probability: None,
                margin_irregularity: None,
                calcified: false,
                juxtapleural: false,
            },
            lung_rads: Assessment { category: Category::FourB, reason: String::new() },
            status: Status::Growing,
            change: Some(NoduleChange {
                interval_days: Some(365.0),
                prior_mapped_lps_mm: c,
                match_distance_mm: 0.0,
                mean_diameter_change_mm: 4.0,
                solid_core_change_mm: None,
                volume_change_percent: 72.8,
                volume_change: Some(VolumeChange::Growing { doubling_time_days: 462.6 }),
                doubling_class: None,
                history: Vec::new(),
                prior: prior.clone(),
                found_on_prior_ct: false,
            }),
            brock: None,
            mayo: None,
            mesh_file: None,
            region: pulmo_volume::BoxRegion::from_mask([10, 31, 28], [1, 1, 4], &[true; 4]),
        };
        let unmatched = UnmatchedPrior { nodule: PriorNodule { id: 2, ..prior }, expected_lps_mm: c, disappearance: Disappearance::OutsideScan };
        let findings = StudyFindings {
            schema_version: SCHEMA_VERSION,
            source: SourceSeries {
                study_uid: "1.2.3".into(),
                series_uid: "1.2.3.4".into(),
                frame_of_reference_uid: None,
                study_date: Some("20250131".into()),
                dims: ct.dims(),
                geometry: *ct.geometry(),
                slices: Vec::new(),
            },
            algorithm: Algorithm { name: "pulmo".into(), version: "0".into(), models: Vec::new() },
            patient: PatientFacts { age_years: None, female: None },
            lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.0, emphysema: false },
            nodules: vec![nodule],
            exam: ExamAssessment { lung_rads: Category::FourB, management: "chest CT".into(), fleischner: None },
            prior: Some(PriorComparison {
                study_uid: "1.2.9".into(),
                series_uid: "1.2.9.1".into(),
                study_date: Some("20240131".into()),
                interval_days: Some(366.0),
                prior_to_current: pulmo_volume::Affine::IDENTITY,
                registration: RegistrationQuality { lung_dice: 0.95, similarity: 0.9 },
                unmatched_prior: vec![unmatched],
                prior_objects: Vec::new(),
            }),
            notes: vec!["a note".into()],
            processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
        };
        (findings, ct)
    }

    #[test]
    fn a_follow_up_page_names_the_prior_and_its_table_fits() {
        let (f, ct) = follow_up();
        let prior = prior_lines(f.prior.as_ref().unwrap(), &f.nodules);
        assert_eq!(prior, ["Compared with the CT of 2024-01-31, 366 days earlier.", "Prior nodules not seen: 2 (solid 20.0 mm, outside this scan, not evaluated)."]);
        assert_eq!(
            change_lines(&f.nodules[0]),
            ["since the prior: growing, +4.0 mm, volume +73%, VDT 463 d", "prior: 20.0 mm, 4189 mm3, Lung-RADS 4A"]
        );
        let table = nodule_table(&f);
        assert!(table[0].ends_with("change") && table[1].ends_with("+4.0 mm, VDT 463 d"), "{table:?}");
        let glyph = 16; // 8x8 glyphs at scale 2
        assert!(table.iter().all(|l| MARGIN as usize + glyph * l.chars().count() <= PAGE_WIDTH), "{table:?}");
        let page = summary_page(&f, &ct);
        let baseline = summary_page(&StudyFindings { prior: None, ..f.clone() }, &ct);
        assert_eq!((page.width, page.height), (PAGE_WIDTH, baseline.height + 20 * prior.len() + 16));
    }

    #[test]
    fn view_maps_pixels_and_indices_both_ways() {
        let g = Geometry::axial([0.0, 0.0, 0.0], [2.0, 0.5, 0.8]).unwrap();
        let view = View::around(&g, [40.0, 30.0, 10.0], 64.0, 320);
        let [y, x] = view.voxel(100.0, 200.0);
        let back = view.pixel([5.0, y, x]);
        assert!((back[0] - 100.0).abs() < 1e-9 && (back[1] - 200.0).abs() < 1e-9, "{back:?}");
        assert!((window(-600.0) as i32 - 127).abs() <= 1);
        assert_eq!(window(-2000.0), 0);
        assert_eq!(window(1000.0), 255);
    }
}
