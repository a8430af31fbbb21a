//! Association policy: the AE titles we answer to, who may call us and from where, limits,
//! and the abstract/transfer syntaxes we accept. The binary's TOML config deserialises into it.

use std::net::IpAddr;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{MAXIMUM_PDU_SIZE, MINIMUM_PDU_SIZE};
use serde::{Deserialize, Deserializer};

use crate::NetError;

/// One calling AE title allowed to open associations, optionally pinned to an IP address.
/// The same AE title may appear several times (one entry per address it may call from).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedPeer {
    pub ae_title: String,
    /// `None` (key absent) = any address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

/// Everything the SCP decides an association by. Durations are written as seconds in TOML
/// (`read_timeout = 60` or `2.5`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodePolicy {
    /// Called AE titles we answer to; any other called AE is rejected.
    pub ae_titles: Vec<String>,
    /// Allowed calling AEs. An EMPTY list accepts any calling AE from any address
    /// (convenient on localhost; list the modalities in production).
    pub peers: Vec<AllowedPeer>,
    /// Concurrent associations; one more gets a transient reject (local limit exceeded).
    pub max_associations: usize,
    /// Largest P-DATA PDU we receive (announced in A-ASSOCIATE-AC).
    pub max_pdu: u32,
    #[serde(deserialize_with = "seconds")]
    pub read_timeout: Duration,
    #[serde(deserialize_with = "seconds")]
    pub write_timeout: Duration,
    /// Accepted storage SOP classes. Verification (C-ECHO) is always accepted.
    pub sop_classes: Vec<String>,
    /// Accepted transfer syntaxes; those this build cannot decode are dropped at start
    /// (see [`NodePolicy::decodable_transfer_syntaxes`]).
    pub transfer_syntaxes: Vec<String>,
    /// Largest data set accepted in memory; a bigger one is drained and refused with 0xA700.
    pub max_object_bytes: u64,
    /// After shutdown is requested, how long in-flight associations may continue.
    #[serde(deserialize_with = "seconds")]
    pub shutdown_grace: Duration,
}

/// Why the policy refuses an association request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    CalledAeNotRecognized,
    CallingAeUnknown,
    /// The calling AE is listed, but not for the address it connected from.
    CallingAeWrongAddress,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RejectReason::CalledAeNotRecognized => "called AE title not served here",
            RejectReason::CallingAeUnknown => "calling AE title not in the allowed peers",
            RejectReason::CallingAeWrongAddress => "calling AE title not allowed from this address",
        })
    }
}

/// Storage classes pulmo receives by default: CT, and the objects pulmo itself writes
/// (so that priors stored back in the PACS can be received again).
pub const DEFAULT_SOP_CLASSES: &[&str] = &[
    uids::CT_IMAGE_STORAGE,
    uids::ENHANCED_CT_IMAGE_STORAGE,
    uids::SEGMENTATION_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
];

/// Candidate transfer syntaxes; the decodable subset is offered.
pub const DEFAULT_TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.2", // Explicit VR Big Endian (retired, still sent by old modalities)
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LOSSLESS,
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::RLE_LOSSLESS,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
];

impl Default for NodePolicy {
    fn default() -> Self {
        NodePolicy {
            ae_titles: vec!["PULMO".to_string()],
            peers: Vec::new(),
            max_associations: 16,
            // 256 KiB PDUs: fewer PDUs per slice than DCMTK's 16 KiB default.
            max_pdu: 262_138,
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            sop_classes: DEFAULT_SOP_CLASSES.iter().map(|s| s.to_string()).collect(),
            transfer_syntaxes: DEFAULT_TRANSFER_SYNTAXES.iter().map(|s| s.to_string()).collect(),
            max_object_bytes: 1 << 30,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl NodePolicy {
    /// Checks values the network code relies on; `serve` calls it before accepting anything.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |why: String| Err(NetError::Config(why));
        if self.ae_titles.is_empty() {
            return bad("ae_titles is empty: no called AE title would be accepted".into());
        }
        if let Some(ae) = self
            .ae_titles
            .iter()
            .chain(self.peers.iter().map(|p| &p.ae_title))
            .find(|ae| !valid_ae_title(ae))
        {
            return bad(format!(
                "invalid AE title {ae:?} (1-16 characters, no backslash or control characters)"
            ));
        }
        if self.max_associations == 0 {
            return bad("max_associations must be at least 1".into());
        }
        if !(MINIMUM_PDU_SIZE..=MAXIMUM_PDU_SIZE).contains(&self.max_pdu) {
            return bad(format!(
                "max_pdu {} outside {MINIMUM_PDU_SIZE}..={MAXIMUM_PDU_SIZE}",
                self.max_pdu
            ));
        }
        if self.read_timeout.is_zero() || self.write_timeout.is_zero() {
            return bad("read_timeout and write_timeout must be positive".into());
        }
        if self.decodable_transfer_syntaxes().is_empty() {
            return bad(format!(
                "none of the transfer syntaxes {:?} can be decoded by this build",
                self.transfer_syntaxes
            ));
        }
        Ok(())
    }

    /// The configured transfer syntaxes this build can fully decode (data set and pixel data).
    /// dicom-ul treats codec-less stubs as supported, so negotiation must only see this list.
    pub fn decodable_transfer_syntaxes(&self) -> Vec<String> {
        self.transfer_syntaxes
            .iter()
            .map(|uid| trim_uid(uid).to_string())
            .filter(|uid| TransferSyntaxRegistry.get(uid).is_some_and(|ts| ts.can_decode_all()))
            .collect()
    }

    /// Abstract syntaxes offered: Verification plus the configured storage classes.
    pub fn abstract_syntaxes(&self) -> Vec<String> {
        let mut all = vec![uids::VERIFICATION.to_string()];
        for uid in &self.sop_classes {
            let uid = trim_uid(uid).to_string();
            if !all.contains(&uid) {
                all.push(uid);
            }
        }
        all
    }

    /// The association decision by AE titles and peer address (called AE first).
    pub fn check_association(&self, called_ae: &str, calling_ae: &str, ip: IpAddr) -> Result<(), RejectReason> {
        if !self.ae_titles.iter().any(|ae| ae.trim() == called_ae.trim()) {
            return Err(RejectReason::CalledAeNotRecognized);
        }
        if self.peers.is_empty() {
            return Ok(());
        }
        let ip = ip.to_canonical();
        let mut entries = self
            .peers
            .iter()
            .filter(|p| p.ae_title.trim() == calling_ae.trim())
            .peekable();
        if entries.peek().is_none() {
            return Err(RejectReason::CallingAeUnknown);
        }
        if entries.any(|p| p.ip.is_none_or(|allowed| allowed.to_canonical() == ip)) {
            Ok(())
        } else {
            Err(RejectReason::CallingAeWrongAddress)
        }
    }
}

/// AE titles: 1..=16 characters of the default repertoire, no backslash, not all spaces.
pub fn valid_ae_title(ae: &str) -> bool {
    let t = ae.trim();
    !t.is_empty() && ae.len() <= 16 && ae.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\')
}

pub(crate) fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim()
}

/// Durations in config are plain seconds (integer or fractional).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_with_peers(peers: Vec<AllowedPeer>) -> NodePolicy {
        NodePolicy {
            peers,
            ..NodePolicy::default()
        }
    }

    #[test]
    fn empty_peer_list_accepts_any_calling_ae() {
        let p = NodePolicy::default();
        assert_eq!(
            p.check_association("PULMO", "ANYONE", "10.1.2.3".parse().unwrap()),
            Ok(())
        );
        assert_eq!(
            p.check_association("OTHER", "ANYONE", "10.1.2.3".parse().unwrap()),
            Err(RejectReason::CalledAeNotRecognized)
        );
    }

    #[test]
    fn peers_are_checked_by_title_and_address() {
        let p = policy_with_peers(vec![
            AllowedPeer {
                ae_title: "CT1".into(),
                ip: Some("127.0.0.2".parse().unwrap()),
            },
            AllowedPeer {
                ae_title: "CT1".into(),
                ip: Some("10.0.0.9".parse().unwrap()),
            },
            AllowedPeer {
                ae_title: "PACS".into(),
                ip: None,
            },
        ]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(p.check_association("PULMO", "CT1", "10.0.0.9".parse().unwrap()), Ok(()));
        assert_eq!(
            p.check_association("PULMO", "CT1", lo),
            Err(RejectReason::CallingAeWrongAddress)
        );
        assert_eq!(
            p.check_association("PULMO", "CT2", lo),
            Err(RejectReason::CallingAeUnknown)
        );
        assert_eq!(p.check_association("PULMO", "PACS", lo), Ok(()));
        // An IPv4 peer seen through a dual-stack socket still matches its IPv4 entry.
        assert_eq!(
            p.check_association("PULMO", "CT1", "::ffff:10.0.0.9".parse().unwrap()),
            Ok(())
        );
    }

    #[test]
    fn default_is_valid_and_offers_only_decodable_syntaxes() {
        let p = NodePolicy::default();
        p.validate().unwrap();
        let ts = p.decodable_transfer_syntaxes();
        assert!(ts.contains(&uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()));
        assert!(ts.contains(&uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string()));
        let bogus = NodePolicy {
            transfer_syntaxes: vec!["1.2.3.4.5".into()],
            ..NodePolicy::default()
        };
        assert!(bogus.decodable_transfer_syntaxes().is_empty());
        assert!(matches!(bogus.validate(), Err(NetError::Config(_))));
    }

    #[test]
    fn toml_maps_onto_the_policy() {
        let p: NodePolicy = toml::from_str(
            r#"
            ae_titles = ["PULMO", "PULMO_RESEARCH"]
            max_associations = 4
            read_timeout = 2.5
            peers = [ { ae_title = "CT1", ip = "10.0.0.5" }, { ae_title = "PACS" } ]
            "#,
        )
        .unwrap();
        assert_eq!(p.ae_titles.len(), 2);
        assert_eq!(p.read_timeout, Duration::from_millis(2500));
        assert_eq!(p.write_timeout, NodePolicy::default().write_timeout);
        assert_eq!(p.peers[0].ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(p.peers[1].ip, None);
        assert!(
            toml::from_str::<NodePolicy>("max_asociations = 4").is_err(),
            "typos are reported"
        );
        assert!(toml::from_str::<NodePolicy>("read_timeout = -1").is_err());
    }

    #[test]
    fn validate_rejects_bad_values() {
        let cases = [
            NodePolicy {
                ae_titles: vec![],
                ..NodePolicy::default()
            },
            NodePolicy {
                ae_titles: vec!["WAY_TOO_LONG_AE_TITLE".into()],
                ..NodePolicy::default()
            },
            NodePolicy {
                max_associations: 0,
                ..NodePolicy::default()
            },
            NodePolicy {
                max_pdu: 100,
                ..NodePolicy::default()
            },
            NodePolicy {
                read_timeout: Duration::ZERO,
                ..NodePolicy::default()
            },
        ];
        for c in cases {
            assert!(matches!(c.validate(), Err(NetError::Config(_))), "{c:?}");
        }
    }
}
