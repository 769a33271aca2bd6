//! `lvsim completions SHELL` and `lvsim man`: generated from the clap definitions.

use std::path::Path;

/// Prints a completion script. (Skeleton: filled in by the install work.)
pub fn completions(cmd: clap::Command, shell: &str) -> anyhow::Result<()> {
    anyhow::bail!("completions for {shell} ({}): not built yet", cmd.get_name())
}

/// Writes or prints man pages. (Skeleton: filled in by the install work.)
pub fn man(cmd: clap::Command, out: Option<&Path>) -> anyhow::Result<()> {
    anyhow::bail!("man pages of {} to {out:?}: not built yet", cmd.get_name())
}
