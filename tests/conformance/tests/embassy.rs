//! The conformance suite on embassy (throttle-embassy over two in-process embassy-net stacks,
//! embassy-time's std driver): the portable scenarios; every other scenario with the reason
//! it does not run here.

throttle_conformance::suite!(throttle_conformance::embassy::Embassy;
    run: link_raw_throughput_reported, write_100kib_per_s_within_10_percent,
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
        request_cancel_refunds_to_other_leaf, window_tier_admits_at_most_n_in_any_window;
    skip:
    one_stream_accuracy =>
        "checks throttle-io's smoothed `NodeStats::rate`, which embassy does not keep; the \
         accuracy itself is write_*_within_10_percent here";
    connection_limit_under_server_limit, per_direction_server_limits_each_direction,
    fairness_of_twenty_connections, requests_from_many_tasks_share_node =>
        "needs spawned Send tasks and more sockets than the embassy harness's stack holds \
         (StackResources<12>, a Limiter<24>, a Server for 4 connections); the same promises \
         with fewer connections in one task: eight_connections_share_server_limit_fairly, \
         server_per_connection_limit_under_server_limit, read_/write_ scenarios";
    limit_change_reaches_sleeping_writer, weighted_groups_share_server,
    idle_connection_holds_no_tokens =>
        "written against the std layer (spawn, Rt::wrap, throttle-io Server); the portable \
         versions run here: limit_change_reaches_sleeping_writer_in_group, \
         server_connection_limit_change_reaches_sleeping_connection, \
         weighted_groups_share_server_limit, idle_reader_holds_no_tokens_busy_one_gets_server_rate";
    dropped_stream_hands_over_to_other_connection, dropped_write_future_does_not_stall_others =>
        "about the std driver task and `Limiter::len`/`has_driver`; embassy has no driver \
         task: a dropped embassy write cancels at once \
         (dropped_waiting_write_cancels_other_leaf_gets_tokens)";
    connection_close_frees_leaves, unlimited_skips_tree =>
        "std bookkeeping (`Limiter::len`, `Server::stats`, `Shared::wakes`); unlimited bytes \
         counted in `granted` run here as unlimited_path_counts_every_byte (and \
         throttle-embassy's unit tests unlimited_path_write_skips_tree, into_inner_removes_leaves)";
    listener_groups_share_by_weight =>
        "std `Listener::grouped` (a closure on the peer address picks the group); embassy has \
         no listener type (its sockets accept one connection each): a connection goes into a \
         group by `Limiter::wrap(socket, Some(&group), ..)`, which \
         weighted_groups_share_server_limit runs here";
    weighted_one_leaf_groups_8k_writes_at_60_mib, weighted_groups_of_three_8k_writes_at_60_mib =>
        "60 MiB/s over TCP with spawned copy tasks: a debug build's embassy-net link carries \
         ~5-15 MiB/s; weights over embassy: weighted_groups_share_server_limit at 512 KiB/s";
    blocking_one_stream_accuracy, reader_is_limited,
    connection_limit_under_server_limit_and_fairness, limit_change_reaches_blocked_writer,
    idle_reader_holds_no_tokens, requests_from_threads_share_node =>
        "blocking-thread scenarios (std::io, no async runtime)";
);
