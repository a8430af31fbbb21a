//! Query/retrieve SCU tests: against a real Orthanc (find, move, its failure statuses), and
//! against a scripted SCP for the responses Orthanc never sends (warnings, malformed answers).

#[allow(dead_code)]
#[path = "../dcmtk/common.rs"]
mod common;
mod orthanc;
mod scripted;

use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Our AE title: the SCU calls as PULMO and PULMO is the move destination (our SCP), as
/// Orthanc's DicomModalities say.
const PULMO: &str = "PULMO";
