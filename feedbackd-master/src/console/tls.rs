//! The console's TLS: a rustls server configuration from PEM files (`--console-cert`,
//! `--console-key`), TLS 1.2 and 1.3 only, ALPN `http/1.1`, ring's cipher suites (AEAD
//! with forward secrecy only); and `feedbackd-master cert`, which makes a self-signed pair
//! for a first start.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The default names of a certificate made by `cert` without `--name`.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The server configuration from a certificate chain and its key (both PEM). The key file
/// must be readable by its owner only, as ssh's keys.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_bytes = std::fs::read(cert).with_context(|| format!("--console-cert {}", cert.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("--console-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        bail!(
            "--console-cert {}: no PEM certificate in it (make one with `feedbackd-master cert`)",
            cert.display()
        );
    }
    let key_bytes = crate::keys::read_key_file(key).context("--console-key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| anyhow!("--console-key {}: no PEM private key: {e}", key.display()))?;
    // The workspace builds rustls with ring only (no C toolchain beyond cc); its provider is
    // deprecated for lacking post-quantum key exchange, which aws-lc-rs would add.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| anyhow!("--console-cert {} and --console-key {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `feedbackd-master cert`: a self-signed certificate for `names` (DNS names or IP
/// addresses) and its key, written to new files (never over existing ones): the key 0600,
/// the certificate 0644.
pub fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> anyhow::Result<String> {
    let names: Vec<String> = if names.is_empty() {
        DEFAULT_NAMES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        names.to_vec()
    };
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(|e| anyhow!("--name: {e}"))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0].clone());
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "feedbackd-master console");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(825 * 86_400)).into();
    let pair = rcgen::KeyPair::generate().map_err(|e| anyhow!("generating a key: {e}"))?;
    let made = params.self_signed(&pair).map_err(|e| anyhow!("signing: {e}"))?;
    write_new(key, pair.serialize_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new(cert, made.pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(key);
        return Err(e);
    }
    Ok(format!(
        "wrote {} (self-signed for {}, valid 825 days) and its key {} (mode 0600)",
        cert.display(),
        names.join(", "),
        key.display()
    ))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!("{} exists: never overwritten", path.display()),
            _ => anyhow!("{}: {e}", path.display()),
        })?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn cert_makes_a_pair_the_server_loads_and_never_overwrites() {
        let d = std::env::temp_dir().join(format!("fbm-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (c, k) = (d.join("c.crt"), d.join("c.key"));
        let msg = make_self_signed(&c, &k, &[]).unwrap();
        assert!(msg.contains("localhost, 127.0.0.1, ::1"), "{msg}");
        assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
        let config = server_config(&c, &k).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let before = std::fs::read(&k).unwrap();
        let e = make_self_signed(&c, &k, &["example.org".into()]).unwrap_err().to_string();
        assert!(e.contains("never overwritten"), "{e}");
        assert_eq!(std::fs::read(&k).unwrap(), before);
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", server_config(&c, &k).unwrap_err());
        assert!(e.contains("too open"), "{e}");
        let e = format!("{:#}", server_config(&k, &c).unwrap_err());
        assert!(e.contains("--console-cert"), "{e}");
    }
}
