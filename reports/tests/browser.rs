//! The report pages in a real browser: headless Chromium renders each `report.html`
//! (a run, one with feedback, one with HA; a sweep, a plan) to a PNG, which must show
//! charts (many non-white pixels, several distinct line colours), and Chromium must report
//! no failed resource load.
//!
//! Chromium is required: without `/usr/bin/chromium` (or `LVSIM_CHROMIUM`) these tests
//! fail, unless `LVSIM_SKIP_BROWSER=1`, which skips them with a notice. Debian:
//! `apt-get install chromium`.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser, or `None` when the caller asked to skip browser tests.
fn chromium() -> Option<PathBuf> {
    if std::env::var("LVSIM_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("NOTICE: LVSIM_SKIP_BROWSER=1: the real-browser report tests are skipped");
        return None;
    }
    let path =
        std::env::var_os("LVSIM_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the report pages are tested in headless Chromium. Install it \
         (`apt-get install chromium`), point LVSIM_CHROMIUM at it, or set LVSIM_SKIP_BROWSER=1 \
         to skip these tests",
        path.display()
    );
    Some(path)
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-browser").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

/// Runs Chromium headless on `page` with `args`, with its own profile in `work`; returns
/// its stdout and stderr. Fails after two minutes.
fn run_chromium(browser: &Path, work: &Path, tag: &str, page: &Path, args: &[&str]) -> (String, String) {
    let (out, err) = (work.join(format!("{tag}.stdout")), work.join(format!("{tag}.stderr")));
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .args(["--disable-extensions", "--disable-background-networking", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", work.join(format!("{tag}.profile")).display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", browser.display()));
    // A deadline for a hung browser, not a synchronisation: the exit status is awaited.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 2 minutes on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(err).unwrap());
    assert!(status.success(), "chromium failed ({status}) on {}:\n{err}", page.display());
    (out, err)
}

/// What the page loaded, as the browser saw it.
struct Probe {
    /// Resource Timing entries (every fetch the page made), JSON.
    resources: String,
    /// Images that did not load, and elements that load other documents or scripts, JSON.
    broken: String,
    /// `<svg>` elements in the parsed page.
    svgs: usize,
}

/// Loads `page` in an iframe of a test page whose script lists what the report fetched
/// (the report itself has no script); `--dump-dom` prints the result.
fn probe(browser: &Path, work: &Path, page: &Path) -> Probe {
    let wrapper = work.join("probe.html");
    let url = format!("file://{}", page.display()).replace('"', "%22");
    let script = r#"
const f = document.getElementById('f');
f.addEventListener('load', () => {
  const d = f.contentDocument, w = f.contentWindow;
  const res = w.performance.getEntriesByType('resource').map(e => e.name);
  const broken = [...d.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)
    .concat([...d.querySelectorAll('script,link,iframe,object,embed,image,use')].map(e => e.outerHTML.slice(0, 80)));
  const probe = { resources: res, broken: broken, svgs: d.querySelectorAll('svg').length };
  document.getElementById('out').textContent = 'PRO' + 'BE ' + JSON.stringify(probe) + ' E' + 'ND';
});"#;
    let html = format!(
        "<!DOCTYPE html><html><body><iframe id=\"f\" src=\"{url}\"></iframe><pre id=\"out\">pending</pre>\
         <script>{script}</script></body></html>"
    );
    std::fs::write(&wrapper, html).expect("probe page");
    let args = ["--dump-dom", "--allow-file-access-from-files", "--virtual-time-budget=10000"];
    let (dom, log) = run_chromium(browser, work, "probe", &wrapper, &args);
    let json = dom
        .split_once("PROBE ")
        .and_then(|(_, rest)| rest.split_once(" END"))
        .map(|(json, _)| json.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("the probe did not report for {}:\n{log}", page.display()));
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output {json}: {e}"));
    Probe {
        resources: v["resources"].to_string(),
        broken: v["broken"].to_string(),
        svgs: v["svgs"].as_u64().expect("svgs") as usize,
    }
}

/// Decodes a PNG into RGB pixels.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let mut decoder = png::Decoder::new(BufReader::new(File::open(path).expect("screenshot")));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Indexed => unreachable!("EXPAND turns palette images into RGB"),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| if channels >= 3 { [p[0], p[1], p[2]] } else { [p[0]; 3] })
        .collect();
    (info.width, info.height, pixels)
}

/// Non-white pixels a page with a chart shows at least: a 200 × 200 px area's worth (one
/// chart's lines, grid and labels come to several times that; a line of text to less).
const MIN_INK: usize = 40_000;

/// What a screenshot shows.
struct Looks {
    /// Pixels that are not (near) white.
    ink: usize,
    /// Distinct saturated colours (quantised to 8 levels a channel) covering at least 200
    /// pixels each: chart lines, markers and accents; text and grid lines are grey.
    colours: usize,
}

fn looks(path: &Path) -> Looks {
    let (w, h, pixels) = decode_png(path);
    assert_eq!(pixels.len(), (w * h) as usize);
    let ink = pixels.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
    let mut counts = std::collections::BTreeMap::<[u8; 3], usize>::new();
    for p in &pixels {
        let (max, min) = (*p.iter().max().unwrap(), *p.iter().min().unwrap());
        if max - min > 80 {
            *counts.entry(p.map(|c| c >> 5)).or_default() += 1;
        }
    }
    let colours: BTreeSet<_> = counts.into_iter().filter(|&(_, n)| n >= 200).map(|(c, _)| c).collect();
    Looks { ink, colours: colours.len() }
}

/// Renders `page` in Chromium and checks it loaded everything and shows charts.
fn check_in_browser(browser: &Path, work: &Path, page: &Path, min_svgs: usize) {
    let html = std::fs::read_to_string(page).expect("report.html");
    for attr in ["src=", "srcset=", "xlink:href=", "url(", "@import", "<script", "<link"] {
        assert!(!html.contains(attr), "{attr} in {}: the page must be self-contained", page.display());
    }
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "a link out of {}: {}", page.display(), &href[..href.len().min(60)]);
    }
    let png = work.join("screenshot.png");
    let screenshot = format!("--screenshot={}", png.display());
    let (_, log) = run_chromium(browser, work, "shot", page, &[&screenshot, "--window-size=1280,4000"]);
    for bad in ["Failed to load resource", "net::ERR_", "Uncaught", "Refused to"] {
        assert!(!log.contains(bad), "chromium reported {bad:?} for {}:\n{log}", page.display());
    }
    let probe = probe(browser, work, page);
    assert_eq!(probe.resources, "[]", "{} fetched resources", page.display());
    assert_eq!(probe.broken, "[]", "{} has broken images or embedded resources", page.display());
    assert!(
        probe.svgs >= min_svgs,
        "the parsed page has {} charts, expected at least {min_svgs}",
        probe.svgs
    );
    let l = looks(&png);
    eprintln!("{}: {} ink pixels, {} colours", page.display(), l.ink, l.colours);
    assert!(l.ink > MIN_INK, "the screenshot of {} is nearly blank ({} ink pixels)", page.display(), l.ink);
    assert!(
        l.colours >= 3,
        "the screenshot of {} shows {} line colours, expected >= 3",
        page.display(),
        l.colours
    );
}

#[test]
fn a_run_report_renders_in_chromium() {
    let Some(browser) = chromium() else { return };
    let work = tmp("run");
    let dir = work.join("report");
    reports::write_run(&dir, &common::meta(), &common::run(3, 2, 50)).expect("writes");
    check_in_browser(&browser, &work, &dir.join("report.html"), 8);
}

#[test]
fn a_feedback_run_report_renders_in_chromium() {
    let Some(browser) = chromium() else { return };
    let work = tmp("run-feedback");
    let dir = work.join("report");
    let r = common::with_feedback(common::run(3, 2, 50));
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    check_in_browser(&browser, &work, &dir.join("report.html"), 9);
}

#[test]
fn an_ha_run_report_renders_in_chromium() {
    let Some(browser) = chromium() else { return };
    let work = tmp("run-ha");
    let dir = work.join("report");
    let r = common::with_ha(common::run(3, 2, 50));
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    // The eight charts of every run, then failed connections and director share.
    check_in_browser(&browser, &work, &dir.join("report.html"), 10);
}

#[test]
fn a_sweep_report_renders_in_chromium() {
    let Some(browser) = chromium() else { return };
    let work = tmp("sweep");
    let dir = work.join("report");
    reports::write_sweep(&dir, &common::sweep()).expect("writes");
    check_in_browser(&browser, &work, &dir.join("report.html"), 4);
}

#[test]
fn a_plan_report_renders_in_chromium() {
    let Some(browser) = chromium() else { return };
    let work = tmp("plan");
    let dir = work.join("report");
    reports::write_plan(&dir, &common::plan(55.0)).expect("writes");
    check_in_browser(&browser, &work, &dir.join("report.html"), 1);
}

#[test]
fn the_probe_sees_fetches_and_broken_images() {
    let Some(browser) = chromium() else { return };
    let work = tmp("probe");
    let page = work.join("bad.html");
    let bad = "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/x.png\"><img src=\"missing.png\">\
               <svg width=\"10\" height=\"10\"></svg></body></html>";
    std::fs::write(&page, bad).unwrap();
    let p = probe(&browser, &work, &page);
    assert!(p.resources.contains("http://127.0.0.1:9/x.png"), "{}", p.resources);
    assert!(p.broken.contains("missing.png") && p.broken.contains("x.png"), "{}", p.broken);
    assert_eq!(p.svgs, 1);
}

#[test]
fn a_blank_page_fails_the_check() {
    let Some(browser) = chromium() else { return };
    let work = tmp("blank");
    let page = work.join("blank.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><p>nothing to see here</p></body></html>").unwrap();
    let png = work.join("screenshot.png");
    let screenshot = format!("--screenshot={}", png.display());
    run_chromium(&browser, &work, "shot", &page, &[&screenshot, "--window-size=1280,4000"]);
    let l = looks(&png);
    assert!(
        l.ink < MIN_INK && l.colours < 3,
        "a blank page looks blank: {} ink pixels, {} colours",
        l.ink,
        l.colours
    );
}
