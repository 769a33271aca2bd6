//! A heartbeat node (ha.cf's keepalive, deadtime, warntime, initdead, nice_failback) and
//! ipfail's ping-node quorum.
