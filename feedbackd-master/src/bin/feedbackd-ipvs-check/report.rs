//! What the probe's parts share: the tally of checks, and small helpers for the kernel's
//! own tool and the backends' refusals.

use std::fmt::Display;
use std::process::Command;

use feedbackd_master::ipvs::{BackendKind, Error, ServiceKey, parse_service};

/// Checks passed and failed.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) pass: usize,
    pub(crate) fail: usize,
}

impl Report {
    pub(crate) fn check(&mut self, name: impl Display, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.pass += 1;
                println!("PASS {name}");
            }
            Err(e) => {
                self.fail += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
}

pub(crate) fn key(s: &str) -> ServiceKey {
    parse_service(s).expect("a valid service")
}

pub(crate) fn ipvsadm(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ipvsadm")
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("running ipvsadm: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ipvsadm {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

pub(crate) fn expect_errno(
    kind: BackendKind,
    ipvsadm_refuses: bool,
    res: Result<(), Error>,
    want: i32,
) -> Result<(), String> {
    match res {
        Err(e) if e.errno() == Some(want) => Ok(()),
        // ipvsadm checks these itself and never asks the kernel.
        Err(Error::Other(_)) if ipvsadm_refuses && kind == BackendKind::Ipvsadm => Ok(()),
        Err(e) => Err(format!("got \"{e}\", want errno {want}")),
        Ok(()) => Err(format!("accepted, want errno {want}")),
    }
}
