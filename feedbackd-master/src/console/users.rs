//! The console's users file (`--console-users`): one user per line, `USER ROLE HASH`, the
//! hash an argon2id PHC string. `feedbackd-master passwd` writes it; the master reads it at
//! start-up and refuses to start the console without a user, or when the file is readable
//! or writable by anyone but its owner, or owned by another user (as ssh refuses a loose key).
//!
//! ```text
//! # feedbackd-master console users: USER ROLE ARGON2ID-HASH
//! alice admin $argon2id$v=19$m=19456,t=2,p=1$...$...
//! bob viewer $argon2id$v=19$m=19456,t=2,p=1$...$...
//! ```

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params};

use super::session::Role;

/// The longest user name.
pub const MAX_USER_LEN: usize = 64;
/// The longest password accepted [bytes] (longer ones are refused without hashing): the
/// login form's longest field (`pages::form::MAX_VALUE`).
pub const MAX_PASSWORD_LEN: usize = super::pages::form::MAX_VALUE;
/// The shortest password `passwd` accepts.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The largest users file read.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most memory a hash in the file may ask for [KiB] (argon2's default is 19 MiB).
const MAX_M_COST_KIB: u32 = 256 * 1024;
/// The most passes a hash in the file may ask for.
const MAX_T_COST: u32 = 16;

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// What the user may do.
    pub role: Role,
    /// The argon2id PHC string.
    pub hash: String,
}

/// The users, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    users: BTreeMap<String, User>,
}

/// What the users file says: the message to prefix with `FILE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {what}")]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses `admin` or `viewer`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A user name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `-` or `.`.
pub fn valid_user_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_USER_LEN
        && !s.starts_with(['-', '.'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Checks that `hash` is an argon2id PHC string with bounded costs.
fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC hash string: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!("hash algorithm {} is not argon2id", parsed.algorithm));
    }
    let params = Params::try_from(&parsed).map_err(|e| format!("argon2id parameters: {e}"))?;
    if params.m_cost() > MAX_M_COST_KIB || params.t_cost() > MAX_T_COST {
        return Err(format!(
            "argon2id costs m={} t={} exceed m={MAX_M_COST_KIB} t={MAX_T_COST}",
            params.m_cost(),
            params.t_cost()
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the hash string has no salt or no hash".to_owned());
    }
    Ok(())
}

/// Parses a users file's text (pure: the caller read and checked the file).
pub fn parse_users(text: &str) -> Result<Users, LineError> {
    let mut users = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |what: String| LineError { line: i + 1, what };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, role, hash] = words[..] else {
            return Err(err(format!("expected `USER ROLE HASH`, got {} words", words.len())));
        };
        if !valid_user_name(name) {
            return Err(err(format!("bad user name {name:?} (1-64 of A-Z a-z 0-9 . _ -)")));
        }
        let role = Role::parse(role).ok_or_else(|| err(format!("role {role:?} is not admin or viewer")))?;
        check_hash(hash).map_err(err)?;
        if users.insert(name.to_owned(), User { role, hash: hash.to_owned() }).is_some() {
            return Err(err(format!("user {name} appears twice")));
        }
    }
    Ok(Users { users })
}

/// The hint given when there is no user.
pub fn no_users_help(path: &Path) -> String {
    format!(
        "no console users in {0}: the console never has a default password. Create one with \
         `feedbackd-master passwd USER --role admin --users-file {0}`",
        path.display()
    )
}

impl Users {
    /// How many users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// No user at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// A user's entry.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Reads and checks the users file: not a symbolic link, a regular file owned by this
    /// process's user with no permission for group or others, every line valid, at least
    /// one user. Errors name the file (and line).
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = read_checked(path)?;
        let users = parse_users(&text).map_err(|e| anyhow!("{}:{e}", path.display()))?;
        if users.is_empty() {
            bail!("{}", no_users_help(path));
        }
        Ok(users)
    }

    /// The user's role when `password` is theirs. Takes argon2's time (tens of ms) whether
    /// or not the user exists, so that the answer's delay does not tell which users exist.
    /// Call it off the async threads (`spawn_blocking`).
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        if password.len() > MAX_PASSWORD_LEN {
            return None;
        }
        let (hash, role) = match self.users.get(name) {
            Some(u) => (u.hash.as_str(), Some(u.role)),
            None => (dummy_hash(), None),
        };
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        if ok { role } else { None }
    }
}

/// A hash of a random password, made once: what an unknown user's password is checked
/// against, for the same delay as a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 32];
        getrandom::fill(&mut pw).expect("the OS random source works");
        hash_password(&hex(&pw)).expect("hashing a random password")
    })
}

/// The users file's text, after the checks of [`Users::load`] (missing: the hint to run
/// `passwd`).
fn read_checked(path: &Path) -> anyhow::Result<String> {
    let at = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("{}", no_users_help(path)),
            _ => anyhow!("{at}: {e}"),
        })?;
    let meta = file.metadata().with_context(|| format!("{at}"))?;
    check_owner_and_mode(&at.to_string(), meta.is_file(), meta.uid(), meta.mode())?;
    if meta.len() > MAX_FILE_BYTES {
        bail!("{at}: larger than {MAX_FILE_BYTES} bytes");
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES).read_to_string(&mut text).with_context(|| format!("{at}: not UTF-8 text"))?;
    Ok(text)
}

/// Refuses a file that is not regular, not ours, or open to group or others.
fn check_owner_and_mode(at: &str, is_file: bool, uid: u32, mode: u32) -> anyhow::Result<()> {
    if !is_file {
        bail!("{at}: not a regular file");
    }
    let me = nix::unistd::geteuid().as_raw();
    if uid != me {
        bail!("{at} is owned by uid {uid}, not by the master's user (uid {me}): refused (chown it)");
    }
    let perm = mode & 0o7777;
    if perm & 0o077 != 0 {
        bail!(
            "permissions {perm:04o} for '{at}' are too open: the console's users file must be \
             readable and writable by its owner only (chmod 600 '{at}')"
        );
    }
    Ok(())
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An argon2id PHC string of `password` (argon2's default costs, a random 16-byte salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("reading random bytes: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("salt: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, Params::default());
    let hash = argon.hash_password(password.as_bytes(), &salt).map_err(|e| anyhow!("argon2id: {e}"))?;
    Ok(hash.to_string())
}

/// `feedbackd-master passwd`'s arguments.
#[derive(Debug)]
pub struct Passwd {
    /// The user to add or change.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// The users file.
    pub users_file: std::path::PathBuf,
}

/// Sets `user`'s line (role and a new hash of `password`) in the users file: replaced if
/// the user exists, else appended; the file is created 0600, and rewritten atomically
/// (a temporary file beside it, fsync, rename). An existing loose or broken file is refused.
pub fn set_password(p: &Passwd, password: &str) -> anyhow::Result<String> {
    if !valid_user_name(&p.user) {
        bail!("bad user name {:?}: 1-64 of A-Z a-z 0-9 . _ - (not starting with - or .)", p.user);
    }
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        bail!("a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters");
    }
    let path = &p.users_file;
    let at = path.display().to_string();
    let existing = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        _ => read_checked(path)?,
    };
    let hash = hash_password(password)?;
    let new_line = format!("{} {} {hash}", p.user, p.role.name());
    let mut out = String::new();
    let mut replaced = false;
    for line in existing.lines() {
        if line.split_whitespace().next() == Some(p.user.as_str()) && !line.trim_start().starts_with('#') {
            out.push_str(&new_line);
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("# feedbackd-master console users: USER ROLE ARGON2ID-HASH (feedbackd-master passwd)\n");
    }
    if !replaced {
        out.push_str(&new_line);
        out.push('\n');
    }
    parse_users(&out).map_err(|e| anyhow!("{at}:{e}"))?;
    write_atomically(path, out.as_bytes())?;
    let verb = if replaced { "changed" } else { "added" };
    Ok(format!("{verb} {} ({}) in {at}", p.user, p.role.name()))
}

/// Writes `bytes` to `path` through a temporary file (0600, fsynced) renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| anyhow!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("writing {} (through {}): {e}", path.display(), tmp.display())
    })
}

/// Reads a password: from standard input's first line with `--password-stdin`, else from
/// the terminal, twice, without echo.
pub fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::BufRead as _;
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().take(MAX_PASSWORD_LEN as u64 + 2).read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let tty =
        OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|e| {
            anyhow!("no terminal to ask the password on (/dev/tty: {e}): use --password-stdin")
        })?;
    let first = prompt(&tty, "Password: ")?;
    let second = prompt(&tty, "Again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// Asks on the terminal with echo off (restored after, even on error).
fn prompt(tty: &std::fs::File, what: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::BufRead as _;
    let saved = tcgetattr(tty).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(tty, SetArg::TCSAFLUSH, &quiet).context("turning echo off")?;
    let mut w = tty;
    let _ = w.write_all(what.as_bytes());
    let mut line = String::new();
    let read = std::io::BufReader::new(tty).take(MAX_PASSWORD_LEN as u64 + 2).read_line(&mut line);
    let _ = tcsetattr(tty, SetArg::TCSAFLUSH, &saved);
    let _ = w.write_all(b"\n");
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fbm-users-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn passwd_creates_0600_replaces_and_verifies() {
        let d = dir("passwd");
        let path = d.join("users");
        let p = Passwd { user: "alice".into(), role: Role::Admin, users_file: path.clone() };
        assert!(set_password(&p, "correct horse").unwrap().starts_with("added alice (admin)"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bob = Passwd { user: "bob".into(), role: Role::Viewer, users_file: path.clone() };
        set_password(&bob, "battery staple").unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.verify("alice", "correct horse"), Some(Role::Admin));
        assert_eq!(users.verify("bob", "battery staple"), Some(Role::Viewer));
        assert_eq!(users.verify("alice", "battery staple"), None);
        assert_eq!(users.verify("carol", "correct horse"), None);
        // Replaced, not appended: bob becomes an admin with a new password.
        let bob = Passwd { role: Role::Admin, ..bob };
        assert!(set_password(&bob, "new password").unwrap().starts_with("changed bob (admin)"));
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.verify("bob", "battery staple"), None);
        assert_eq!(users.verify("bob", "new password"), Some(Role::Admin));
        assert!(set_password(&bob, "short").unwrap_err().to_string().contains("8 to 256"));
        let bad = Passwd { user: "-x".into(), ..bob };
        assert!(set_password(&bad, "long enough").unwrap_err().to_string().contains("bad user name"));
    }

    #[test]
    fn loose_missing_and_empty_files_are_refused() {
        let d = dir("loose");
        let path = d.join("users");
        let e = Users::load(&path).unwrap_err().to_string();
        assert!(e.contains("no console users") && e.contains("feedbackd-master passwd"), "{e}");
        std::fs::write(&path, "# nobody\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Users::load(&path).unwrap_err().to_string();
        assert!(e.contains("no console users"), "{e}");
        let p = Passwd { user: "alice".into(), role: Role::Admin, users_file: path.clone() };
        set_password(&p, "correct horse").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Users::load(&path).unwrap_err().to_string();
            assert!(e.contains("too open") && e.contains("chmod 600"), "{mode:o}: {e}");
            // passwd refuses to touch it too.
            assert!(set_password(&p, "correct horse").unwrap_err().to_string().contains("too open"));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(Users::load(&path).unwrap().len(), 1);
        let link = d.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(Users::load(&link).is_err());
        let e = check_owner_and_mode("f", true, nix::unistd::geteuid().as_raw() + 1, 0o600).unwrap_err();
        assert!(e.to_string().contains("not by the master's user"), "{e}");
    }

    #[test]
    fn bad_lines_name_the_line() {
        let h = hash_password("whatever1").unwrap();
        let cases = [
            (format!("alice admin {h}\nbob boss {h}\n"), 2, "role \"boss\""),
            ("alice admin\n".to_owned(), 1, "expected `USER ROLE HASH`"),
            (format!("\n\nal/ice admin {h}\n"), 3, "bad user name"),
            (
                "alice admin $argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n".to_owned(),
                1,
                "not argon2id",
            ),
            ("alice admin plaintext\n".to_owned(), 1, "not a PHC"),
            (format!("alice admin {h}\nalice viewer {h}\n"), 2, "appears twice"),
            (
                "a admin $argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n".to_owned(),
                1,
                "exceed",
            ),
        ];
        for (text, line, what) in cases {
            let e = parse_users(&text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.what.contains(what), "{text}: {e}");
        }
    }
}
