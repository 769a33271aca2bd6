//! The journal as files on disk: when to rotate (`--record-max-bytes`, `--record-keep`),
//! always between two lines, and how a file is read back as the runs appended to it.
//!
//! `feedbackd-master --record FILE` appends: each start of the master appends a run that
//! opens with its `start` record, so a file holds several runs, each with its own times
//! (from 0) and connection numbers. A run may be cut off by a crash (`kill -9`), leaving at
//! worst one unterminated last line; the master ends such a line before appending (so it
//! never glues onto the next run's `start`). A rotated file (`FILE.1`, ...) or one
//! reopened after SIGHUP starts in the middle of a run: what comes before its first `start`
//! is the tail of a run whose beginning is in the older file. To replay across rotations,
//! concatenate the files oldest first (`cat FILE.2 FILE.1 FILE`).

use crate::journal::{Entry, Record};

/// When and how the journal rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a line that would take the file past this many bytes (0: never).
    pub max_bytes: u64,
    /// Rotated files kept (`FILE.1` newest ... `FILE.keep` oldest); 0: none, the full file
    /// is removed.
    pub keep: u32,
}

/// One step of a rotation, in order; file `0` is `FILE` itself, `n` is `FILE.n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateStep {
    /// Rename file `from` to file `to` (replacing it).
    Rename {
        /// The file renamed.
        from: u32,
        /// Its new number.
        to: u32,
    },
    /// Remove file `0` (when nothing is kept).
    Remove,
}

impl Rotation {
    /// Whether to rotate before appending a line of `line_len` bytes (its newline included)
    /// to a file of `size` bytes. A file is never left empty by a rotation, so a single line
    /// longer than the cap still gets written (to a fresh file).
    pub fn before_line(&self, size: u64, line_len: u64) -> bool {
        self.max_bytes > 0 && size > 0 && size.saturating_add(line_len) > self.max_bytes
    }

    /// The renames that rotate: `FILE.keep-1 -> FILE.keep`, ..., `FILE -> FILE.1` (the
    /// oldest kept file is replaced); then the daemon creates `FILE` afresh.
    pub fn steps(&self) -> Vec<RotateStep> {
        if self.keep == 0 {
            return vec![RotateStep::Remove];
        }
        (0..self.keep).rev().map(|from| RotateStep::Rename { from, to: from + 1 }).collect()
    }
}

/// A journal file read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runs {
    /// Records before the first `start`: the tail of a run begun in an older file.
    pub head: Vec<Record>,
    /// Each run, opening with its `start` record.
    pub runs: Vec<Vec<Record>>,
    /// Lines (1-based) cut off by a crash and skipped: the last line of a run that does not
    /// parse, when the file ends there without a newline or the next run starts after it.
    pub torn: Vec<usize>,
}

/// Reads a journal file of appended runs. Blank lines and `#` comments are skipped. A line
/// that does not parse is an error naming it, unless it is a run's torn last line (see
/// [`Runs::torn`]).
pub fn parse_runs(text: &str) -> Result<Runs, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Runs::default();
    let mut current: Option<Vec<Record>> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let record = match Record::parse_line(line) {
            Ok(r) => r,
            Err(_) if is_torn(&lines, i) => {
                out.torn.push(i + 1);
                continue;
            }
            Err(e) => return Err(format!("line {}: {e}", i + 1)),
        };
        if matches!(record.entry, Entry::Start { .. }) {
            if let Some(run) = current.take() {
                out.runs.push(run);
            }
            current = Some(vec![record]);
        } else {
            match &mut current {
                Some(run) => run.push(record),
                None => out.head.push(record),
            }
        }
    }
    out.runs.extend(current);
    Ok(out)
}

/// Whether line `i` (which does not parse) is a run's torn end: the text's unterminated
/// last line, or the last line before the next run's `start`.
fn is_torn(lines: &[&str], i: usize) -> bool {
    let next = lines[i + 1..].iter().find(|l| !(l.trim().is_empty() || l.starts_with('#')));
    match next {
        None => i + 1 == lines.len(),
        Some(l) => Record::parse_line(l).is_ok_and(|r| matches!(r.entry, Entry::Start { .. })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "0 start law=capacity min_weight=1 max_weight=100 smoothing=0.2 dead_band=2 max_step=25 slow_start_ns=10000000000 quiesce_after_ns=5000000000 remove_after_ns=60000000000 register_timeout_ns=10000000000";

    #[test]
    fn rotation_cuts_between_lines_and_keeps_n_files() {
        let r = Rotation { max_bytes: 100, keep: 3 };
        assert!(!r.before_line(0, 500), "a fresh file takes even a line over the cap");
        assert!(!r.before_line(60, 40));
        assert!(r.before_line(60, 41));
        assert!(!Rotation { max_bytes: 0, keep: 3 }.before_line(u64::MAX, 1), "0: no cap");
        assert_eq!(
            r.steps(),
            [
                RotateStep::Rename { from: 2, to: 3 },
                RotateStep::Rename { from: 1, to: 2 },
                RotateStep::Rename { from: 0, to: 1 }
            ]
        );
        assert_eq!(Rotation { max_bytes: 1, keep: 0 }.steps(), [RotateStep::Remove]);
    }

    #[test]
    fn appended_runs_split_at_their_start_records() {
        let text = format!(
            "{START}\n5 connect conn=1 peer=127.0.0.1\n9 disconnect conn=1\n{START}\n3 connect conn=1 peer=127.0.0.1\n"
        );
        let runs = parse_runs(&text).unwrap();
        assert!(runs.head.is_empty() && runs.torn.is_empty());
        assert_eq!(runs.runs.len(), 2);
        assert_eq!(runs.runs[0].len(), 3);
        assert_eq!(runs.runs[1].len(), 2);
        assert!(runs.runs.iter().all(|r| matches!(r[0].entry, Entry::Start { .. })));
    }

    #[test]
    fn a_rotated_file_starts_with_the_tail_of_a_run() {
        let text = format!("7 disconnect conn=4\n{START}\n");
        let runs = parse_runs(&text).unwrap();
        assert_eq!(runs.head.len(), 1);
        assert_eq!(runs.runs.len(), 1);
    }

    #[test]
    fn a_crash_s_torn_line_is_skipped_only_at_a_run_s_end() {
        // Killed mid-line, then restarted: the master ended the torn line first.
        let text =
            format!("{START}\n5 connect conn=1 peer=127.0.0.1\n9 disconn\n{START}\n4 connect conn=1 pe");
        let runs = parse_runs(&text).unwrap();
        assert_eq!(runs.torn, [3, 5]);
        assert_eq!(runs.runs.len(), 2);
        assert_eq!(runs.runs[0].len(), 2);
        // A bad line followed by more of the same run is corruption, not a crash.
        let text = format!("{START}\n9 disconn\n10 disconnect conn=1\n");
        assert!(parse_runs(&text).unwrap_err().starts_with("line 2: "));
        // ... and so is a bad terminated last line.
        let text = format!("{START}\n9 disconn\n");
        assert!(parse_runs(&text).unwrap_err().starts_with("line 2: "));
    }
}
