//! A real-server health checker as ldirectord and keepalived run it.
