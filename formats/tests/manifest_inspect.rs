mod common;

use std::fs;
use std::process::Command;

use common::{TestDir, values};
use formats::{
    FileStatus, Manifest, Owner, PassStatus, RunState, RunStatus, SegmentData, SegmentMeta,
    SegmentRecord, atomic_write, inspect_spill_dir, write_segment,
};

/// A spill dir with three recorded segments under `main/`.
fn populated(dir: &TestDir) -> Manifest {
    fs::create_dir_all(dir.join("main")).unwrap();
    let mut m = Manifest::new("run-test");
    m.begin_pass("main");
    for chunk in 0..3 {
        let col = values(256, chunk);
        let file = format!("main/cpu-{chunk:06}.trace.arrow");
        let info = write_segment(
            dir.join(&file),
            &SegmentMeta::new("cpu", chunk, "main", "trace"),
            SegmentData::Columns(&[&col, &col]),
        )
        .unwrap();
        m.record_segment(SegmentRecord::from_info(file, &info));
    }
    m.end_pass("main", PassStatus::Finished);
    m
}

#[test]
fn manifest_round_trip() {
    let dir = TestDir::new("manifest");
    let mut m = populated(&dir);
    m.error = Some("boom \"quoted\"\nnewline".into());
    m.store(&dir.0, true).unwrap();
    let back = Manifest::load(&dir.0).unwrap();
    assert_eq!(back, m);
    m.store(&dir.0, false).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap(), m);
    // Edits anywhere in the list (not only appends) reach the file.
    m.segments.values_mut().next().unwrap().bytes = 1;
    m.store(&dir.0, false).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap(), m);
    let again = m.segments.values().nth(1).unwrap().clone();
    m.record_segment(again);
    let first = m.segments.keys().next().unwrap().clone();
    assert!(m.remove_segment(&first));
    m.store(&dir.0, false).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap(), m);
    assert_eq!(m.segments.len(), 2);
    m.segments.clear();
    m.store(&dir.0, false).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap(), m);
    // Only the manifest and the segment dir: no temp files.
    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let text = fs::read_to_string(dir.join("manifest.toml")).unwrap();
    assert!(text.contains("status = \"in-progress\""), "{text}");
}

#[test]
fn corrupt_manifest_is_an_error_naming_it() {
    let dir = TestDir::new("badmanifest");
    fs::write(dir.join("manifest.toml"), "format = 3\n[[[").unwrap();
    let err = Manifest::load(&dir.0).unwrap_err();
    assert!(err.to_string().contains("manifest.toml"), "{err}");
    let err = inspect_spill_dir(dir.join("nowhere"), false).unwrap_err();
    assert!(
        err.to_string().contains("not a stark-pipe spill dir"),
        "{err}"
    );
}

#[test]
fn running_finished_failed_and_interrupted_runs_are_told_apart() {
    let dir = TestDir::new("states");
    let mut m = populated(&dir);
    m.store(&dir.0, true).unwrap();
    let report = inspect_spill_dir(&dir.0, false).unwrap();
    assert_eq!(
        report.state,
        RunState::Running {
            pid: std::process::id()
        }
    );

    // A process that has exited: its pid no longer matches a live process.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    m.owner = Owner {
        pid: dead_pid,
        start_ticks: Some(1),
    };
    m.store(&dir.0, true).unwrap();
    let report = inspect_spill_dir(&dir.0, false).unwrap();
    assert_eq!(report.state, RunState::Interrupted { pid: dead_pid });
    assert!(report.to_string().contains("INTERRUPTED"), "{report}");

    // Same pid as ours but another start time: a recycled pid, so the owner is gone.
    m.owner = Owner {
        pid: std::process::id(),
        start_ticks: Some(u64::MAX >> 2),
    };
    m.store(&dir.0, true).unwrap();
    assert!(matches!(
        inspect_spill_dir(&dir.0, false).unwrap().state,
        RunState::Interrupted { .. }
    ));

    m.status = RunStatus::Failed;
    m.error = Some("stage `lde` failed at chunk cpu#2".into());
    m.store(&dir.0, true).unwrap();
    let report = inspect_spill_dir(&dir.0, false).unwrap();
    assert!(matches!(report.state, RunState::Failed { .. }));
    assert!(report.to_string().contains("cpu#2"));

    m.status = RunStatus::Finished;
    m.store(&dir.0, true).unwrap();
    assert_eq!(
        inspect_spill_dir(&dir.0, false).unwrap().state,
        RunState::Finished
    );
}

#[test]
fn inspect_reports_missing_corrupt_and_partial_files() {
    let dir = TestDir::new("inspect");
    let mut m = populated(&dir);
    m.store(&dir.0, true).unwrap();
    let report = inspect_spill_dir(&dir.0, true).unwrap();
    assert!(report.all_segments_ok());
    assert!(
        report
            .segments
            .iter()
            .all(|(_, s)| *s == FileStatus::Verified)
    );

    fs::remove_file(dir.join("main/cpu-000000.trace.arrow")).unwrap();
    let p1 = dir.join("main/cpu-000001.trace.arrow");
    let mut bytes = fs::read(&p1).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&p1, &bytes).unwrap();
    let p2 = dir.join("main/cpu-000002.trace.arrow");
    fs::write(&p2, b"short").unwrap();
    fs::write(dir.join("main/.cpu-000003.trace.arrow.tmp-1-0"), b"partial").unwrap();

    let report = inspect_spill_dir(&dir.0, true).unwrap();
    let statuses: Vec<_> = report.segments.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(statuses[0], FileStatus::Missing);
    assert!(matches!(statuses[1], FileStatus::ChecksumMismatch { .. }));
    assert_eq!(statuses[2], FileStatus::SizeMismatch { actual: 5 });
    assert_eq!(report.partial_files.len(), 1);
    let text = report.to_string();
    println!("{text}");
    for needle in ["MISSING", "BAD", "SIZE 5", "partial", "3 BAD", "cpu"] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // Without verification a same-size corruption is not visible.
    let quick = inspect_spill_dir(&dir.0, false).unwrap();
    assert_eq!(quick.segments[1].1, FileStatus::Present);
}

#[test]
fn atomic_write_replaces_whole_files_and_leaves_nothing_on_error() {
    let dir = TestDir::new("atomic");
    let path = dir.join("fib.proof");
    atomic_write(&path, b"first version").unwrap();
    atomic_write(&path, b"second").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second");
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);

    let err = atomic_write(dir.join("no/such/dir/x.proof"), b"x").unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

/// Unmounts the test tmpfs even if an assertion fails.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_is_a_clear_error_and_leaves_no_partial_file() {
    let dir = TestDir::new("enospc");
    let mnt = dir.join("small");
    fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!(
            "SKIPPED full_disk_is_a_clear_error: cannot mount a 1 MiB tmpfs (needs root); \
             the reservation path is only covered by the unit checks of the error mapping"
        );
        return;
    }
    let _guard = Mount(mnt.clone());

    // 2 columns x 2^16 rows x 8 bytes = 1 MiB of values: cannot fit in 1 MiB with metadata.
    let col = values(1 << 16, 5);
    let path = mnt.join("cpu-000000.trace.arrow");
    let err = write_segment(
        &path,
        &SegmentMeta::new("cpu", 0, "main", "trace"),
        SegmentData::Columns(&[&col, &col]),
    )
    .unwrap_err();
    assert!(err.is_no_space(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("not enough disk space")
            && msg.contains("No space left on device")
            && msg.contains("cpu-000000.trace.arrow"),
        "{msg}"
    );
    assert_eq!(
        fs::read_dir(&mnt).unwrap().count(),
        0,
        "partial file left behind"
    );

    let err = atomic_write(mnt.join("big.proof"), &vec![7u8; 2 << 20]).unwrap_err();
    assert!(
        err.is_no_space() && err.to_string().contains("big.proof"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&mnt).unwrap().count(),
        0,
        "partial file left behind"
    );

    // A file that fits still works on the same filesystem.
    let small = values(1000, 1);
    write_segment(
        &path,
        &SegmentMeta::new("cpu", 0, "main", "trace"),
        SegmentData::Columns(&[&small]),
    )
    .unwrap();
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 1);
}

/// Runs in a child process (see below): a 1 MiB file size limit stands in for a full disk.
#[test]
fn file_size_limit_child() {
    let Some(dir) = std::env::var_os("FORMATS_FSIZE_CHILD_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    // SAFETY: plain syscalls; SIGXFSZ must be ignored or exceeding the limit kills the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let col = values(1 << 16, 5);
    let path = dir.join("cpu-000000.trace.arrow");
    let err = write_segment(
        &path,
        &SegmentMeta::new("cpu", 0, "main", "trace"),
        SegmentData::Columns(&[&col, &col]),
    )
    .unwrap_err();
    println!("CHILD-ERROR: {err}");
    assert!(
        err.is_no_space() && err.to_string().contains("cpu-000000.trace.arrow"),
        "{err}"
    );
    let err = atomic_write(dir.join("big.proof"), &vec![7u8; 2 << 20]).unwrap_err();
    assert!(
        err.is_no_space() && err.to_string().contains("big.proof"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "partial file left behind"
    );
    println!("CHILD-OK");
}

/// No root needed: the same checks under RLIMIT_FSIZE in a child process, where the kernel
/// refuses to grow a file past 1 MiB (EFBIG) much as a full disk refuses with ENOSPC.
#[test]
fn file_size_limit_is_a_clear_error_and_leaves_no_partial_file() {
    let dir = TestDir::new("fsize");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "file_size_limit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FORMATS_FSIZE_CHILD_DIR", &dir.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = stdout.find("CHILD-ERROR").expect("child printed its error");
    println!("{}", stdout[at..].lines().next().unwrap());
}

#[test]
fn journal_changes_are_replayed_and_folded_by_store() {
    use formats::{JOURNAL_FILE, Journal};
    let dir = TestDir::new("journal");
    let mut m = populated(&dir);
    m.store(&dir.0, true).unwrap();
    let mut journal = Journal::open(&dir.0).unwrap();
    let first = m.segments.keys().next().unwrap().clone();
    let mut moved = m.segments[&first].clone();
    moved.file = "main/cpu-000009.trace.arrow".into();
    journal.record_segment(&mut m, moved).unwrap();
    assert!(journal.remove_segment(&mut m, &first).unwrap());
    assert!(!journal.remove_segment(&mut m, "main/none.arrow").unwrap());
    assert_eq!(journal.lines(), 3);
    // The manifest file was not rewritten; loading replays the journal.
    let text = fs::read_to_string(dir.join("manifest.toml")).unwrap();
    assert!(!text.contains("cpu-000009"), "{text}");
    assert_eq!(Manifest::load(&dir.0).unwrap().segments, m.segments);

    // A last line cut short by a crash is ignored; a bad complete line is corruption.
    let path = dir.join(JOURNAL_FILE);
    let whole = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{whole}{{\"remove\":\"main/cpu-0000")).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap().segments, m.segments);
    fs::write(&path, format!("{{\"remove\":3}}\n{whole}")).unwrap();
    let err = Manifest::load(&dir.0).unwrap_err().to_string();
    assert!(
        err.contains(JOURNAL_FILE) && err.contains("line 1"),
        "{err}"
    );
    fs::write(&path, &whole).unwrap();

    // Storing folds the journal into the file and empties it; more changes append again.
    m.store(&dir.0, false).unwrap();
    journal.folded();
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(Manifest::load(&dir.0).unwrap(), m);
    let last = m.segments.keys().last().unwrap().clone();
    journal.remove_segment(&mut m, &last).unwrap();
    assert_eq!(Manifest::load(&dir.0).unwrap().segments, m.segments);
    assert_eq!(m.segments.len(), 2);
}
