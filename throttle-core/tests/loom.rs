//! loom models of the sharing layer (written next).
#![cfg(loom)]
