//! The conformance suite on tokio: the std runtimes' list ([`throttle_conformance::std_suite!`]).

throttle_conformance::std_suite!(throttle_conformance::runtimes::Tokio);
