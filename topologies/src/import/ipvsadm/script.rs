//! The shell around the ipvsadm commands of a script (`ipvsadm[-NAME].sh`): `set -e`, the
//! description comments, `sysctl -w` lines, the sync daemons and the group comment.
//!
//! [`read`] splits a file into its ipvsadm rule lines (for [`super::ipvsadm_save`], at
//! their own line numbers) and what the topology keeps of the rest; [`GroupLines`]
//! gathers the group over a director's files and builds `topology.ha`.

use crate::ha::{Ha, SyncDaemon, SyncMode};
use crate::import::{ImportError, Note, Source};
use crate::{Director, Topology};

/// What a file says beyond its ipvsadm rules.
#[derive(Default)]
pub(super) struct Read {
    /// The file with every line that is not an ipvsadm rule blanked (same line numbers).
    pub rules: String,
    /// The comment lines between `set -e` and `# Director`.
    pub description: String,
    /// The `net.ipv4.vs` sysctls the file sets, in its order (each in its range).
    sysctls: Vec<(lvs_ipvs::Sysctl, i64)>,
    /// `net.ipv4.vs.sync_version`.
    sync_version: Option<u8>,
    /// `net.ipv4.vs.sync_threshold`: threshold and period.
    sync_threshold: Option<(u32, u32)>,
    /// `--start-daemon ROLE --mcast-interface I --syncid N --sync-maxlen M`.
    daemons: Vec<Daemon>,
    /// The daemons are comments (`# ipvsadm --start-daemon ...`): keepalived starts them,
    /// so the group is a VRRP one.
    by_keepalived: bool,
    /// `# the primary of the group A, B` (true) or `# a backup of ...`, and the members.
    group: Option<(bool, Vec<String>)>,
    /// The file and line of that comment, for notes.
    group_at: (String, usize),
}

/// One `ipvsadm --start-daemon` line.
#[derive(Clone, Debug, PartialEq)]
struct Daemon {
    role: String,
    interface: String,
    syncid: u8,
    max_len: Option<u32>,
}

/// A script rather than a rules file: a `#!` line or a line that runs ipvsadm.
pub(super) fn is_script(text: &str) -> bool {
    text.starts_with("#!") || text.lines().any(|l| l.trim_start().starts_with("ipvsadm "))
}

/// Reads a file's lines; what is neither an ipvsadm rule nor understood becomes a note.
pub(super) fn read(src: &Source, notes: &mut Vec<Note>) -> Result<Read, ImportError> {
    let mut r = Read::default();
    let (mut after_set_e, mut director_seen) = (false, false);
    let mut description = Vec::new();
    for (i, line) in src.text.lines().enumerate() {
        let t = line.trim();
        let mut keep = "";
        let mut note = |message: String| notes.push(Note { path: src.path.clone(), line: i + 1, message });
        if let Some(c) = t.strip_prefix('#') {
            if let Some(args) = t.strip_prefix("# ipvsadm --start-daemon ") {
                // A daemon keepalived starts (lvsim's VRRP groups): the sync settings.
                let d = daemon(args).map_err(|m| ImportError::at(&src.path, i + 1, 1, m))?;
                r.daemons.push(d);
                r.by_keepalived = true;
            } else if t.starts_with("# Director ") {
                director_seen = true;
            } else if let Some(g) = group_comment(t) {
                r.group = Some(g);
                r.group_at = (src.path.clone(), i + 1);
            } else if after_set_e && !director_seen {
                description.push(c.strip_prefix(' ').unwrap_or(c).to_owned());
            }
        } else if t == "set -e" {
            after_set_e = true;
        } else if let Some(setting) = t.strip_prefix("sysctl -w ") {
            r.sysctl(setting).unwrap_or_else(&mut note);
        } else if let Some(rest) = t.strip_prefix("ipvsadm ") {
            let cmd = shell_tail(rest);
            if let Some(args) = cmd.strip_prefix("--start-daemon ") {
                let d = daemon(args).map_err(|m| ImportError::at(&src.path, i + 1, 1, m))?;
                r.daemons.push(d);
            } else if !is_listing(cmd) && !cmd.starts_with("--stop-daemon") {
                keep = cmd;
            }
        } else if t.starts_with('-') {
            keep = t;
        } else if !t.is_empty() {
            note(format!("not an ipvsadm command: {t:?} is not imported"));
        }
        // The rule keeps its column: the indentation and a leading `ipvsadm ` stay.
        if !keep.is_empty() {
            let start = line.find(keep).unwrap_or(0);
            r.rules.push_str(&" ".repeat(start));
            r.rules.push_str(keep);
        }
        r.rules.push('\n');
    }
    r.description = description.join("\n");
    Ok(r)
}

/// An ipvsadm command that only prints (`-L`, `-l`, `--list`, `-S`, `--save`, `-h`),
/// such as lvsim's `ipvsadm -L -n > /dev/null`, run to load ip_vs: nothing to import.
fn is_listing(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next().unwrap_or("");
    ["-L", "-l", "--list", "-S", "--save", "-h", "--help", "-Ln", "-ln", "-Sn"].contains(&first)
}

/// `CMD 2>/dev/null || true` → `CMD`: without the shell tail of an idempotent script's
/// line (its `-D` deletes a service if present, as the import does).
fn shell_tail(rest: &str) -> &str {
    let cmd = [" 2>/dev/null || true", " || true"].iter().find_map(|tail| rest.strip_suffix(tail));
    cmd.unwrap_or(rest).trim_end()
}

/// `# the primary of the group A, B: ...` → (true, [A, B]); `# a backup of ...` → false.
fn group_comment(t: &str) -> Option<(bool, Vec<String>)> {
    let (primary, rest) = match t.strip_prefix("# the primary of the group ") {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix("# a backup of the group ")?),
    };
    let (names, _) = rest.split_once(':')?;
    Some((primary, names.split(", ").map(str::to_owned).collect()))
}

/// `--start-daemon ROLE --mcast-interface I --syncid N --sync-maxlen M` (the words after
/// `--start-daemon`).
fn daemon(args: &str) -> Result<Daemon, String> {
    let ws: Vec<&str> = args.split_whitespace().collect();
    let role = match ws.first() {
        Some(&r) if r == "master" || r == "backup" => r.to_owned(),
        other => return Err(format!("--start-daemon: expected master or backup, found {other:?}")),
    };
    let mut d = Daemon { role, interface: String::new(), syncid: 0, max_len: None };
    let mut it = ws[1..].iter();
    while let Some(&opt) = it.next() {
        let value = it.next().ok_or_else(|| format!("--start-daemon: {opt} needs a value"))?;
        let number = |what: &str| format!("--start-daemon: {opt} {value:?} is not {what}");
        match opt {
            "--mcast-interface" => d.interface = (*value).to_owned(),
            "--syncid" => d.syncid = value.parse().map_err(|_| number("a sync id (0..255)"))?,
            "--sync-maxlen" => d.max_len = Some(value.parse().map_err(|_| number("a length"))?),
            _ => return Err(format!("--start-daemon: option {opt} is not imported")),
        }
    }
    if d.interface.is_empty() {
        return Err("--start-daemon: no --mcast-interface".to_owned());
    }
    Ok(d)
}

impl Read {
    /// One `sysctl -w KEY=VALUE`; an error is a note's message.
    fn sysctl(&mut self, setting: &str) -> Result<(), String> {
        let (key, value) = setting.split_once('=').ok_or_else(|| format!("sysctl {setting:?}: no ="))?;
        let value = value.trim_matches('"');
        let bad = || format!("sysctl {key}={value:?}: not imported");
        match key {
            // Follows from the NAT real servers.
            "net.ipv4.ip_forward" => {}
            "net.ipv4.vs.sync_version" => self.sync_version = Some(value.parse().map_err(|_| bad())?),
            "net.ipv4.vs.sync_threshold" => {
                let (t, p) = value.split_once(' ').ok_or_else(bad)?;
                self.sync_threshold = Some((t.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?));
            }
            _ => match lvs_ipvs::Sysctl::from_name(key).filter(|_| key.starts_with("net.ipv4.vs.")) {
                Some(s) => {
                    let v: i64 = value.parse().map_err(|_| bad())?;
                    // What the kernel refuses (a mode of 7) is a note, not a setting.
                    lvs_ipvs::Sysctls::default()
                        .set(s, v)
                        .map_err(|e| format!("sysctl {key}={value}: {e}: not imported"))?;
                    self.sysctls.push((s, v));
                }
                None => return Err(format!("sysctl {key} is not imported")),
            },
        }
        Ok(())
    }

    /// Writes the director's switches into `topo.directors[d]` and its group lines into
    /// `group`.
    pub(super) fn apply(&self, topo: &mut Topology, d: usize, group: &mut GroupLines) {
        let director = &mut topo.directors[d];
        for &(s, v) in &self.sysctls {
            director.set_sysctl(s, v).expect("range checked when read");
        }
        if let Some((primary, members)) = &self.group {
            if group.members.is_empty() || *primary {
                group.members.clone_from(members);
                group.at.clone_from(&self.group_at);
            }
        }
        if !self.daemons.is_empty() {
            group.both_roles |= self.daemons.iter().any(|x| x.role == "master")
                && self.daemons.iter().any(|x| x.role == "backup");
            group.daemon.get_or_insert_with(|| self.daemons[0].clone());
            group.fixed_roles |= !self.by_keepalived;
            group.version = group.version.or(self.sync_version);
            group.threshold = group.threshold.or(self.sync_threshold);
        }
    }
}

/// The group, gathered over the directors' scripts.
#[derive(Default)]
pub(super) struct GroupLines {
    members: Vec<String>,
    /// Where the group is named (the primary's script if read).
    at: (String, usize),
    /// A member runs both daemons: peer to peer.
    both_roles: bool,
    /// A script starts the daemons itself (fixed roles: heartbeat or active-active).
    fixed_roles: bool,
    daemon: Option<Daemon>,
    version: Option<u8>,
    threshold: Option<(u32, u32)>,
}

impl GroupLines {
    /// `topo.ha` from the group comments and sync lines, if any. The files do not say how
    /// the group fails over: a note says what was taken. A member whose services are the
    /// primary's is left without services of its own (it runs the primary's).
    pub(super) fn build(self, topo: &mut Topology, notes: &mut Vec<Note>) {
        if self.members.is_empty() {
            return;
        }
        let (path, line) = self.at.clone();
        for (k, name) in self.members.iter().enumerate() {
            if !topo.directors.iter().any(|d| &d.name == name) {
                let address = std::net::Ipv4Addr::new(192, 0, 2, u8::try_from(100 + k).unwrap_or(u8::MAX));
                topo.directors.push(Director::new(name, address.into()));
                let message = format!("no ipvsadm file of group member {name}: added it at {address}");
                notes.push(Note { path: path.clone(), line, message });
            }
        }
        // Active-active is the one kind of group with a single member.
        let (failover, kind) = if self.members.len() == 1 {
            ("ActiveActive()", "active-active")
        } else if self.fixed_roles {
            // Sync daemons the scripts start: no keepalived swaps them.
            ("Heartbeat()", "heartbeat (the scripts start the sync daemons)")
        } else {
            ("Vrrp()", "keepalived's VRRP")
        };
        let mut ha: Ha = ron::from_str(&format!("(directors: [], failover: {failover})"))
            .expect("a group with every default");
        let message = format!(
            "the ipvsadm files name the group {} but not how it fails over: took {kind} (set ha.failover)",
            self.members.join(", ")
        );
        notes.push(Note { path, line, message });
        ha.directors = self.members;
        ha.sync = self.daemon.map(|d| {
            let mut s = SyncDaemon::default();
            if self.both_roles {
                s.mode = SyncMode::PeerToPeer;
            }
            if d.interface != ha.internal_interface {
                s.interface = Some(d.interface);
            }
            s.syncid = d.syncid;
            s.max_len = d.max_len.unwrap_or(s.max_len);
            s.version = self.version.unwrap_or(s.version);
            (s.threshold, s.period) = self.threshold.unwrap_or((s.threshold, s.period));
            s
        });
        let primary = topo.directors.iter().find(|d| d.name == ha.directors[0]).map(|d| d.services.clone());
        for d in topo.directors.iter_mut().filter(|d| ha.directors[1..].contains(&d.name)) {
            if Some(&d.services) == primary.as_ref() {
                d.services.clear();
            }
        }
        topo.ha = Some(ha);
    }
}
