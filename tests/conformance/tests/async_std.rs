//! The conformance suite on async_std: the std runtimes' list ([`throttle_conformance::std_suite!`]).

throttle_conformance::std_suite!(throttle_conformance::runtimes::AsyncStd);
