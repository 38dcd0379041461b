//! The conformance suite on smol: the std runtimes' list ([`throttle_conformance::std_suite!`]).

throttle_conformance::std_suite!(throttle_conformance::runtimes::Smol);
