//! What the DICOM header says about the patient that the risk models need, and nothing more
//! (no names or IDs: findings are logged and written to files).

use serde::{Deserialize, Serialize};

/// PatientAge and PatientSex, when the header has them.
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
