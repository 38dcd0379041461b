//! A limit's name and the Redis keys it maps to.
//!
//! Every key of one limit carries the same hash tag, `{thr:<name>}`, so that the scripts,
//! which touch several keys at once, are legal on Redis Cluster (all keys in one slot) and
//! cost nothing on a standalone or Sentinel-managed server.

use core::fmt;

/// Longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The name of one shared limit: 1 to [`MAX_NAME_LEN`] bytes, no `{`, `}` (they would change
/// the hash tag and split the limit's keys across Cluster slots), no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LimitName(String);

/// Why a [`LimitName`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameError {
    /// The name was empty.
    Empty,
    /// The name was longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The name contained `{` or `}`, which would break the keys' hash tag.
    HashTag,
    /// The name contained a control character.
    Control,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "a limit name must not be empty",
            NameError::TooLong => "a limit name must be at most 128 bytes",
            NameError::HashTag => "a limit name must not contain '{' or '}' (Redis hash tags)",
            NameError::Control => "a limit name must not contain control characters",
        })
    }
}

impl core::error::Error for NameError {}

impl LimitName {
    /// Checks `name` (see the type's rules).
    pub fn new(name: &str) -> Result<LimitName, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if name.contains(['{', '}']) {
            return Err(NameError::HashTag);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        Ok(LimitName(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lease state's global hash: rate, version, epoch, learning deadline, last time.
    pub fn global_key(&self) -> String {
        format!("{{thr:{}}}:g", self.0)
    }

    /// The lease state's member hash: one field per process.
    pub fn members_key(&self) -> String {
        format!("{{thr:{}}}:m", self.0)
    }

    /// The permit state's hash (seed 003's throttle).
    pub fn permits_key(&self) -> String {
        format!("{{thr:{}}}:p", self.0)
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_with_hash_tag_is_refused() {
        assert_eq!(LimitName::new("a{b}"), Err(NameError::HashTag));
        assert_eq!(LimitName::new("}"), Err(NameError::HashTag));
    }

    #[test]
    fn name_empty_long_or_control_is_refused() {
        assert_eq!(LimitName::new(""), Err(NameError::Empty));
        assert_eq!(LimitName::new(&"x".repeat(129)), Err(NameError::TooLong));
        assert_eq!(LimitName::new("a\nb"), Err(NameError::Control));
    }

    #[test]
    fn name_keys_share_one_hash_tag() {
        let n = LimitName::new("egress:eu").unwrap();
        for k in [n.global_key(), n.members_key(), n.permits_key()] {
            assert!(k.starts_with("{thr:egress:eu}:"), "{k}");
        }
    }
}
