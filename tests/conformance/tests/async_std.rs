//! The conformance suite on async_std.

throttle_conformance::suite!(throttle_conformance::runtimes::AsyncStd);
