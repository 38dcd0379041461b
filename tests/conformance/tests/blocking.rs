//! The conformance suite on blocking threads (`std::io`, no async runtime): the blocking
//! scenarios; the async ones with the reason they do not run here.

throttle_conformance::suite!(throttle_conformance::Blocking;
    run: blocking_one_stream_accuracy, reader_is_limited,
        connection_limit_under_server_limit_and_fairness, limit_change_reaches_blocked_writer,
        idle_reader_holds_no_tokens, requests_from_threads_share_node;
    skip:
    one_stream_accuracy, connection_limit_under_server_limit,
    per_direction_server_limits_each_direction, fairness_of_twenty_connections,
    limit_change_reaches_sleeping_writer, weighted_groups_share_server,
    dropped_stream_hands_over_to_other_connection,
    dropped_write_future_does_not_stall_others, idle_connection_holds_no_tokens,
    connection_close_frees_leaves, unlimited_skips_tree,
    requests_from_many_tasks_share_node, weighted_one_leaf_groups_8k_writes_at_60_mib,
    weighted_groups_of_three_8k_writes_at_60_mib, window_tier_admits_at_most_n_in_any_window,
    listener_groups_share_by_weight,
    link_raw_throughput_reported, write_100kib_per_s_within_10_percent,
    write_1mib_per_s_within_10_percent, write_10mib_per_s_within_10_percent_or_scaled_to_link,
    read_1mib_per_s_within_10_percent, two_connections_share_server_limit_fairly,
    eight_connections_share_server_limit_fairly, limit_change_reaches_sleeping_writer_in_group,
    dropped_waiting_write_cancels_other_leaf_gets_tokens,
    idle_reader_holds_no_tokens_busy_one_gets_server_rate,
    stalled_reader_holds_nothing_and_pays_only_what_moved,
    server_per_connection_limit_under_server_limit,
    server_connection_limit_change_reaches_sleeping_connection,
    weighted_groups_share_server_limit, unlimited_path_counts_every_byte,
    request_deadline_fails_fast_and_reserves_nothing,
    request_cancel_refunds_to_other_leaf =>
        "async scenarios (futures, join/select or spawn); threads have no executor: the \
         blocking_* / *_blocked_* scenarios hold the same contracts with std::io";
);
