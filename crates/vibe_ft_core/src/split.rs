//! Deterministic train/validation split.
//!
//! An example's split, when not given, is a pure function of its content hash
//! and the dataset's validation share: the same conversation always lands in the
//! same split, on every machine, after every dump and restore.

/// The two splits a provider job takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }

    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "validation" => Some(Split::Validation),
            _ => None,
        }
    }
}

/// `validation` when the first 8 bytes of `hash`, read as a fraction of 2^64,
/// fall below `validation_share`; `train` otherwise. A share of 0 never picks
/// validation; hashes shorter than 8 bytes are zero-padded.
pub fn for_hash(hash: &[u8], validation_share: f64) -> Split {
    let mut b = [0u8; 8];
    let n = hash.len().min(8);
    b[..n].copy_from_slice(&hash[..n]);
    let x = u64::from_be_bytes(b) as f64 / 18_446_744_073_709_551_616.0; // 2^64
    if x < validation_share {
        Split::Validation
    } else {
        Split::Train
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_proportional() {
        assert_eq!(for_hash(&[0; 32], 0.0), Split::Train);
        assert_eq!(for_hash(&[0; 32], 0.1), Split::Validation);
        assert_eq!(for_hash(&[0xff; 32], 0.99), Split::Train);
        // Over many pseudo-random hashes the share is close to the target.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut val = 0;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if for_hash(&state.to_be_bytes(), 0.2) == Split::Validation {
                val += 1;
            }
        }
        assert!((19_000..21_000).contains(&val), "{val}");
        assert_eq!(Split::parse("train"), Some(Split::Train));
        assert_eq!(Split::parse("Train"), None);
        assert_eq!(Split::Validation.as_str(), "validation");
    }
}
