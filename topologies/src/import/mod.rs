//! Real configurations as topologies: an operator's `keepalived.conf`, `ldirectord.cf`
//! (with heartbeat's `ha.cf` and `haresources`), ipvsadm rules, or piranha's `lvs.cf`,
//! read into a [`Topology`] that a scenario can run (`lvsim import`).
//!
//! [`import`] takes the files of one tool (several `keepalived-NAME.conf` of a VRRP
//! group, or `ldirectord.cf` with `ha.cf` and `haresources`), tells their format from
//! the name and the text ([`Format::detect`]) and hands them to that format's module.
//! What a file says that the topology cannot hold becomes a [`Note`] naming the file and
//! line; what is wrong in a file is an [`ImportError`] naming file, line and column, and
//! nothing is imported.
//!
//! Round trip: for the files of one format that [`crate::export::files`] writes, importing
//! them and exporting again gives the same files, byte for byte (tests/round_trip.rs).
//!
//! # Modules
//! - `ipvsadm.rs`: ipvsadm rules ([`ipvsadm_save`] into an existing topology, as a
//!   scenario's `import_ipvsadm` does).
//! - `keepalived.rs`, `ldirectord.rs` + `heartbeat.rs`, `lvs_cf.rs`: the other formats.

use crate::Topology;

mod heartbeat;
mod ipvsadm;
mod keepalived;
mod ldirectord;
mod lvs_cf;

pub use ipvsadm::ipvsadm_save;
#[cfg(test)]
pub(crate) use ipvsadm::parse_line;

/// One file to import: its path (as the user named it, for messages) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The path, for messages and to tell the format.
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// The kinds of files [`import`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// keepalived's `keepalived.conf`.
    Keepalived,
    /// ldirectord's `ldirectord.cf`.
    Ldirectord,
    /// heartbeat's `ha.cf` (read with an `ldirectord.cf`).
    HaCf,
    /// heartbeat's `haresources` (read with an `ldirectord.cf`).
    Haresources,
    /// ipvsadm rules: `ipvsadm -S` output, an `ipvsadm-restore` rules file, or a shell
    /// script of ipvsadm commands.
    Ipvsadm,
    /// piranha's `lvs.cf`.
    LvsCf,
}

impl Format {
    /// Every format, as `--format` names them.
    pub const ALL: [Format; 6] = [
        Format::Keepalived,
        Format::Ldirectord,
        Format::HaCf,
        Format::Haresources,
        Format::Ipvsadm,
        Format::LvsCf,
    ];

    /// The name `--format` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Keepalived => "keepalived",
            Format::Ldirectord => "ldirectord",
            Format::HaCf => "ha.cf",
            Format::Haresources => "haresources",
            Format::Ipvsadm => "ipvsadm",
            Format::LvsCf => "lvs.cf",
        }
    }

    /// The tool whose files are imported together: heartbeat's `ha.cf` and `haresources`
    /// belong to an ldirectord import; every other format is its own.
    pub const fn family(self) -> Format {
        match self {
            Format::HaCf | Format::Haresources => Format::Ldirectord,
            f => f,
        }
    }

    /// The format of `name`, as `--format` takes it.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The format of a file, from its name (`keepalived*.conf`, `ldirectord*.cf`, `ha.cf`,
    /// `haresources`, `*.rules`, `ipvsadm*`, `lvs.cf`), else from its first statement;
    /// `None` if neither tells.
    pub fn detect(path: &str, text: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let by_name = match name {
            "ha.cf" => Some(Format::HaCf),
            "haresources" => Some(Format::Haresources),
            "lvs.cf" => Some(Format::LvsCf),
            n if n.starts_with("keepalived") && n.ends_with(".conf") => Some(Format::Keepalived),
            n if n.starts_with("ldirectord") && n.ends_with(".cf") => Some(Format::Ldirectord),
            n if n.ends_with(".rules") || n.starts_with("ipvsadm") => Some(Format::Ipvsadm),
            _ => None,
        };
        by_name.or_else(|| Format::by_text(text))
    }

    /// The format that the first statement of `text` (not a comment) belongs to.
    fn by_text(text: &str) -> Option<Format> {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))?;
        let word = first.split(|c: char| c.is_whitespace() || c == '=').next().unwrap_or("");
        match word {
            "global_defs"
            | "vrrp_instance"
            | "vrrp_sync_group"
            | "virtual_server"
            | "virtual_server_group"
            | "static_ipaddress"
            | "include" => Some(Format::Keepalived),
            "checktimeout" | "negotiatetimeout" | "checkinterval" | "checkcount" | "failurecount"
            | "autoreload" | "quiescent" | "virtual" | "virtual6" | "logfile" | "emailalert" | "fallback" => {
                Some(Format::Ldirectord)
            }
            "ipvsadm" | "-A" | "-a" | "--add-service" | "--set" | "-C" => Some(Format::Ipvsadm),
            "serial_no" | "primary" | "service" | "backup_active" => Some(Format::LvsCf),
            "logfacility" | "keepalive" | "deadtime" | "node" | "bcast" | "ucast" | "mcast" | "use_logd"
            | "respawn" => Some(Format::HaCf),
            _ => None,
        }
    }
}

/// Something a file says that the topology cannot hold, by file and line: the scenario
/// writer prints it as a comment, `lvsim import` on standard error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The file.
    pub path: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What was not mapped, and why.
    pub message: String,
}

/// The imported topology and what could not be mapped.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The directors, services, real servers, checks and fail-over group the files
    /// describe. Servers get the scenario format's defaults for what no file says (CPU,
    /// uplink).
    pub topology: Topology,
    /// What could not be mapped, in file order.
    pub notes: Vec<Note>,
}

/// A file that cannot be imported: where, and why. Nothing is imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{line}:{column}: {message}", if path.is_empty() { String::new() } else { format!("{path}:") })]
pub struct ImportError {
    /// The file (empty for a text with no file, such as a scenario's inline rules).
    pub path: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

impl ImportError {
    /// An error about a whole file.
    pub fn file(path: &str, message: impl Into<String>) -> ImportError {
        ImportError { path: path.to_owned(), line: 0, column: 0, message: message.into() }
    }

    /// An error at a line and column of a file.
    pub fn at(path: &str, line: usize, column: usize, message: impl Into<String>) -> ImportError {
        ImportError { path: path.to_owned(), line, column, message: message.into() }
    }
}

/// Reads the files of one tool into a topology. `format` forces every file's format;
/// without it each is told by [`Format::detect`].
///
/// Accepted sets: `keepalived.conf` files (one per director of a VRRP group); one
/// `ldirectord.cf` (or one per director) with optionally `ha.cf` and `haresources`;
/// ipvsadm rules files (one per director); one `lvs.cf`. Files of different tools are an
/// error naming both.
pub fn import(sources: &[Source], format: Option<Format>) -> Result<Imported, ImportError> {
    let Some(first) = sources.first() else {
        return Err(ImportError::file("", "no file to import"));
    };
    let mut tagged = Vec::with_capacity(sources.len());
    for s in sources {
        let f = format.or_else(|| Format::detect(&s.path, &s.text)).ok_or_else(|| {
            ImportError::file(
                &s.path,
                format!(
                    "cannot tell which tool reads this file; name its format with --format ({})",
                    Format::ALL.map(Format::name).join(", ")
                ),
            )
        })?;
        tagged.push((f, s));
    }
    let main = tagged[0].0.family();
    if let Some((f, s)) = tagged.iter().find(|(f, _)| f.family() != main) {
        return Err(ImportError::file(
            &s.path,
            format!(
                "a {} file, but {} is a {} file: import one tool's files at a time",
                f.name(),
                first.path,
                tagged[0].0.name()
            ),
        ));
    }
    let of = |want: Format| -> Vec<&Source> {
        tagged.iter().filter(|(f, _)| *f == want).map(|(_, s)| *s).collect()
    };
    match main {
        Format::Keepalived => keepalived::import(&of(Format::Keepalived)),
        Format::Ldirectord | Format::HaCf | Format::Haresources => {
            ldirectord::import(&of(Format::Ldirectord), &of(Format::HaCf), &of(Format::Haresources))
        }
        Format::Ipvsadm => ipvsadm::import(&of(Format::Ipvsadm)),
        Format::LvsCf => lvs_cf::import(&of(Format::LvsCf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_name_then_by_first_statement() {
        let cases = [
            ("/etc/keepalived/keepalived.conf", "", Some(Format::Keepalived)),
            ("export/keepalived-lb1.conf", "", Some(Format::Keepalived)),
            ("ldirectord-lb3.cf", "", Some(Format::Ldirectord)),
            ("/etc/ha.d/ha.cf", "", Some(Format::HaCf)),
            ("haresources", "", Some(Format::Haresources)),
            ("/etc/sysconfig/ipvsadm.rules", "", Some(Format::Ipvsadm)),
            ("lvs.cf", "", Some(Format::LvsCf)),
            ("a.conf", "! comment\nglobal_defs {\n", Some(Format::Keepalived)),
            ("a.conf", "# c\n\nvirtual=10.0.0.1:80\n", Some(Format::Ldirectord)),
            ("saved", "-A -t 10.0.0.1:80 -s wlc\n", Some(Format::Ipvsadm)),
            ("cfg", "serial_no = 7\n", Some(Format::LvsCf)),
            ("cfg", "use_logd yes\n", Some(Format::HaCf)),
            ("cfg", "what is this\n", None),
            ("cfg", "", None),
        ];
        for (path, text, want) in cases {
            assert_eq!(Format::detect(path, text), want, "{path} {text:?}");
        }
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn mixed_tools_and_unknown_files_are_refused_with_their_names() {
        let s = |path: &str, text: &str| Source { path: path.into(), text: text.into() };
        let e = import(&[s("keepalived.conf", ""), s("ldirectord.cf", "")], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ldirectord.cf:0:0: a ldirectord file, but keepalived.conf is a keepalived file: import one tool's files at a time"
        );
        let e = import(&[s("x.txt", "hello\n")], None).unwrap_err();
        assert!(e.to_string().starts_with("x.txt:0:0: cannot tell which tool reads this file"), "{e}");
        assert_eq!(import(&[], None).unwrap_err().message, "no file to import");
    }
}
