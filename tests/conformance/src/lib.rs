//! Cross-runtime conformance suite (see tests/).
