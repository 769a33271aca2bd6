//! The keepalived import: unit tests.
