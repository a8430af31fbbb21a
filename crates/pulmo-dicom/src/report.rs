//! pulmo's own TID 1500 report read back (the SR `write::sr` makes): the prior findings a
//! follow-up needs when pulmo's findings on that exam are not held here but its SR is.
//!
//! Each nodule's volumetric group gives its tracking identity, sizes, volume, density,
//! Lung-RADS category and, when the report was itself a follow-up, the values on the exam
//! before; its planar group's long axis on the key slice gives its position (the midpoint), so
//! the report is read against the prior's CT series, whose slices it references.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use pulmo_clinical::dates;
use pulmo_clinical::density::Density;
use pulmo_clinical::lung_rads::Category;
use pulmo_findings::{PriorFindings, PriorNodule, PriorObject, PriorTrack, SourceSeries, TrackPoint};
use pulmo_volume::Vec3;

use crate::attrs::{floats, int, items, string};
use crate::write::seg::SEGMENTATION_STORAGE;
use crate::write::sr::{self, Code, COMPREHENSIVE_3D_SR_STORAGE, PRIVATE_SCHEME};
use crate::DicomFile;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: not a pulmo nodule report: {reason}", path.display())]
    NotPulmoReport { path: PathBuf, reason: String },
    #[error("{}: {field}: {reason}", path.display())]
    Content { path: PathBuf, field: String, reason: String },
}

/// A prior exam as pulmo's report of it says: the findings, the report and the SEG it points
/// at (which the next report cites as evidence), and when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorReport {
    pub findings: PriorFindings,
    pub objects: Vec<PriorObject>,
    /// ContentDate + ContentTime ("YYYYMMDDHHMMSS"), to pick the latest of several reports.
    pub written: String,
}

/// Reads `file`, pulmo's report on the CT series `ct` (the prior's, as loaded for registration).
pub fn read_prior_report(file: &DicomFile, ct: &SourceSeries) -> Result<PriorReport, ReportError> {
    let reader = Reader { path: &file.path, root: &file.object };
    reader.check_is_pulmo_report(ct)?;
    let groups = reader.measurement_groups()?;
    let mut nodules: Vec<NoduleValues> = Vec::new();
    for group in groups {
        let uid = reader.required(child(group, sr::TRACKING_UID).and_then(|i| string(i, tags::UID)), "measurement group", "tracking UID")?;
        let index = match nodules.iter().position(|n| n.tracking_uid == uid) {
            Some(i) => i,
            None => {
                nodules.push(NoduleValues { tracking_uid: uid, ..NoduleValues::default() });
                nodules.len() - 1
            }
        };
        reader.read_group(group, ct, &mut nodules[index])?;
    }
    let date = string(reader.root, tags::STUDY_DATE);
    let earlier_study = reader.pertinent_study();
    let tracks = nodules.iter().map(|n| reader.track(n, date.as_deref(), &earlier_study)).collect::<Result<_, _>>()?;
    let findings = PriorFindings { study_uid: ct.study_uid.clone(), series_uid: ct.series_uid.clone(), study_date: date, nodules: tracks };
    let written = format!(
        "{}{}",
        string(reader.root, tags::CONTENT_DATE).unwrap_or_default(),
        string(reader.root, tags::CONTENT_TIME).unwrap_or_default()
    );
    Ok(PriorReport { findings, objects: reader.objects(&nodules, &ct.study_uid), written })
}

/// What the groups of one tracking UID say.
#[derive(Debug, Default)]
struct NoduleValues {
    tracking_uid: String,
    id: Option<u32>,
    long_axis_mm: Option<f64>,
    short_axis_mm: Option<f64>,
    mean_diameter_mm: Option<f64>,
    volume_mm3: Option<f64>,
    solid_mean_diameter_mm: Option<f64>,
    density: Option<Density>,
    lung_rads: Option<Category>,
    prior_diameter_mm: Option<f64>,
    prior_volume_mm3: Option<f64>,
    prior_interval_days: Option<f64>,
    centre_lps_mm: Option<Vec3>,
    segmentation_uid: Option<String>,
}

struct Reader<'a> {
    path: &'a Path,
    root: &'a InMemDicomObject,
}

impl Reader<'_> {
    fn not_pulmo(&self, reason: impl Into<String>) -> ReportError {
        ReportError::NotPulmoReport { path: self.path.to_owned(), reason: reason.into() }
    }

    fn content(&self, field: impl Into<String>, reason: impl Into<String>) -> ReportError {
        ReportError::Content { path: self.path.to_owned(), field: field.into(), reason: reason.into() }
    }

    fn required<T>(&self, value: Option<T>, field: &str, what: &str) -> Result<T, ReportError> {
        value.ok_or_else(|| self.content(field, format!("no {what}")))
    }

    /// A Comprehensive 3D SR in pulmo's scheme, with TID 1500's root, on `ct`'s study.
    fn check_is_pulmo_report(&self, ct: &SourceSeries) -> Result<(), ReportError> {
        let class = string(self.root, tags::SOP_CLASS_UID).unwrap_or_default();
        if class != COMPREHENSIVE_3D_SR_STORAGE {
            return Err(self.not_pulmo(format!("SOP class {class:?} is not Comprehensive 3D SR")));
        }
        let schemes = items(self.root, tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE);
        if !schemes.iter().any(|s| string(s, tags::CODING_SCHEME_DESIGNATOR).as_deref() == Some(PRIVATE_SCHEME)) {
            return Err(self.not_pulmo(format!("it declares no {PRIVATE_SCHEME} coding scheme")));
        }
        if !is(self.root, sr::REPORT) {
            return Err(self.not_pulmo("its root is not an Imaging Measurement Report (126000, DCM)"));
        }
        let study = string(self.root, tags::STUDY_INSTANCE_UID).unwrap_or_default();
        if study != ct.study_uid {
            return Err(self.content("StudyInstanceUID", format!("{study:?} is not the prior CT's study {}", ct.study_uid)));
        }
        Ok(())
    }

    /// The measurement groups under Imaging Measurements (none when no nodule was found).
    fn measurement_groups(&self) -> Result<Vec<&InMemDicomObject>, ReportError> {
        let measurements = children(self.root).iter().find(|i| is(i, sr::IMAGING_MEASUREMENTS));
        Ok(measurements.map(|m| children(m).iter().filter(|g| is(g, sr::MEASUREMENT_GROUP)).collect()).unwrap_or_default())
    }

    /// Adds what `group` says to `nodule`: the volumetric group's values, or the planar
    /// group's position.
    fn read_group(&self, group: &InMemDicomObject, ct: &SourceSeries, nodule: &mut NoduleValues) -> Result<(), ReportError> {
        let field = format!("measurement group of tracking UID {}", nodule.tracking_uid);
        if let Some(id) = child(group, sr::TRACKING_IDENTIFIER).and_then(|i| string(i, tags::TEXT_VALUE)) {
            nodule.id = id.strip_prefix("Nodule ").and_then(|n| n.trim().parse().ok()).or(nodule.id);
        }
        match template(group).as_deref() {
            Some("1411") => self.read_volumetric(group, ct, nodule, &field),
            Some("1410") => {
                let region = self.required(child(group, sr::IMAGE_REGION), &field, "image region")?;
                nodule.centre_lps_mm = Some(self.long_axis_midpoint(region, ct, &field)?);
                Ok(())
            }
            other => Err(self.content(field, format!("template {other:?} is neither TID 1410 nor TID 1411"))),
        }
    }

    fn read_volumetric(&self, group: &InMemDicomObject, ct: &SourceSeries, n: &mut NoduleValues, field: &str) -> Result<(), ReportError> {
        if let Some(series) = child(group, sr::SOURCE_SERIES_FOR_SEGMENTATION).and_then(|i| string(i, tags::UID)).filter(|s| *s != ct.series_uid) {
            return Err(self.content(field, format!("measured on series {series}, not the prior CT series {}", ct.series_uid)));
        }
        for item in children(group) {
            let value = || items(item, tags::MEASURED_VALUE_SEQUENCE).first().and_then(|v| floats(v, tags::NUMERIC_VALUE)).and_then(|v| v.first().copied());
            let slot = match concept_of(item) {
                c if c == code(sr::LONG_AXIS) => &mut n.long_axis_mm,
                c if c == code(sr::SHORT_AXIS) => &mut n.short_axis_mm,
                c if c == code(sr::DIAMETER) => &mut n.mean_diameter_mm,
                c if c == code(sr::VOLUME) => &mut n.volume_mm3,
                c if c == code(sr::SOLID_DIAMETER) => &mut n.solid_mean_diameter_mm,
                c if c == code(sr::PRIOR_DIAMETER) => &mut n.prior_diameter_mm,
                c if c == code(sr::PRIOR_VOLUME) => &mut n.prior_volume_mm3,
                c if c == code(sr::PRIOR_INTERVAL) => &mut n.prior_interval_days,
                c if c == code(sr::DENSITY) => {
                    let value = coded_value(item).unwrap_or_default();
                    n.density = Some(self.required(Density::ALL.into_iter().find(|d| sr::density_names(*d).0 == value), field, &format!("density class {value:?}"))?);
                    continue;
                }
                c if c == code(sr::LUNG_RADS) => {
                    let value = coded_value(item).unwrap_or_default();
                    let category = value.strip_prefix(sr::LUNG_RADS_PREFIX).and_then(Category::from_code);
                    n.lung_rads = Some(self.required(category, field, &format!("Lung-RADS category {value:?}"))?);
                    continue;
                }
                c if c == code(sr::REFERENCED_SEGMENT) => {
                    n.segmentation_uid = items(item, tags::REFERENCED_SOP_SEQUENCE).first().and_then(|r| string(r, tags::REFERENCED_SOP_INSTANCE_UID));
                    continue;
                }
                _ => continue,
            };
            *slot = Some(self.required(value().filter(|v| v.is_finite()), field, "numeric value of a measurement")?);
        }
        Ok(())
    }

    /// The midpoint of the long axis drawn on the key slice, in LPS mm: the POLYLINE's image
    /// coordinates put a pixel's centre at its index + 0.5.
    fn long_axis_midpoint(&self, region: &InMemDicomObject, ct: &SourceSeries, field: &str) -> Result<Vec3, ReportError> {
        let points = self.required(floats(region, tags::GRAPHIC_DATA).filter(|p| p.len() == 4), field, "long axis of two points")?;
        let slice = children(region).iter().find_map(|i| items(i, tags::REFERENCED_SOP_SEQUENCE).first());
        let slice = self.required(slice, field, "key slice")?;
        let uid = string(slice, tags::REFERENCED_SOP_INSTANCE_UID).unwrap_or_default();
        // The frame number is written for multi-frame images only, as the slice's source frame.
        let frame = int(slice, tags::REFERENCED_FRAME_NUMBER);
        let z = ct.slices.iter().position(|s| s.sop_instance_uid == uid && frame.is_none_or(|f| i64::from(s.frame) == f));
        let z = z.ok_or_else(|| self.content(field, format!("key slice {uid} is not a slice of the prior CT series {}", ct.series_uid)))?;
        let column = (points[0] + points[2]) / 2.0 - 0.5;
        let row = (points[1] + points[3]) / 2.0 - 0.5;
        Ok(ct.geometry.index_to_lps([z as f64, row, column]))
    }

    /// The study the report cites as its own prior, for the track's earlier point.
    fn pertinent_study(&self) -> String {
        let studies = items(self.root, tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE);
        studies.first().and_then(|s| string(s, tags::STUDY_INSTANCE_UID)).unwrap_or_default()
    }

    fn track(&self, n: &NoduleValues, date: Option<&str>, earlier_study: &str) -> Result<PriorTrack, ReportError> {
        let field = format!("nodule with tracking UID {}", n.tracking_uid);
        let need = |v: Option<f64>, what: &str| self.required(v, &field, what);
        let nodule = PriorNodule {
            id: self.required(n.id, &field, "tracking identifier \"Nodule N\"")?,
            tracking_uid: n.tracking_uid.clone(),
            centre_lps_mm: self.required(n.centre_lps_mm, &field, "long axis on a key slice (TID 1410 group)")?,
            density: self.required(n.density, &field, "density class")?,
            long_axis_mm: need(n.long_axis_mm, "long axis")?,
            short_axis_mm: need(n.short_axis_mm, "short axis")?,
            mean_diameter_mm: need(n.mean_diameter_mm, "mean diameter")?,
            volume_mm3: need(n.volume_mm3, "volume")?,
            solid_core_mean_diameter_mm: n.solid_mean_diameter_mm,
            lung_rads: self.required(n.lung_rads, &field, "Lung-RADS category")?,
        };
        let earlier = match (n.prior_diameter_mm, n.prior_volume_mm3) {
            (Some(mean_diameter_mm), Some(volume_mm3)) => vec![TrackPoint {
                study_uid: earlier_study.to_string(),
                study_date: date.zip(n.prior_interval_days).and_then(|(d, days)| dates::add_days(d, -(days.round() as i64))),
                mean_diameter_mm,
                volume_mm3,
            }],
            _ => Vec::new(),
        };
        Ok(PriorTrack { nodule, history: earlier })
    }

    /// This report and the SEG its groups reference, as the next report cites them.
    fn objects(&self, nodules: &[NoduleValues], study_uid: &str) -> Vec<PriorObject> {
        let report = PriorObject {
            study_uid: study_uid.to_string(),
            series_uid: string(self.root, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
            sop_class_uid: COMPREHENSIVE_3D_SR_STORAGE.into(),
            sop_instance_uid: string(self.root, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        };
        let seg = nodules.iter().find_map(|n| n.segmentation_uid.clone()).and_then(|uid| {
            let series = self.evidence_series(&uid)?;
            Some(PriorObject { study_uid: study_uid.to_string(), series_uid: series, sop_class_uid: SEGMENTATION_STORAGE.into(), sop_instance_uid: uid })
        });
        std::iter::once(report).chain(seg).collect()
    }

    /// The series of instance `uid` in the report's evidence list.
    fn evidence_series(&self, uid: &str) -> Option<String> {
        items(self.root, tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE)
            .iter()
            .flat_map(|study| items(study, tags::REFERENCED_SERIES_SEQUENCE))
            .find(|series| items(series, tags::REFERENCED_SOP_SEQUENCE).iter().any(|s| string(s, tags::REFERENCED_SOP_INSTANCE_UID).as_deref() == Some(uid)))
            .and_then(|series| string(series, tags::SERIES_INSTANCE_UID))
    }
}

fn children(item: &InMemDicomObject) -> &[InMemDicomObject] {
    items(item, tags::CONTENT_SEQUENCE)
}

/// The first child of `group` whose concept is `concept`.
fn child(group: &InMemDicomObject, concept: Code) -> Option<&InMemDicomObject> {
    children(group).iter().find(|i| is(i, concept))
}

/// A content item's concept name as (value, scheme).
fn concept_of(item: &InMemDicomObject) -> (String, String) {
    let name = items(item, tags::CONCEPT_NAME_CODE_SEQUENCE).first();
    let part = |tag| name.and_then(|n| string(n, tag)).unwrap_or_default();
    (part(tags::CODE_VALUE), part(tags::CODING_SCHEME_DESIGNATOR))
}

fn code((value, scheme, _): Code) -> (String, String) {
    (value.to_string(), scheme.to_string())
}

fn is(item: &InMemDicomObject, concept: Code) -> bool {
    concept_of(item) == code(concept)
}

/// A CODE item's value (its concept code's value).
fn coded_value(item: &InMemDicomObject) -> Option<String> {
    items(item, tags::CONCEPT_CODE_SEQUENCE).first().and_then(|c| string(c, tags::CODE_VALUE))
}

fn template(group: &InMemDicomObject) -> Option<String> {
    items(group, tags::CONTENT_TEMPLATE_SEQUENCE).first().and_then(|t| string(t, tags::TEMPLATE_IDENTIFIER))
}
