//! The conformance suite on smol.

throttle_conformance::suite!(throttle_conformance::runtimes::Smol);
