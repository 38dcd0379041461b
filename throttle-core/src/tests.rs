//! Unit tests of the tree as a whole (per-module tests sit at the bottom of each file).
