//! Test helpers (simulator).
