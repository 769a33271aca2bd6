//! `lvsim status`: the parsers on text captured from Slurm 22.05 (Debian 12), and the
//! states [`assess`] decides.

use super::*;
use crate::commands::shard::{FORMAT, Invocation, Kind, UnitFailure, UnitResult};
use crate::commands::slurm::Submission;

/// `squeue -h -r -j 5,4 -o '%F|%K|%T|%r'` (`%i|` dropped) of a held array `1-3,5` and its
/// merge job, captured on the test cluster.
const SQUEUE: &str = "5|N/A|PENDING|JobHeldUser\n4|1|PENDING|JobHeldUser\n4|2|PENDING|JobHeldUser\n\
                      4|3|RUNNING|None\n4|5|PENDING|JobHeldUser\n";

/// `scontrol -o show job 6` of an array of three tasks, the second exiting 3 (cut after
/// `ExitCode`, as the parser reads nothing further).
const SCONTROL: &str = "\
JobId=6 ArrayJobId=6 ArrayTaskId=3 JobName=lvsim-x UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00
JobId=8 ArrayJobId=6 ArrayTaskId=2 JobName=lvsim-x UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:00
JobId=7 ArrayJobId=6 ArrayTaskId=1 JobName=lvsim-x UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00
";

#[test]
fn task_ids_in_slurm_notations() {
    assert_eq!(parse_task_ids("5"), Some(vec![5]));
    assert_eq!(parse_task_ids("1-3,5"), Some(vec![1, 2, 3, 5]));
    assert_eq!(parse_task_ids("[1-3,5]"), Some(vec![1, 2, 3, 5]));
    assert_eq!(parse_task_ids("1-9:4"), Some(vec![1, 5, 9]));
    assert_eq!(parse_task_ids("1-4%2"), Some(vec![1, 2, 3, 4]));
    for bad in ["N/A", "", "a-b", "1-3:0", "x"] {
        assert_eq!(parse_task_ids(bad), None, "{bad}");
    }
    // Hostile: a huge range is cut at MAX_SHARDS, never allocated whole.
    assert_eq!(parse_task_ids("1-4294967295").map(|v| v.len()), Some(shard::MAX_SHARDS as usize));
    assert_eq!(parse_task_ids("1-100000,1-100000"), None);
}

#[test]
fn squeue_rows_are_tasks_and_jobs() {
    let r = parse_squeue(SQUEUE);
    assert_eq!(r.len(), 5);
    assert_eq!(
        r[0],
        JobRecord { job: 5, tasks: None, state: "PENDING".into(), reason: Some("JobHeldUser".into()) }
    );
    assert_eq!(r[3], JobRecord { job: 4, tasks: Some(vec![3]), state: "RUNNING".into(), reason: None });
    assert!(parse_squeue("garbage\n|||\n12|x|\n").is_empty());
}

#[test]
fn scontrol_lines_give_array_tasks_and_exit_codes() {
    let r = parse_scontrol(SCONTROL);
    assert_eq!(r.len(), 3);
    assert_eq!(r[1].job, 6);
    assert_eq!(r[1].tasks, Some(vec![2]));
    assert_eq!(r[1].state, "FAILED");
    assert_eq!(r[1].reason.as_deref(), Some("NonZeroExitCode, exit 3:0"));
    assert_eq!(r[0].reason, None);
    // A pending array is one line with a range; a plain job has no ArrayJobId.
    let pending = "JobId=4 ArrayJobId=4 ArrayTaskId=1-3,5 JobName=dcap UserId=root(0) JobState=PENDING Reason=JobHeldUser ExitCode=0:0";
    assert_eq!(parse_scontrol(pending)[0].tasks, Some(vec![1, 2, 3, 5]));
    let merge = "JobId=5 JobName=dcapm UserId=root(0) JobState=COMPLETED Reason=None ExitCode=0:0";
    assert_eq!(
        parse_scontrol(merge)[0],
        JobRecord { job: 5, tasks: None, state: "COMPLETED".into(), reason: None }
    );
    // A job name that mimics fields is skipped.
    let sly =
        "JobId=9 JobName=x JobState=COMPLETED ArrayJobId=1 UserId=root(0) JobState=TIMEOUT Reason=TimeLimit";
    assert_eq!(parse_scontrol(sly)[0].state, "TIMEOUT");
    assert_eq!(parse_scontrol(sly)[0].tasks, None);
}

#[test]
fn sacct_lines_skip_steps_and_keep_the_first_word() {
    let text = "12_3|FAILED|3:0\n12_3.batch|FAILED|3:0\n12_[4-6]|PENDING|0:0\n13|CANCELLED by 0|0:0\n";
    let r = parse_sacct(text);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[0],
        JobRecord { job: 12, tasks: Some(vec![3]), state: "FAILED".into(), reason: Some("exit 3:0".into()) }
    );
    assert_eq!(r[1].tasks, Some(vec![4, 5, 6]));
    assert_eq!(r[2], JobRecord { job: 13, tasks: None, state: "CANCELLED".into(), reason: None });
}

fn identity(n: u32, fingerprint: &str) -> Identity {
    Identity {
        format: FORMAT,
        lvsim: shard::version(),
        kind: Kind::Sweep,
        scenario: "s".into(),
        fingerprint: fingerprint.into(),
        units: 12,
        shards: n,
    }
}

fn shard_file(k: u32, id: &Identity, failed: bool) -> ShardFile {
    let spec = ShardSpec { k, n: id.shards };
    let mut results: Vec<UnitResult> = spec
        .units(id.units)
        .map(|unit| UnitResult {
            unit,
            label: format!("rate={unit}"),
            summary: Default::default(),
            input: None,
        })
        .collect();
    let mut failures = Vec::new();
    if failed {
        let u = results.remove(0);
        failures.push(UnitFailure {
            unit: u.unit,
            label: u.label,
            error: "trace t.csv: no such file".into(),
        });
    }
    ShardFile {
        identity: id.clone(),
        shard: k,
        invocation: Invocation::default(),
        host: "h".into(),
        wall_s: 0.5,
        results,
        failures,
        first_text: None,
    }
}

fn found(dir: &Path, name: &str, s: ShardFile) -> Found {
    Found { path: dir.join(name), shard: Ok(s) }
}

fn states(st: &Status) -> Vec<(u32, State)> {
    st.per_shard.iter().map(|p| (p.k, p.state)).collect()
}

#[test]
fn files_alone_give_done_failed_missing_and_refusals() {
    let dir = Path::new("/x/s-sweep.shards");
    let id = identity(6, "f1");
    let files = vec![
        found(dir, "shard-1-of-6.json", shard_file(1, &id, false)),
        found(dir, "shard-2-of-6.json", shard_file(2, &id, true)),
        found(dir, "shard-3-of-6.json", shard_file(3, &identity(6, "f2"), false)),
        found(dir, "shard-4-of-6.json", shard_file(5, &id, false)),
        Found { path: dir.join("shard-6-of-6.json"), shard: Err(anyhow::anyhow!("1:1: not a shard file")) },
    ];
    let st = assess(dir, &files, None, None, &[]).expect("a split");
    use State::*;
    assert_eq!(
        states(&st),
        vec![(1, Done), (2, Failed), (3, Missing), (4, Missing), (5, Missing), (6, Missing)]
    );
    assert_eq!((st.done, st.failed, st.missing, st.running, st.pending), (1, 1, 4, 0, 0));
    assert_eq!(st.failures.len(), 1);
    assert_eq!((st.failures[0].shard, st.failures[0].unit), (2, 1));
    assert_eq!(st.refused.len(), 3, "{:?}", st.refused);
    let why: Vec<&str> = st.refused.iter().map(|r| r.why.as_str()).collect();
    assert!(why.iter().any(|w| w.contains("not a shard file")));
    assert!(why.iter().any(|w| w.contains("holds shard 5/6")));
    assert!(why.iter().any(|w| w.contains("another split") && w.contains("fingerprint") && w.contains("f2")));
    let text = text(&st);
    assert!(text.contains("1 done, 1 failed, 0 running, 0 pending, 4 missing of 6"), "{text}");
    assert!(text.contains("missing: 3-6"), "{text}");
    assert!(text.contains("failed: shard 2, unit 1 (rate=1): trace t.csv: no such file"), "{text}");
    assert!(assess(dir, &[], None, None, &[]).is_none());
}

#[test]
fn slurm_states_decide_what_files_do_not() {
    let dir = Path::new("/x/s.shards");
    let id = identity(6, "f1");
    let jobs = Jobs {
        shards: 6,
        report_dir: "/x/s".into(),
        submissions: vec![
            Submission { array_job: 6, merge_job: 7, tasks: vec![1, 2, 3, 4, 5, 6], at: 1 },
            Submission { array_job: 20, merge_job: 21, tasks: vec![2, 5], at: 2 },
        ],
    };
    let files = vec![
        found(dir, "shard-1-of-6.json", shard_file(1, &id, false)),
        found(dir, "shard-2-of-6.json", shard_file(2, &id, true)),
    ];
    let mut records = parse_scontrol(SCONTROL);
    records.extend(parse_squeue("20|2|RUNNING|None\n20|5|PENDING|Priority\n21|N/A|PENDING|Dependency\n"));
    // Shard 4's task is unknown to Slurm, 6 too; shard 3 (task 6_3) completed without a file.
    let st = assess(dir, &files, None, Some(&jobs), &records).expect("a split");
    use State::*;
    assert_eq!(
        states(&st),
        vec![(1, Done), (2, Running), (3, Failed), (4, Missing), (5, Pending), (6, Missing)]
    );
    assert_eq!(st.per_shard[1].task.as_deref(), Some("20_2"));
    assert_eq!(st.per_shard[2].detail.as_deref(), Some("its task completed but left no shard file"));
    assert_eq!(st.per_shard[3].detail.as_deref(), Some("Slurm no longer knows its task"));
    let merge = st.merge.as_ref().expect("a merge job");
    assert_eq!((merge.job, merge.state.as_deref()), (21, Some("PENDING")));
    // The failed file of shard 2 is still listed while its new task runs.
    assert_eq!(st.failures.len(), 1);
    // A task that FAILED without a file is failed, with Slurm's words.
    let jobs1 = Jobs { submissions: jobs.submissions[..1].to_vec(), ..jobs.clone() };
    let st = assess(dir, &files[..1], Some(&id), Some(&jobs1), &parse_scontrol(SCONTROL)).expect("a split");
    assert_eq!(st.per_shard[1].state, Failed);
    assert_eq!(
        st.per_shard[1].detail.as_deref(),
        Some("its task ended FAILED (NonZeroExitCode, exit 3:0) without a shard file")
    );
    let text = text(&st);
    assert!(text.contains("shard 2 (task 6_2): its task ended FAILED"), "{text}");
    assert!(text.contains("merge job 7: unknown to Slurm"), "{text}");
}

#[test]
fn written_shard_files_are_scanned_back() {
    let tmp = std::env::temp_dir().join(format!("lvsim-status-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let id = identity(3, "f1");
    shard::write(&tmp, &shard_file(1, &id, false)).expect("writing");
    shard::write(&tmp, &shard_file(3, &id, true)).expect("writing");
    std::fs::write(tmp.join("shard-2-of-3.json"), "{ truncated").expect("writing");
    let st = assess(&tmp, &shard::scan(&tmp).expect("scan"), None, None, &[]).expect("a split");
    let _ = std::fs::remove_dir_all(&tmp);
    use State::*;
    assert_eq!(states(&st), vec![(1, Done), (2, Missing), (3, Failed)]);
    assert_eq!(st.refused.len(), 1);
    assert!(st.refused[0].why.contains("not a shard file"), "{:?}", st.refused);
}

#[test]
fn the_identity_of_slurm_decides_over_a_majority_of_files() {
    let dir = Path::new("/x/s.shards");
    let (old, new) = (identity(3, "old"), identity(3, "new"));
    let files = vec![
        found(dir, "shard-1-of-3.json", shard_file(1, &old, false)),
        found(dir, "shard-2-of-3.json", shard_file(2, &old, false)),
        found(dir, "shard-3-of-3.json", shard_file(3, &new, false)),
    ];
    let st = assess(dir, &files, Some(&new), None, &[]).expect("a split");
    use State::*;
    assert_eq!(states(&st), vec![(1, Missing), (2, Missing), (3, Done)]);
    assert_eq!(st.refused.len(), 2);
    let st = assess(dir, &files, None, None, &[]).expect("a split");
    assert_eq!(states(&st), vec![(1, Done), (2, Done), (3, Missing)]);
}
