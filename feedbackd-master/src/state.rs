//! The master's persistent state (`--state-file FILE`): what the console's operators set
//! and a restart must not lose. Virtual services added or edited through the console, the
//! operator's overrides of real servers (drained, pinned, in maintenance) and, for a server
//! in maintenance, its whole kernel entry (forwarding, weight, thresholds, tunnel) so that
//! it comes back as it was.
//!
//! One item per line, `#` comments and blank lines skipped; services and kernel entries in
//! `ipvsadm -S -n`'s own syntax (lvs-ipvs's emitter writes them, its parser reads them):
//!
//! ```text
//! # feedbackd-master state: written by the master; edit only while it is stopped
//! service -A -t 10.0.0.1:443 -s wlc -p 300
//! drain tcp:10.0.0.1:80/10.0.0.3:80
//! pin tcp:10.0.0.1:80/10.0.0.2:80 30
//! maintenance -a -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 9 -x 100
//! ```
//!
//! Written atomically: a new file beside it (`FILE.tmp`, created exclusively, mode 0600,
//! never through a symlink), fsynced, renamed over `FILE`, then the directory fsynced; a
//! crash leaves the old file or the new one, never half of one. Read at start-up: a missing
//! file is an empty state (the first start); a line that does not read is an error naming
//! `FILE:LINE`; a file over [`MAX_STATE_BYTES`], a symlink, a file writable by group or
//! others or owned by another user is refused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use feedbackd_proto::master::Hold;
use feedbackd_proto::types::{RsKey, RsKeyText, parse_rs_key};
use lvs_ipvs::ipvsadm::{Command, parse_line};
use lvs_ipvs::{DestConfig, ServiceConfig, ServiceKey};

/// The largest state file read [bytes]: 100,000 overridden servers fit.
pub const MAX_STATE_BYTES: u64 = 16 << 20;

/// The operator's overrides of one real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Override {
    /// Drained or in maintenance.
    pub hold: Option<Hold>,
    /// A pinned weight.
    pub pinned: Option<u32>,
    /// In maintenance: its kernel entry, to add back whole on return (`Some` exactly when
    /// `hold` is maintenance).
    pub dest: Option<DestConfig>,
}

/// What the state file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Virtual services the console added or edited, with their settings.
    pub services: BTreeMap<ServiceKey, ServiceConfig>,
    /// Real servers with an override.
    pub servers: BTreeMap<RsKey, Override>,
}

impl State {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut s =
            String::from("# feedbackd-master state: written by the master; edit only while it is stopped\n");
        for (key, config) in &self.services {
            s.push_str(&format!("service {}\n", Command::AddService(*key, *config)));
        }
        for (key, o) in &self.servers {
            match (o.hold, o.dest) {
                (Some(Hold::Maintenance), Some(dest)) => {
                    s.push_str(&format!("maintenance {}\n", Command::AddDest(key.service, dest)));
                }
                (Some(Hold::Drain), _) => s.push_str(&format!("drain {}\n", RsKeyText(*key))),
                _ => {}
            }
            if let Some(w) = o.pinned {
                s.push_str(&format!("pin {} {w}\n", RsKeyText(*key)));
            }
        }
        s
    }

    /// Reads [`State::to_text`]'s form; the error names the line (1-based) and what is
    /// wrong with it.
    pub fn parse(text: &str) -> Result<State, (usize, String)> {
        let mut state = State::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            state.parse_item(line).map_err(|e| (i + 1, e))?;
        }
        Ok(state)
    }

    fn parse_item(&mut self, line: &str) -> Result<(), String> {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match kind {
            "service" => match ipvsadm(rest)? {
                Command::AddService(key, config) => {
                    if self.services.insert(key, config).is_some() {
                        return Err(format!("service {key} given twice"));
                    }
                }
                _ => return Err(format!("expected `service -A ...`, got {rest:?}")),
            },
            "maintenance" => match ipvsadm(rest)? {
                Command::AddDest(service, dest) => {
                    let key = RsKey { service, addr: dest.addr, port: dest.port };
                    let o = self.entry(key);
                    if o.hold.is_some() {
                        return Err(format!("{} is held twice", RsKeyText(key)));
                    }
                    (o.hold, o.dest) = (Some(Hold::Maintenance), Some(dest));
                }
                _ => return Err(format!("expected `maintenance -a ...`, got {rest:?}")),
            },
            "drain" => {
                let key = parse_rs_key(rest)?;
                let o = self.entry(key);
                if o.hold.is_some() {
                    return Err(format!("{} is held twice", RsKeyText(key)));
                }
                o.hold = Some(Hold::Drain);
            }
            "pin" => {
                let (rs, w) = rest
                    .rsplit_once(' ')
                    .ok_or_else(|| format!("expected `pin SERVICE/RIP:PORT WEIGHT`, got {rest:?}"))?;
                let key = parse_rs_key(rs.trim())?;
                let w = w.parse::<u32>().ok().filter(|w| *w <= feedbackd_proto::master::MAX_PIN_WEIGHT);
                let w = w.ok_or_else(|| format!("pin {}: the weight is not 0 to 65535", RsKeyText(key)))?;
                let o = self.entry(key);
                if o.pinned.replace(w).is_some() {
                    return Err(format!("{} is pinned twice", RsKeyText(key)));
                }
            }
            other => return Err(format!("unknown item {other:?} (service, drain, pin, maintenance)")),
        }
        Ok(())
    }

    fn entry(&mut self, key: RsKey) -> &mut Override {
        self.servers.entry(key).or_insert(Override { hold: None, pinned: None, dest: None })
    }
}

fn ipvsadm(rest: &str) -> Result<Command, String> {
    match parse_line(rest) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err("an empty ipvsadm command".into()),
        Err(e) => Err(format!("{rest:?}: {e}")),
    }
}

/// The state file.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file at `path` and what it holds now (empty when it does not exist yet).
    pub fn load(path: &Path) -> anyhow::Result<(StateFile, State)> {
        let file = StateFile { path: path.to_owned() };
        let text = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
            Ok(f) => {
                guard(&f, path)?;
                read_bounded(f, path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((file, State::default())),
            Err(e) => return Err(e).with_context(|| format!("opening the state file {}", path.display())),
        };
        let state =
            State::parse(&text).map_err(|(line, e)| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
        Ok((file, state))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `state`, atomically.
    pub fn save(&self, state: &State) -> anyhow::Result<()> {
        let tmp = tmp_path(&self.path);
        let ctx = || format!("writing the state file {}", tmp.display());
        // A temporary file left by a crash is ours: removed first (never followed).
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(ctx),
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .with_context(ctx)?;
        f.write_all(state.to_text().as_bytes()).with_context(ctx)?;
        f.sync_all().with_context(ctx)?;
        drop(f);
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), self.path.display()))?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
    }
}

/// The state file says which services to create: refused when someone else could have
/// written it (writable by group or others, or owned by another user), as ssh refuses a
/// loose key.
fn guard(f: &File, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let m = f.metadata().with_context(|| format!("reading the state file {}", path.display()))?;
    if m.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{}: writable by group or others (mode {:o}): refused; chmod 600 it",
            path.display(),
            m.mode() & 0o777
        );
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        anyhow::bail!("{}: owned by uid {}, not the master's ({me}): refused", path.display(), m.uid());
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn read_bounded(f: File, path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    f.take(MAX_STATE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the state file {} (UTF-8 text)", path.display()))?;
    if text.len() as u64 > MAX_STATE_BYTES {
        anyhow::bail!("{}: larger than {MAX_STATE_BYTES} bytes: not a state file", path.display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use lvs_ipvs::{Forwarding, SchedulerKind};

    use super::*;

    fn example() -> State {
        let svc = lvs_ipvs::ServiceKey::Addr {
            protocol: lvs_ipvs::Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 443,
        };
        let mut config = crate::ipvs::service_config(&svc, SchedulerKind::Wlc);
        config.persistence = Some(lvs_sched::Duration::from_secs(300));
        config.flags.0 |= lvs_ipvs::SvcFlags::PERSISTENT;
        let rs = |a: &str| parse_rs_key(&format!("tcp:10.0.0.1:80/{a}:80")).unwrap();
        let mut dest = crate::ipvs::dest("10.0.0.4".parse().unwrap(), 80, Forwarding::Masq, 9);
        dest.u_threshold = 100;
        let mut s = State::default();
        s.services.insert(svc, config);
        s.servers.insert(rs("10.0.0.2"), Override { hold: None, pinned: Some(30), dest: None });
        s.servers.insert(rs("10.0.0.3"), Override { hold: Some(Hold::Drain), pinned: Some(4), dest: None });
        s.servers.insert(
            rs("10.0.0.4"),
            Override { hold: Some(Hold::Maintenance), pinned: None, dest: Some(dest) },
        );
        s
    }

    #[test]
    fn the_documented_form_reads_back() {
        let text = example().to_text();
        assert_eq!(
            text,
            "# feedbackd-master state: written by the master; edit only while it is stopped\n\
             service -A -t 10.0.0.1:443 -s wlc -p 300\n\
             pin tcp:10.0.0.1:80/10.0.0.2:80 30\n\
             drain tcp:10.0.0.1:80/10.0.0.3:80\n\
             pin tcp:10.0.0.1:80/10.0.0.3:80 4\n\
             maintenance -a -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 9 -x 100\n"
        );
        assert_eq!(State::parse(&text), Ok(example()));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, why) in [
            ("# ok\nservice -A -t 10.0.0.1:80 -s nope\n", 2, "nope"),
            ("pin tcp:10.0.0.1:80/10.0.0.2:80 65536\n", 1, "not 0 to 65535"),
            ("pin tcp:10.0.0.1:80/10.0.0.2:80\n", 1, "expected `pin"),
            ("drain tcp:10.0.0.1:80/10.0.0.2:80\ndrain tcp:10.0.0.1:80/10.0.0.2:80\n", 2, "held twice"),
            ("maintenance -A -t 10.0.0.1:80\n", 1, "expected `maintenance -a"),
            ("service -a -t 10.0.0.1:80 -r 10.0.0.2\n", 1, "expected `service -A"),
            ("\n\nflush everything\n", 3, "unknown item \"flush\""),
            ("drain 10.0.0.2:80\n", 1, "not a real server"),
        ] {
            let (l, e) = State::parse(text).unwrap_err();
            assert_eq!(l, line, "{text:?}: {e}");
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn saved_atomically_0600_and_loaded_with_file_and_line_errors() {
        let dir = std::env::temp_dir().join(format!("feedbackd-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let (file, empty) = StateFile::load(&path).unwrap();
        assert_eq!(empty, State::default(), "missing: the first start");
        // A temporary file left by a crash does not stop the save.
        std::fs::write(dir.join("state.tmp"), "half").unwrap();
        file.save(&example()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.join("state.tmp").exists());
        assert_eq!(StateFile::load(&path).unwrap().1, example());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = StateFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 620)"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(StateFile::load(&path).unwrap().1, example(), "readable by others is fine");
        std::fs::write(&path, "drain nowhere\n").unwrap();
        let e = StateFile::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
        std::os::unix::fs::symlink(&path, dir.join("link")).unwrap();
        assert!(StateFile::load(&dir.join("link")).is_err(), "never through a symlink");
        std::fs::write(&path, vec![b'#'; MAX_STATE_BYTES as usize + 1]).unwrap();
        let e = StateFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        /// Any text: an error or a state, never a panic; what reads writes back the same.
        #[test]
        fn any_text_reads_or_is_refused_and_what_reads_writes_back(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<String>(),
                    "(service|drain|pin|maintenance) [-a-z0-9:./ \\[\\]]{0,60}",
                    "pin tcp:10\\.0\\.0\\.1:80/10\\.0\\.0\\.[0-9]{1,3}:[0-9]{1,5} [0-9]{1,6}",
                    "maintenance -a -t 10\\.0\\.0\\.1:80 -r 10\\.0\\.0\\.[0-9]{1,3}:80 -[gmi] -w [0-9]{1,4}",
                ],
                0..8,
            )
        ) {
            let text = lines.join("\n");
            if let Ok(state) = State::parse(&text) {
                proptest::prop_assert_eq!(State::parse(&state.to_text()), Ok(state));
            }
        }
    }
}
