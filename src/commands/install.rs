//! `lvsim completions SHELL` and `lvsim man`: generated from the clap definitions, so
//! they cannot drift from `--help`.
//!
//! Both render into memory first and then write: clap_complete panics on a failed
//! write, and a closed pipe (`lvsim completions bash | head`) must stay an ordinary
//! I/O error that `main` turns into a quiet exit.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap_complete::Shell;

/// Prints the completion script for `shell` on standard output.
pub fn completions(mut cmd: clap::Command, shell: Shell) -> anyhow::Result<()> {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// One man page: its file name (`lvsim-run.1`) and its roff text.
pub struct Page {
    /// File name.
    pub file: String,
    /// roff source.
    pub text: Vec<u8>,
}

/// The man pages of `cmd`: `NAME.1`, then one per subcommand (`NAME-SUB.1`,
/// `NAME-SUB-SUBSUB.1`), hidden ones and `help` left out.
pub fn pages(cmd: clap::Command) -> anyhow::Result<Vec<Page>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let source = format!("{} {}", cmd.get_name(), cmd.get_version().unwrap_or_default());
    let mut out = Vec::new();
    collect(&cmd, &source, &mut out)?;
    Ok(out)
}

fn collect(cmd: &clap::Command, source: &str, out: &mut Vec<Page>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).source(source).manual("lvsim manual");
    let mut text = Vec::new();
    man.render(&mut text).with_context(|| format!("rendering {}", man.get_filename()))?;
    out.push(Page { file: man.get_filename(), text });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, source, out)?;
    }
    Ok(())
}

/// Writes every page to `out` (created if missing) and lists them; without a
/// directory, prints `lvsim.1` on standard output.
pub fn man(cmd: clap::Command, out: Option<&Path>) -> anyhow::Result<()> {
    let pages = pages(cmd)?;
    let mut stdout = std::io::stdout().lock();
    let Some(dir) = out else {
        stdout.write_all(&pages[0].text)?;
        stdout.flush()?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for p in &pages {
        let path = dir.join(&p.file);
        std::fs::write(&path, &p.text).with_context(|| format!("writing {}", path.display()))?;
    }
    writeln!(
        stdout,
        "{} man pages in {}: {}",
        pages.len(),
        dir.display(),
        pages.iter().map(|p| p.file.as_str()).collect::<Vec<_>>().join(", ")
    )?;
    writeln!(stdout, "read one with `man -l {}`", dir.join(&pages[0].file).display())?;
    stdout.flush()?;
    Ok(())
}
