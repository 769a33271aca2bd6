//! Users' sessions: who is logged in, with which role and CSRF token.

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees everything, changes nothing.
    Viewer,
    /// Sees and changes.
    Admin,
}

/// A logged-in user's session, as the page handlers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The token every form of this session carries (field `csrf`); the server checks it
    /// before a handler sees a POST.
    pub csrf: String,
}
