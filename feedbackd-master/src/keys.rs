//! Keys on disk: reading the keys file (`--keys-file`) into the master's [`Auth`], guarding
//! key files' permissions, and the `keygen` and `add-agent` subcommands. The format and the
//! policy are `feedbackd_proto::keys`'s; this module only opens, stats, reads and writes.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use feedbackd_proto::auth::check_key_file_mode;
use feedbackd_proto::keys::{Auth, Cidr, ServicePattern, format_line, parse_keys};

use crate::config::Cli;

/// What to tell an operator who has configured no authentication.
pub const NO_AUTH_HELP: &str = "no authentication configured: every agent needs its own key. \
     Create one per real server with `feedbackd-master add-agent ID --address ADDR \
     --keys-file /etc/feedbackd/keys` and start the master with `--keys-file \
     /etc/feedbackd/keys` (or, for a test on this host only, `--insecure` with a loopback \
     --listen such as 127.0.0.1:7878)";

/// Opens a key file without following a symbolic link and refuses it when its permissions
/// let the group or others read or write it; returns its contents.
pub fn read_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    let meta = file.metadata().with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    check_key_file_mode(&path.display().to_string(), meta.mode()).map_err(anyhow::Error::msg)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| format!("{}", path.display()))?;
    Ok(bytes)
}

/// The master's authentication from `--keys-file` / `--insecure`: exactly one of them, and
/// `--insecure` only on a loopback `--listen`. Errors say what to do.
pub fn load_auth(cli: &Cli) -> anyhow::Result<Auth> {
    if cli.key_file.is_some() {
        bail!(
            "--key-file (one key shared by every agent) was replaced by --keys-file (a key per \
             agent, and what each may claim): see `feedbackd-master add-agent --help`"
        );
    }
    match (&cli.keys_file, cli.insecure) {
        (Some(_), true) => bail!("--keys-file and --insecure contradict each other: choose one"),
        (None, false) => bail!("{NO_AUTH_HELP}"),
        (None, true) => {
            if !cli.listen.ip().is_loopback() {
                bail!(
                    "--insecure is only accepted with a loopback --listen (127.0.0.1 or ::1), \
                     not {}: anyone who can reach it could add real servers and set weights. {}",
                    cli.listen,
                    "Give each agent a key with `feedbackd-master add-agent`."
                );
            }
            Ok(Auth::Insecure)
        }
        (Some(path), false) => {
            let bytes = read_key_file(path).context("--keys-file")?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("--keys-file {}: not UTF-8 text", path.display()))?;
            let table = parse_keys(&text).map_err(|e| anyhow!("{}:{e}", path.display()))?;
            Ok(Auth::Keys(table))
        }
    }
}

/// A fresh random key: 32 bytes from the OS, as 64 hexadecimal digits.
pub fn keygen() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("reading random bytes: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `add-agent`'s arguments.
#[derive(Debug)]
pub struct AddAgent {
    /// The agent's id.
    pub id: String,
    /// `--address`, as given.
    pub addresses: Vec<String>,
    /// `--service`, as given.
    pub services: Vec<String>,
    /// The keys file to append to.
    pub keys_file: PathBuf,
    /// Where to write the agent's key.
    pub agent_key_out: PathBuf,
}

/// Appends an agent's line to the keys file (created 0600 if missing) and writes its own
/// key file (0600, never over an existing file); returns what to tell the operator.
pub fn add_agent(a: &AddAgent) -> anyhow::Result<String> {
    let addresses: Vec<Cidr> = a
        .addresses
        .iter()
        .map(|s| s.parse().map_err(|e| anyhow!("--address {s}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    if addresses.is_empty() {
        bail!("give the real-server addresses the agent may claim: --address ADDR[/LEN] (repeatable)");
    }
    let services: Vec<ServicePattern> = a
        .services
        .iter()
        .map(|s| s.parse().map_err(|e| anyhow!("--service {s}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let existing = match read_key_file(&a.keys_file) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 text", a.keys_file.display()))?
        }
        Err(e) if is_not_found(&e) => String::new(),
        Err(e) => return Err(e),
    };
    let key = keygen()?;
    let line = format_line(&a.id, &key, &addresses, &services);
    let mut text = existing.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let first_new = text.lines().count() + 1;
    text.push_str(&line);
    text.push('\n');
    // The whole file as it will be: refuses a duplicate id or a bad argument (and an
    // already broken file) before anything is written.
    let table = parse_keys(&text).map_err(|e| anyhow!("{}:{e}", a.keys_file.display()))?;
    debug_assert!(table.get(&a.id).is_some());
    // Open the keys file first: when it cannot be written, no agent key is left behind.
    let mut keys = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&a.keys_file)
        .with_context(|| format!("{}", a.keys_file.display()))?;
    write_new_file(&a.agent_key_out, format!("{key}\n").as_bytes())
        .with_context(|| format!("--agent-key-out {}", a.agent_key_out.display()))?;
    keys.write_all(&text.as_bytes()[existing.len()..])
        .and_then(|()| keys.sync_all())
        .with_context(|| format!("appending to {}", a.keys_file.display()))?;
    let shown: Vec<String> = line.split(' ').skip(2).map(str::to_owned).collect();
    Ok(format!(
        "added agent {id} to {keys} (line {first_new}): it may claim {what}\n\
         wrote its key to {out} (mode 0600)\n\
         next:\n\
         \x20 1. copy {out} to the real server as its key file, readable by the agent only, e.g.\n\
         \x20    install -m 600 {out} /etc/feedbackd/key   (or systemd's LoadCredential=)\n\
         \x20 2. in its feedbackd-agent.conf: agent_id = {id}, key_file = /etc/feedbackd/key\n\
         \x20 3. restart feedbackd-master with --keys-file {keys} (it reads the file at start-up)\n\
         \x20 4. delete {out} here once copied",
        id = a.id,
        keys = a.keys_file.display(),
        out = a.agent_key_out.display(),
        what = shown.join(" services "),
    ))
}

/// Creates `path` with mode 0600 (never following a link, never over an existing file).
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fbm-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn add(d: &Path, id: &str, addrs: &[&str], services: &[&str]) -> anyhow::Result<String> {
        add_agent(&AddAgent {
            id: id.into(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            services: services.iter().map(|s| s.to_string()).collect(),
            keys_file: d.join("keys"),
            agent_key_out: d.join(format!("{id}.key")),
        })
    }

    #[test]
    fn keygen_gives_fresh_64_hex_digits() {
        let (a, b) = (keygen().unwrap(), keygen().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn add_agent_appends_a_line_and_writes_the_agents_key_0600() {
        let d = dir("add");
        let msg = add(&d, "rs1", &["10.0.0.2"], &["tcp:80"]).unwrap();
        assert!(msg.contains("added agent rs1") && msg.contains("key_file"), "{msg}");
        add(&d, "rs2", &["10.0.1.0/24", "2001:db8::2"], &[]).unwrap();
        let keys = d.join("keys");
        assert_eq!(std::fs::metadata(&keys).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(d.join("rs1.key")).unwrap().mode() & 0o777, 0o600);
        let table = parse_keys(&std::fs::read_to_string(&keys).unwrap()).unwrap();
        assert_eq!(table.len(), 2);
        let key1 = std::fs::read_to_string(d.join("rs1.key")).unwrap();
        let rs1 = table.get("rs1").unwrap();
        assert_eq!(rs1.key, feedbackd_proto::auth::Psk::from_file_contents(key1.as_bytes()).unwrap());
        assert!(rs1.allows_address("10.0.0.2".parse().unwrap()));
        assert!(table.get("rs2").unwrap().allows_address("10.0.1.9".parse().unwrap()));
    }

    #[test]
    fn add_agent_refuses_duplicates_bad_arguments_and_loose_files() {
        let d = dir("refuse");
        add(&d, "rs1", &["10.0.0.2"], &[]).unwrap();
        let before = std::fs::read_to_string(d.join("keys")).unwrap();
        let _ = std::fs::remove_file(d.join("rs1.key"));
        let e = add(&d, "rs1", &["10.0.0.3"], &[]).unwrap_err().to_string();
        assert!(e.contains("already has a line"), "{e}");
        assert!(!d.join("rs1.key").exists(), "nothing written on a refusal");
        let e = add(&d, "rs3", &["10.0.0.300"], &[]).unwrap_err().to_string();
        assert!(e.contains("--address 10.0.0.300"), "{e}");
        let e = add(&d, "rs3", &["10.0.0.3"], &["http"]).unwrap_err().to_string();
        assert!(e.contains("--service http"), "{e}");
        let e = add(&d, "rs3", &[], &[]).unwrap_err().to_string();
        assert!(e.contains("--address"), "{e}");
        assert_eq!(std::fs::read_to_string(d.join("keys")).unwrap(), before);
        std::fs::set_permissions(d.join("keys"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let e = format!("{:#}", add(&d, "rs4", &["10.0.0.4"], &[]).unwrap_err());
        assert!(e.contains("permissions 0644") && e.contains("too open"), "{e}");
        // An existing key file is never overwritten.
        std::fs::set_permissions(d.join("keys"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::fs::write(d.join("rs5.key"), "precious").unwrap();
        assert!(add(&d, "rs5", &["10.0.0.5"], &[]).is_err());
        assert_eq!(std::fs::read_to_string(d.join("rs5.key")).unwrap(), "precious");
    }

    #[test]
    fn key_files_behind_a_symlink_are_refused() {
        let d = dir("link");
        std::fs::write(d.join("real"), "0123456789abcdef0123").unwrap();
        std::fs::set_permissions(d.join("real"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        assert!(read_key_file(&d.join("real")).is_ok());
        assert!(read_key_file(&d.join("link")).is_err());
    }
}
