/* tests of the property layer: X(name) per test */
X(property_split_invariance_server)
X(property_split_invariance_client)
X(property_back_to_back)
X(property_back_to_back_close_by_client)
X(property_back_to_back_close_by_server)
X(property_feed_never_overreads)
X(property_client_open_without_subprotocol_no_ub)
X(property_server_empty_frame_null_payload_blocked_no_ub)
