//! A VRRP router as keepalived runs it (RFC 3768 for version 2, RFC 5798 for 3).
