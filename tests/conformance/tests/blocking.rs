//! The conformance suite on blocking threads (`std::io`, no async runtime).

use throttle_conformance::blocking;

#[test]
fn one_stream_accuracy() {
    blocking::one_stream_accuracy();
}

#[test]
fn reader_is_limited() {
    blocking::reader_is_limited();
}

#[test]
fn connection_limit_under_server_limit_and_fairness() {
    blocking::connection_limit_under_server_limit_and_fairness();
}

#[test]
fn limit_change_reaches_blocked_writer() {
    blocking::limit_change_reaches_blocked_writer();
}

#[test]
fn idle_reader_holds_no_tokens() {
    blocking::idle_reader_holds_no_tokens();
}

#[test]
fn requests_from_threads_share_node() {
    blocking::requests_from_threads_share_node();
}
