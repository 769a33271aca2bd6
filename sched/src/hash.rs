//! The kernel's hash functions (placeholder, being written).
