//! `bench`: weight updates per second, netlink against ipvsadm.
//!
//! On a service of its own (`TCP 192.0.2.1:80`, TEST-NET-1, made with ipvsadm and
//! removed at the end) with `dests` NAT real servers, it times N single SET_DEST edits
//! through each backend, cycling over the real servers and flipping each weight between
//! 100 and 200 so that every edit is a real change; then the same edits in batches (one
//! netlink datagram, or one `ipvsadm -R`, per round over the real servers). After each run
//! the kernel must hold the last weights written.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use feedbackd_master::ipvs::{Backend, BackendKind, ServiceKey, dest, parse_service};
use lvs_ipvs::{DestConfig, Forwarding};

const VIP: &str = "192.0.2.1:80";

fn ipvsadm(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ipvsadm").args(args).env("LC_ALL", "C").output().context("running ipvsadm")?;
    ensure!(
        out.status.success(),
        "ipvsadm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

pub(crate) fn run(updates: u32, ipvsadm_updates: u32, dests: u8) -> anyhow::Result<()> {
    if dests == 0 || dests > 250 {
        bail!("--dests must be 1..=250");
    }
    let svc = parse_service(&format!("tcp:{VIP}")).map_err(anyhow::Error::msg)?;
    ipvsadm(&["-A", "-t", VIP, "-s", "wlc"]).context("creating the benchmark's service")?;
    let result = measure(&svc, updates, ipvsadm_updates, dests);
    let cleanup = ipvsadm(&["-D", "-t", VIP]).context("removing the benchmark's service");
    result.and(cleanup)
}

fn measure(svc: &ServiceKey, updates: u32, ipvsadm_updates: u32, dests: u8) -> anyhow::Result<()> {
    let mut netlink = Backend::open(BackendKind::Netlink, &[])?;
    let mut adm = Backend::open(BackendKind::Ipvsadm, &[])?;
    for i in 1..=dests {
        let rs = dest(format!("198.51.100.{i}").parse()?, 80, Forwarding::Masq, 100);
        netlink.add_real_server(svc, &rs)?;
    }
    let nl = single_edits(&mut netlink, svc, updates)?;
    let ad = single_edits(&mut adm, svc, ipvsadm_updates)?;
    let nl_batch = batch_edits(&mut netlink, svc, updates)?;
    let ad_batch = batch_edits(&mut adm, svc, ipvsadm_updates)?;
    let line = |name: &str, n: u32, t: Duration| {
        println!("{name}: {:.0} updates/s ({n} updates in {:.1} ms)", rate(n, t), t.as_secs_f64() * 1e3);
    };
    line("netlink", updates, nl);
    line("ipvsadm", ipvsadm_updates, ad);
    println!("ratio: {:.1}", rate(updates, nl) / rate(ipvsadm_updates, ad));
    line(&format!("netlink batch ({dests} per datagram)"), updates, nl_batch);
    line(&format!("ipvsadm -R batch ({dests} per run)"), ipvsadm_updates, ad_batch);
    let (spawns, t) = (50, spawn_true(50)?);
    println!(
        "baseline: {:.0} runs/s of /bin/true ({spawns} in {:.1} ms)",
        rate(spawns, t),
        t.as_secs_f64() * 1e3
    );
    Ok(())
}

/// How long `n` runs of `/bin/true` take: the floor under any ipvsadm call.
fn spawn_true(n: u32) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        ensure!(Command::new("true").status().context("running true")?.success(), "true failed");
    }
    Ok(start.elapsed())
}

fn rate(n: u32, t: Duration) -> f64 {
    f64::from(n) / t.as_secs_f64().max(1e-9)
}

fn flip(w: u32) -> u32 {
    if w == 100 { 200 } else { 100 }
}

/// `n` edits, one call each, cycling over the real servers.
/// The real servers' settings as the kernel lists them.
fn configs(b: &mut Backend, svc: &ServiceKey) -> anyhow::Result<Vec<DestConfig>> {
    Ok(b.real_servers(svc)?.into_iter().map(|r| r.config).collect())
}

fn single_edits(b: &mut Backend, svc: &ServiceKey, n: u32) -> anyhow::Result<Duration> {
    let mut list = configs(b, svc)?;
    let start = Instant::now();
    for k in 0..n as usize {
        let i = k % list.len();
        list[i].weight = flip(list[i].weight);
        b.edit_real_server(svc, &list[i])?;
    }
    let took = start.elapsed();
    ensure!(configs(b, svc)? == list, "the kernel does not hold the weights written");
    Ok(took)
}

/// `n` edits in batches of one round over the real servers.
fn batch_edits(b: &mut Backend, svc: &ServiceKey, n: u32) -> anyhow::Result<Duration> {
    let mut list = configs(b, svc)?;
    let start = Instant::now();
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(list.len());
        list[..k].iter_mut().for_each(|d| d.weight = flip(d.weight));
        b.edit_real_servers_batch(svc, &list[..k])?;
        left -= k;
    }
    let took = start.elapsed();
    ensure!(configs(b, svc)? == list, "the kernel does not hold the weights written");
    Ok(took)
}
