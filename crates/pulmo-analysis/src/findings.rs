//! From measured nodules to what a report says about each: its zone, Lung-RADS v2022 category,
//! and Brock and Mayo malignancy estimates with their inputs and assumptions.

use pulmo_clinical::density::emphysema_present;
use pulmo_clinical::lung_rads::{self, Assessment, Features, Status};
use pulmo_clinical::risk::{self, BrockInputs, MayoInputs, RiskEstimate};
use serde::{Deserialize, Serialize};

use crate::lung::{Level, LungMask, Zone};
use crate::measure::Measurements;

/// What the DICOM header says about the patient (PatientAge, PatientSex), when it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientFacts {
    pub age_years: Option<f64>,
    pub female: Option<bool>,
}

impl PatientFacts {
    /// From DICOM PatientAge ("052Y", "006M") and PatientSex ("F", "M", "O").
    pub fn from_dicom(age: Option<&str>, sex: Option<&str>) -> PatientFacts {
        let age_years = age.and_then(|a| {
            let a = a.trim();
            let (number, unit) = a.split_at(a.len().saturating_sub(1));
            let n: f64 = number.parse().ok()?;
            match unit {
                "Y" => Some(n),
                "M" => Some(n / 12.0),
                "W" => Some(n / 52.0),
                "D" => Some(n / 365.25),
                _ => None,
            }
        });
        let female = match sex.map(str::trim) {
            Some("F") => Some(true),
            Some("M") => Some(false),
            _ => None,
        };
        PatientFacts { age_years, female }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleFinding {
    pub measurements: Measurements,
    pub zone: Option<Zone>,
    pub lung_rads: Assessment,
    /// `None` when the patient's age or sex is unknown (the models need both).
    pub brock: Option<RiskEstimate>,
    pub mayo: Option<RiskEstimate>,
}

/// The findings for the measured nodules of one baseline exam.
pub fn assess(nodules: Vec<Measurements>, lungs: &LungMask, patient: &PatientFacts) -> Vec<NoduleFinding> {
    let count = nodules.len() as u32;
    nodules
        .into_iter()
        .map(|m| {
            let zone = lungs.zone_at(m.centre_lps_mm);
            let upper = zone.is_some_and(|z| z.level == Level::Upper);
            NoduleFinding {
                lung_rads: lung_rads::assess(&lung_rads_nodule(&m)),
                brock: brock(&m, lungs, patient, upper, count),
                mayo: mayo(&m, patient, upper),
                zone,
                measurements: m,
            }
        })
        .collect()
}

/// Lung-RADS sees type, size and status. pulmo does not judge margins yet, so neither the
/// juxtapleural benign-shape rule (category 2 below 10 mm) nor the 4X upgrade is applied.
fn lung_rads_nodule(m: &Measurements) -> lung_rads::Nodule {
    lung_rads::Nodule {
        density: m.density,
        mean_diameter_mm: m.mean_diameter_mm,
        solid_component_mm: m.solid_core.map_or(0.0, |c| c.mean_diameter_mm),
        status: Status::Baseline,
        features: Features { benign: m.calcified, juxtapleural_benign_shape: false, suspicious: false },
    }
}

fn brock(m: &Measurements, lungs: &LungMask, patient: &PatientFacts, upper: bool, count: u32) -> Option<RiskEstimate> {
    let inputs = BrockInputs {
        age_years: patient.age_years?,
        female: patient.female?,
        family_history: None,
        emphysema: emphysema_present(lungs.laa950_fraction),
        size_mm: m.long_axis_mm,
        density: m.density,
        upper_lobe: upper,
        nodule_count: count,
        spiculation: None,
    };
    Some(risk::brock(&inputs))
}

fn mayo(m: &Measurements, patient: &PatientFacts, upper: bool) -> Option<RiskEstimate> {
    let inputs = MayoInputs {
        age_years: patient.age_years?,
        smoker: None,
        prior_extrathoracic_cancer: None,
        diameter_mm: m.long_axis_mm,
        upper_lobe: upper,
        spiculation: false,
    };
    Some(risk::mayo(&inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_facts_from_dicom_strings() {
        let p = PatientFacts::from_dicom(Some("052Y"), Some("F"));
        assert_eq!((p.age_years, p.female), (Some(52.0), Some(true)));
        assert_eq!(PatientFacts::from_dicom(Some("018M"), Some("M")).age_years, Some(1.5));
        assert_eq!(PatientFacts::from_dicom(Some("52"), Some("O")), PatientFacts { age_years: None, female: None });
        assert_eq!(PatientFacts::from_dicom(None, None), PatientFacts::default());
        assert_eq!(PatientFacts::from_dicom(Some(""), Some("")).age_years, None);
    }
}
