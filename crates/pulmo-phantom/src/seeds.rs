//! Deterministic randomness: labelled sub-seeds, per-purpose ChaCha streams and DICOM UIDs.
//! Everything random in a phantom comes from here, so a seed reproduces a study bit for bit.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a cheap bijective mixer with good avalanche.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit value derived from a seed and a label. Hand-written rather than std's hasher
/// because std does not promise the same output across Rust releases.
pub fn sub_seed(seed: u64, label: &str) -> u64 {
    let mut h = mix64(seed ^ 0x5155_4c4d_4f50_4841);
    for chunk in label.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    mix64(h ^ label.len() as u64)
}

/// An independent random stream for one purpose ("vessels/left/artery", "noise/17", ...).
pub fn rng(seed: u64, label: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(sub_seed(seed, label))
}

/// A DICOM UID "2.25.<128-bit decimal>" (ISO/IEC 9834-8 form): at most 44 characters and,
/// being the decimal of an integer, never a component with a leading zero.
pub fn uid(seed: u64, label: &str) -> String {
    let hi = sub_seed(seed, label) as u128;
    let lo = sub_seed(seed ^ 0xA5A5_A5A5_A5A5_A5A5, label) as u128;
    format!("2.25.{}", (hi << 64) | lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn is_valid_uid(u: &str) -> bool {
        u.len() <= 64
            && u.split('.')
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && (c == "0" || !c.starts_with('0')))
    }

    #[test]
    fn uids_are_valid_distinct_and_stable() {
        let a = uid(42, "study");
        assert!(is_valid_uid(&a), "{a}");
        assert_eq!(a, uid(42, "study"));
        assert_ne!(a, uid(43, "study"));
        assert_ne!(a, uid(42, "series"));
        for s in 0..200 {
            assert!(is_valid_uid(&uid(s, &format!("sop/{s}"))));
        }
    }

    #[test]
    fn sub_seeds_depend_on_every_label_byte() {
        assert_ne!(sub_seed(1, "noise/1"), sub_seed(1, "noise/2"));
        assert_ne!(sub_seed(1, "abcdefgh"), sub_seed(1, "abcdefgh\0"));
    }
}
