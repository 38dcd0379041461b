//! The conformance suite on tokio.

throttle_conformance::suite!(throttle_conformance::runtimes::Tokio);
