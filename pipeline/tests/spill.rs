use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use formats::{
    FormatError, Manifest, RunState, RunStatus, SegmentData, SegmentMeta, inspect_spill_dir,
};
use pipeline::spill::{FsKind, filesystem_kind, find_stale_spill_dirs, remove_stale_spill_dirs};
use pipeline::{BoxError, ChunkDescriptor, Graph, Keep, SpillDir, SpillError, SpillOptions};

static N: AtomicU32 = AtomicU32::new(0);

/// A path (not yet created) on the real disk under Cargo's target tmp dir.
fn fresh_path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "spill-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&p);
    p
}

fn options(dir: &Path, keep: Keep) -> SpillOptions {
    SpillOptions {
        dir: Some(dir.to_path_buf()),
        keep,
        verify_segments: true,
        limit: None,
    }
}

fn write_chunk(spill: &SpillDir, chunk: u64, rows: usize) -> ChunkDescriptor {
    let col: Vec<u64> = (0..rows as u64).map(|r| r * 3 + chunk).collect();
    let meta = SegmentMeta::new("cpu", chunk, "main", "trace");
    let seg = spill
        .write_segment(&meta, SegmentData::Columns(&[&col, &col]))
        .unwrap();
    ChunkDescriptor::new("cpu", 0, chunk, rows as u64, "main").with_segment(seg)
}

#[test]
fn segments_are_recorded_and_the_dir_is_removed_on_success() {
    let dir = fresh_path("success");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    assert!(spill.warnings().is_empty(), "{:?}", spill.warnings());
    spill.begin_pass("main").unwrap();
    let d = write_chunk(&spill, 2, 100);
    assert_eq!(
        d.segments[0].path.as_ref(),
        dir.join("main/cpu-000002.trace.arrow")
    );
    let seg = spill.open_segment(d.segment("trace").unwrap()).unwrap();
    assert_eq!(seg.column(1).unwrap()[99], 99 * 3 + 2);
    // A segment filled in place through a mapping.
    let meta = SegmentMeta::new("cpu", 2, "main", "lde");
    let mut w = spill
        .create_mapped_segment(&meta, formats::Layout::RowMajor, 200, 3)
        .unwrap();
    w.values_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = i as u64);
    let lde = spill.record_segment(&w.finish().unwrap()).unwrap();
    let d = d.with_segment(lde);
    assert_eq!(
        d.open("lde", true).unwrap().row(199).unwrap(),
        &[597, 598, 599]
    );
    spill.end_pass("main").unwrap();

    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.status, RunStatus::InProgress);
    assert_eq!(m.segments.len(), 2);
    assert_eq!(m.segments["main/cpu-000002.trace.arrow"].rows, 100);
    assert_eq!(m.segments["main/cpu-000002.lde.arrow"].rows, 200);
    assert_eq!(spill.bytes_written(), m.total_bytes());

    assert_eq!(spill.finish().unwrap(), None);
    assert!(!dir.exists(), "spill dir not removed");
}

#[test]
fn keep_policies() {
    // Kept on success when asked; inspect explains it.
    let dir = fresh_path("keep");
    let spill = SpillDir::create(&options(&dir, Keep::Always)).unwrap();
    spill.begin_pass("main").unwrap();
    write_chunk(&spill, 0, 10);
    spill.end_pass("main").unwrap();
    assert_eq!(spill.finish().unwrap(), Some(dir.clone()));
    drop(spill);
    let report = inspect_spill_dir(&dir, true).unwrap();
    assert_eq!(report.state, RunState::Finished);
    assert!(report.all_segments_ok());
    fs::remove_dir_all(&dir).unwrap();

    // Kept on error with the error recorded; the running pass is marked failed.
    let dir = fresh_path("keep-on-error");
    let spill = SpillDir::create(&options(&dir, Keep::OnError)).unwrap();
    spill.begin_pass("main").unwrap();
    write_chunk(&spill, 0, 10);
    spill
        .fail(&"stage `lde` failed at chunk cpu#0: boom")
        .unwrap();
    drop(spill);
    let report = inspect_spill_dir(&dir, false).unwrap();
    assert!(matches!(&report.state, RunState::Failed { error: Some(e) } if e.contains("cpu#0")));
    assert!(report.to_string().contains("main (failed)"), "{report}");
    fs::remove_dir_all(&dir).unwrap();

    // Removed on error by default, also when dropped without finish/fail (early return, panic).
    let dir = fresh_path("drop");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    write_chunk(&spill, 0, 10);
    drop(spill);
    assert!(!dir.exists());

    // Dropped with keep-on-error: kept and marked failed.
    let dir = fresh_path("drop-keep");
    let spill = SpillDir::create(&options(&dir, Keep::OnError)).unwrap();
    drop(spill);
    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.status, RunStatus::Failed);
    assert!(m.error.unwrap().contains("dropped"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_run_is_detected_and_cleaned_by_the_next_run() {
    let dir = fresh_path("crash");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    spill.begin_pass("main").unwrap();
    write_chunk(&spill, 0, 10);
    write_chunk(&spill, 1, 10);
    std::mem::forget(spill); // as if the process died here

    // Same process, still alive: running, and a second run may not take the dir.
    assert!(matches!(
        inspect_spill_dir(&dir, false).unwrap().state,
        RunState::Running { .. }
    ));
    let err = SpillDir::create(&options(&dir, Keep::Never)).unwrap_err();
    assert!(matches!(err, SpillError::InUse { .. }), "{err}");

    // Pretend the owner died: give the manifest a dead pid.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut m = Manifest::load(&dir).unwrap();
    m.owner.pid = dead;
    m.store(&dir, true).unwrap();
    let report = inspect_spill_dir(&dir, true).unwrap();
    assert_eq!(report.state, RunState::Interrupted { pid: dead });
    assert!(report.all_segments_ok());
    println!("{report}");

    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    assert!(
        spill
            .warnings()
            .iter()
            .any(|w| w.contains("removed 2 files of an earlier interrupted run")),
        "{:?}",
        spill.warnings()
    );
    assert!(!dir.join("main/cpu-000000.trace.arrow").exists());
    spill.finish().unwrap();
    // The user gave an existing directory: it stays, emptied.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_foreign_directories_and_bad_names() {
    let dir = fresh_path("foreign");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("thesis.tex"), "precious").unwrap();
    let err = SpillDir::create(&options(&dir, Keep::Never)).unwrap_err();
    assert!(matches!(err, SpillError::NotEmpty { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(dir.join("thesis.tex")).unwrap(),
        "precious"
    );
    fs::remove_dir_all(&dir).unwrap();

    let dir = fresh_path("names");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    let col = [1u64, 2];
    let err = spill
        .write_segment(
            &SegmentMeta::new("../etc", 0, "main", "trace"),
            SegmentData::Columns(&[&col]),
        )
        .unwrap_err();
    assert!(matches!(err, SpillError::BadName(_)), "{err}");
}

#[test]
fn default_dir_is_on_disk_and_removed() {
    let spill = SpillDir::create(&SpillOptions::default()).unwrap();
    let path = spill.path().to_path_buf();
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("stark-pipe-")
    );
    if filesystem_kind(std::path::Path::new("/tmp")).unwrap() == FsKind::Disk {
        assert_eq!(spill.filesystem(), Some(FsKind::Disk));
    }
    println!(
        "default spill dir: {} ({:?}), warnings {:?}",
        path.display(),
        spill.filesystem(),
        spill.warnings()
    );
    write_chunk(&spill, 0, 8);
    spill.finish().unwrap();
    assert!(!path.exists());
}

#[test]
fn corrupt_segment_is_caught_with_verify_segments() {
    let dir = fresh_path("verify");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    let d = write_chunk(&spill, 0, 1000);
    let seg = d.segment("trace").unwrap();
    let mut bytes = fs::read(&seg.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&seg.path, &bytes).unwrap();
    let err = spill.open_segment(seg).unwrap_err();
    assert!(
        err.to_string().contains("checksum mismatch")
            && err.to_string().contains("cpu-000000.trace.arrow"),
        "{err}"
    );
    let err = d.open("lde", false).unwrap_err();
    assert_eq!(err.to_string(), "chunk cpu#0 has no `lde` segment");
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tmpfs_is_warned_about_and_a_full_disk_is_a_clear_error() {
    let mnt = fresh_path("tmpfs");
    fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=80m", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED tmpfs/ENOSPC spill test: cannot mount a tmpfs (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    assert_eq!(filesystem_kind(&mnt).unwrap(), FsKind::Memory("tmpfs"));
    let dir = mnt.join("spill");
    let spill = SpillDir::create(&options(&dir, Keep::Always)).unwrap();
    assert!(
        spill.warnings().iter().any(|w| w.contains("tmpfs")),
        "{:?}",
        spill.warnings()
    );
    // Filled up to its last MiB once the run is under way.
    fs::write(mnt.join("filler"), vec![0u8; 79 << 20]).unwrap();
    spill.begin_pass("main").unwrap();
    write_chunk(&spill, 0, 1000);
    let big: Vec<u64> = vec![7; 1 << 17]; // 1 MiB: cannot fit
    let err = spill
        .write_segment(
            &SegmentMeta::new("cpu", 1, "main", "trace"),
            SegmentData::Columns(&[&big]),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SpillError::Format(FormatError::NoSpace { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("not enough disk space") && msg.contains("main/cpu-000001.trace.arrow"),
        "{msg}"
    );
    spill.fail(&msg).unwrap();
    // The spill dir stays consistent: the manifest lists only the complete segment.
    let report = inspect_spill_dir(&dir, true).unwrap();
    assert_eq!(report.segments.len(), 1);
    assert!(report.all_segments_ok() && report.partial_files.is_empty());
    assert!(!dir.join("main/cpu-000001.trace.arrow").exists());
    // A new run on the now nearly full filesystem is refused before it starts, and leaves no dir.
    let second = mnt.join("second");
    match SpillDir::create(&options(&second, Keep::Never)) {
        Err(SpillError::Full { free, needed, .. }) => assert!(free < needed),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a full filesystem was accepted"),
    }
    assert!(!second.exists());
}

#[test]
fn stages_pass_descriptors_of_spilled_segments() {
    let dir = fresh_path("graph");
    let spill = Arc::new(SpillDir::create(&options(&dir, Keep::Never)).unwrap());
    spill.begin_pass("main").unwrap();
    let mut g = Graph::new(2);
    let chunks = g.source_iter(
        "execute",
        (0..8u64).map(|c| ChunkDescriptor::new("cpu", 0, c, 4096, "main")),
    );
    let sp = spill.clone();
    let traced = g.map("tracegen", chunks, move |d: ChunkDescriptor| {
        let col: Vec<u64> = (0..d.rows).map(|r| r + d.chunk).collect();
        let meta = SegmentMeta::new(&*d.table, d.chunk, "main", "trace");
        let seg = sp.write_segment(&meta, SegmentData::Columns(&[&col]))?;
        Ok::<_, BoxError>(d.with_segment(seg))
    });
    let sums = g.map("sum", traced, |d: ChunkDescriptor| {
        use rayon::prelude::*;
        let seg = d.open("trace", true)?;
        let s: u64 = seg.column(0)?.par_iter().sum();
        Ok::<_, BoxError>((d, s))
    });
    let out = g.collect("commit", sums).unwrap();
    for (c, (d, s)) in out.iter().enumerate() {
        assert_eq!(d.chunk, c as u64);
        assert_eq!(*s, 4095 * 4096 / 2 + 4096 * c as u64);
    }
    spill.end_pass("main").unwrap();
    assert_eq!(spill.manifest().segments.len(), 8);
    spill.finish().unwrap();
    assert!(!dir.exists());
}

#[test]
fn stale_default_dirs_are_found_and_removed() {
    let parent = fresh_path("stale-parent");
    fs::create_dir_all(&parent).unwrap();
    let make = |name: &str, keep: Keep| {
        let spill = SpillDir::create(&options(&parent.join(name), keep)).unwrap();
        write_chunk(&spill, 0, 10);
        spill
    };
    // Interrupted: in progress, owner dead.
    let crashed = make("stark-pipe-crashed", Keep::Never);
    std::mem::forget(crashed);
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut m = Manifest::load(parent.join("stark-pipe-crashed")).unwrap();
    m.owner.pid = dead;
    m.store(parent.join("stark-pipe-crashed"), true).unwrap();
    // Failed and kept.
    make("stark-pipe-failed", Keep::OnError)
        .fail(&"boom")
        .unwrap();
    // Finished and kept on purpose; running (this process); and unrelated directories.
    make("stark-pipe-kept", Keep::Always).finish().unwrap();
    let running = make("stark-pipe-running", Keep::Never);
    fs::create_dir_all(parent.join("stark-pipe-no-manifest")).unwrap();
    fs::create_dir_all(parent.join("other")).unwrap();

    let stale: Vec<String> = find_stale_spill_dirs(&parent)
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stale, ["stark-pipe-crashed", "stark-pipe-failed"]);
    let removed = remove_stale_spill_dirs(&parent).unwrap();
    assert_eq!(removed.len(), 2);
    for kept in [
        "stark-pipe-kept",
        "stark-pipe-running",
        "stark-pipe-no-manifest",
        "other",
    ] {
        assert!(parent.join(kept).exists(), "{kept} removed");
    }
    running.finish().unwrap();
    fs::remove_dir_all(&parent).unwrap();
}

/// Runs in a child process (see below): spills segments until it is killed.
#[test]
fn spill_forever_child() {
    let Some(dir) = std::env::var_os("PIPELINE_SPILL_CHILD_DIR") else {
        return;
    };
    let spill = SpillDir::create(&options(Path::new(&dir), Keep::Never)).unwrap();
    spill.begin_pass("main").unwrap();
    for chunk in 0.. {
        write_chunk(&spill, chunk, 50_000);
    }
}

#[test]
fn a_killed_run_is_reported_as_interrupted_and_cleaned_by_the_next_run() {
    let dir = fresh_path("killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "spill_forever_child", "--test-threads=1"])
        .env("PIPELINE_SPILL_CHILD_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while Manifest::load(&dir).map_or(true, |m| m.segments.len() < 3) {
        assert!(started.elapsed().as_secs() < 30, "child wrote nothing");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
    child.wait().unwrap();

    let report = inspect_spill_dir(&dir, true).unwrap();
    println!("{report}");
    assert!(
        matches!(report.state, RunState::Interrupted { .. }),
        "{report}"
    );
    assert!(report.segments.len() >= 3);
    assert!(
        report.all_segments_ok(),
        "a recorded segment is damaged:\n{report}"
    );

    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    assert!(
        spill.warnings()[0].contains("earlier interrupted run"),
        "{:?}",
        spill.warnings()
    );
    spill.finish().unwrap();
    // Everything the dead run wrote is gone, partial temp files included.
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_spill_limit_refuses_segments_past_it_and_removed_ones_free_room() {
    let dir = fresh_path("limit");
    let spill = SpillDir::create(&SpillOptions {
        limit: Some(8 * 1024),
        ..options(&dir, Keep::Never)
    })
    .unwrap();
    spill.begin_pass("main").unwrap();
    // 2 columns x 256 rows x 8 bytes = 4 KiB of values (plus framing) fit once, not twice.
    let d = write_chunk(&spill, 0, 256);
    let held = spill.bytes_held();
    assert!(held > 4096 && spill.available_bytes().unwrap() == 8 * 1024 - held);
    let col = vec![0u64; 256];
    let meta = SegmentMeta::new("cpu", 1, "main", "trace");
    let err = spill
        .write_segment(&meta, SegmentData::Columns(&[&col, &col]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cpu-000001.trace.arrow") && msg.contains("spill limit of 8192 bytes"),
        "{msg}"
    );
    assert!(!dir.join("main/cpu-000001.trace.arrow").exists());

    // Removing the first segment frees its room and its manifest record.
    spill.remove_segment(d.segment("trace").unwrap()).unwrap();
    assert_eq!(spill.bytes_held(), 0);
    assert!(!dir.join("main/cpu-000000.trace.arrow").exists());
    assert!(spill.manifest().segments.is_empty());
    write_chunk(&spill, 1, 256);
    spill.finish().unwrap();
}

#[test]
fn many_segments_go_to_the_journal_and_pass_barriers_fold_it() {
    let dir = fresh_path("journal");
    let spill = SpillDir::create(&options(&dir, Keep::Never)).unwrap();
    spill.begin_pass("main").unwrap();
    let segs: Vec<_> = (0..3000).map(|c| write_chunk(&spill, c, 4)).collect();
    for d in &segs[..1000] {
        spill.remove_segment(d.segment("trace").unwrap()).unwrap();
    }
    // Everything recorded so far is what a reader loads, folded or not.
    let loaded = Manifest::load(&dir).unwrap();
    assert_eq!(loaded.segments.len(), 2000);
    assert_eq!(loaded.segments, spill.manifest().segments);
    let journal = dir.join(formats::JOURNAL_FILE);
    assert!(fs::metadata(&journal).unwrap().len() > 0);
    spill.end_pass("main").unwrap();
    assert_eq!(fs::metadata(&journal).unwrap().len(), 0);
    assert_eq!(Manifest::load(&dir).unwrap(), spill.manifest());
    assert_eq!(spill.bytes_held(), spill.manifest().total_bytes());
    assert_eq!(spill.finish().unwrap(), None);
    assert!(!dir.exists());
}
