//! `run --resume DIR`: a single-instance run SIGKILLed at random moments in every pass (or
//! failed on a full spill dir) resumes from its spill dir and makes the proof bytes of an
//! uninterrupted run (killed in the quotient pass, it goes on after the instances its partial
//! checkpoint holds); a resume is refused for another program, input or settings, a changed
//! segment or checkpoint (named), and a dir whose run is still going.
//!
//! `STARK_PIPE_RESUME_KILLS=N` kills N times instead of 20 (the seeds are fixed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_stark-pipe");
const PASSES: [&str; 8] = [
    "main", "aux", "quotient", "ood", "deep", "fri", "open", "check",
];

fn elf(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run every test proves: fib_iterative (12,398 instructions) as single instances built in
/// blocks of 2^12 rows (several blocks per tall table), fast parameters; `extra` appended.
fn fib(proof: &Path, extra: &[&str]) -> Command {
    run(Run::default(), proof, extra)
}

/// What a run may change from [`fib`]'s (for the refusals).
struct Run {
    program: &'static str,
    n: &'static str,
    chunk_rows: &'static str,
    queries: &'static str,
}

impl Default for Run {
    fn default() -> Run {
        Run {
            program: "fib_iterative",
            n: "3000",
            chunk_rows: "2^12",
            queries: "24",
        }
    }
}

fn run(r: Run, proof: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &elf(r.program), "--input-u32", r.n])
        .args(["--instance-rows", "2^20", "--chunk-rows", r.chunk_rows])
        .args([
            "--queries",
            r.queries,
            "--pow-bits",
            "4",
            "--progress",
            "never",
        ])
        .args(["-o", p(proof)])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stark-pipe failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    out
}

fn refused(out: Output, why: &str) -> String {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "accepted; expected a refusal ({why})"
    );
    assert!(err.contains(why), "expected `{why}` in: {err}");
    err
}

/// The proof of an uninterrupted run, and each pass's wall time (ms) from its manifest.
type Reference = (Vec<u8>, Vec<(String, u64)>);

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = scratch("reference");
        let spill = dir.join("spill");
        let proof = dir.join("ref.proof");
        ok(fib(&proof, &["--spill-dir", p(&spill), "--keep-spill"])
            .output()
            .unwrap());
        let manifest = manifest(&spill);
        let times = manifest["passes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let ms = |k: &str| p[k].as_integer().unwrap() as u64;
                (
                    p["name"].as_str().unwrap().to_string(),
                    ms("ended_unix_ms") - ms("started_unix_ms"),
                )
            })
            .collect();
        let bytes = std::fs::read(&proof).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (bytes, times)
    })
}

fn manifest(spill: &Path) -> toml::Value {
    let text = std::fs::read_to_string(spill.join("manifest.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

/// The pass the manifest shows running (a manifest being replaced reads as none).
fn running_pass(spill: &Path) -> Option<String> {
    let text = std::fs::read_to_string(spill.join("manifest.toml")).ok()?;
    let m: toml::Value = toml::from_str(&text).ok()?;
    m.get("passes")?
        .as_array()?
        .iter()
        .rev()
        .find(|p| p["status"].as_str() == Some("running"))
        .map(|p| p["name"].as_str().unwrap().to_string())
}

/// Starts `cmd`, waits until `pass` is running in `spill` (or a later pass is), sleeps `delay`
/// and SIGKILLs it. Returns the pass running at the kill ("between passes" when none was), or
/// `None` if the run ended first.
fn kill_in(mut cmd: Command, spill: &Path, pass: &str, delay: Duration) -> Option<String> {
    let mut child: Child = cmd.spawn().unwrap();
    let at = PASSES.iter().position(|p| *p == pass).unwrap();
    let start = Instant::now();
    loop {
        if let Some(r) = running_pass(spill)
            && PASSES.iter().position(|p| *p == r).unwrap() >= at
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the run failed before its kill");
            return None;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no pass {pass} within 2 min"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        assert!(status.success(), "the run failed before its kill");
        return None;
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    if status.success() {
        return None; // it finished as the signal was sent
    }
    let removed = !spill.join("manifest.toml").exists();
    if removed {
        // The manifest goes last when a finished run removes its dir: only the empty dir
        // may be left.
        assert!(
            std::fs::read_dir(spill).map_or(true, |mut d| d.next().is_none()),
            "a spill dir without its manifest still holds files"
        );
    }
    if removed || inspect(spill).contains("resume     no: the run finished") {
        // The signal came after the proof was written, as the process was removing its spill
        // dir or exiting: there is nothing to resume.
        return Some(FINISHED.into());
    }
    Some(running_pass(spill).unwrap_or_else(|| "between passes".into()))
}

/// What [`kill_in`] says of a run the kill caught after it wrote its proof.
const FINISHED: &str = "after the run finished";

fn resume(spill: &Path, proof: &Path) -> Command {
    fib(proof, &["--resume", p(spill)])
}

fn inspect(spill: &Path) -> String {
    let out = Command::new(BIN)
        .args(["inspect", p(spill)])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn killed_at_random_moments_in_every_pass_resumes_to_the_same_proof() {
    let (want, times) = reference();
    let kills: usize = std::env::var("STARK_PIPE_RESUME_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = scratch("kills");
    let mut rng = StdRng::seed_from_u64(0x5eed_0013);
    let mut hit = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..kills {
        let pass = PASSES[i % PASSES.len()];
        let ms = times
            .iter()
            .find(|(n, _)| n == pass)
            .map_or(1, |t| t.1.max(1));
        let delay = Duration::from_micros(rng.random_range(0..ms * 1000));
        let spill = dir.join(format!("spill-{i}"));
        let proof = dir.join(format!("{i}.proof"));
        let Some(killed) = kill_in(
            fib(&proof, &["--spill-dir", p(&spill)]),
            &spill,
            pass,
            delay,
        ) else {
            // Finished before the kill: nothing to resume, the proof must still be right.
            assert_eq!(&std::fs::read(&proof).unwrap(), want);
            *hit.entry("none (finished first)".into()).or_default() += 1;
            continue;
        };
        *hit.entry(killed.clone()).or_default() += 1;
        if killed == FINISHED {
            // The proof is written before the spill dir is closed.
            assert_eq!(&std::fs::read(&proof).unwrap(), want, "kill {i} {killed}");
            continue;
        }
        assert!(
            inspect(&spill).contains("resume     yes"),
            "kill {i} in {killed}: inspect says\n{}",
            inspect(&spill)
        );
        let out = ok(resume(&spill, &proof).output().unwrap());
        assert_eq!(
            &std::fs::read(&proof).unwrap(),
            want,
            "kill {i} in pass {killed} (after {delay:?}): resumed proof differs\n{}",
            text(&out.stderr)
        );
        assert!(
            !spill.join("manifest.toml").exists(),
            "a finished resumed run leaves its manifest"
        );
    }
    eprintln!("kills by pass: {hit:?}");
    for long in ["main", "aux", "quotient"] {
        assert!(hit.contains_key(long), "no kill landed in {long}: {hit:?}");
    }
    let passes = hit.keys().filter(|k| PASSES.contains(&k.as_str())).count();
    assert!(passes >= 5, "kills landed in only {passes} passes: {hit:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The instances of the quotient pass its partial checkpoint holds (0 while it has none).
fn quotient_part(spill: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(spill.join("manifest.toml")) else {
        return 0;
    };
    let Ok(m) = toml::from_str::<toml::Value>(&text) else {
        return 0;
    };
    m.get("resume")
        .and_then(|r| r.get("partial"))
        .and_then(|p| p["part"].as_integer())
        .map_or(0, |n| n as u64)
}

#[test]
fn killed_in_the_quotient_pass_goes_on_after_its_saved_instances() {
    let (want, _) = reference();
    let dir = scratch("partial");
    let spill = dir.join("spill");
    let proof = dir.join("partial.proof");
    // Killed once the pass has saved its first two instances (program, cpu).
    let mut child = fib(&proof, &["--spill-dir", p(&spill)]).spawn().unwrap();
    let start = Instant::now();
    while quotient_part(&spill) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no partial checkpoint"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    let part = quotient_part(&spill);
    let report = inspect(&spill);
    assert!(
        report.contains(&format!("{part} unit(s) of pass quotient")),
        "{report}"
    );

    // What the partial checkpoint names is verified like the finished passes' segments.
    let segment = std::fs::read_dir(spill.join("quotient"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("cpu-0-000000.quotient-lde."))
        .expect("the cpu instance's quotient LDE");
    let original = std::fs::read(&segment).unwrap();
    let mut bad = original.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    std::fs::write(&segment, &bad).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap().to_string();
    refused(resume(&spill, &proof).output().unwrap(), &name);
    std::fs::write(&segment, &original).unwrap();

    let out = ok(resume(&spill, &proof).output().unwrap());
    let notice = format!("after pass aux and {part} instances of pass quotient");
    assert!(text(&out.stderr).contains(&notice), "{}", text(&out.stderr));
    assert_eq!(&std::fs::read(&proof).unwrap(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_twice_in_a_row_resumes_to_the_same_proof() {
    let (want, times) = reference();
    let dir = scratch("twice");
    let spill = dir.join("spill");
    let proof = dir.join("twice.proof");
    let half =
        |pass: &str| Duration::from_millis(times.iter().find(|(n, _)| n == pass).unwrap().1 / 2);
    let first = kill_in(
        fib(&proof, &["--spill-dir", p(&spill)]),
        &spill,
        "aux",
        half("aux"),
    );
    assert!(first.is_some(), "the first run finished before its kill");
    let second = kill_in(resume(&spill, &proof), &spill, "deep", half("deep"));
    assert!(second.is_some(), "the resumed run finished before its kill");
    ok(resume(&spill, &proof).output().unwrap());
    assert_eq!(&std::fs::read(&proof).unwrap(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_spill_dir_fails_resumably_and_resumes_when_there_is_room() {
    let (want, _) = reference();
    let dir = scratch("full");
    let spill = dir.join("spill");
    let proof = dir.join("full.proof");
    // Pass 1 holds about 23 MiB and the run about 58 MiB: 40 MiB stops it in pass 2 or 3.
    let out = fib(&proof, &["--spill-dir", p(&spill), "--spill-limit", "40Mi"])
        .output()
        .unwrap();
    let err = refused(out, "spill limit");
    assert!(err.contains("--resume"), "no resume hint in: {err}");
    assert!(!proof.exists(), "a failed run wrote a proof");
    let report = inspect(&spill);
    assert!(
        report.contains("resume     yes, after pass main"),
        "{report}"
    );
    ok(resume(&spill, &proof).output().unwrap());
    assert_eq!(&std::fs::read(&proof).unwrap(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Mounts a tmpfs of `size` at `dir`, or remounts it with a new size; false when this process
/// may not (not root, or no CAP_SYS_ADMIN in a container).
fn mount_tmpfs(dir: &Path, size: &str, remount: bool) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let opts = match remount {
        true => format!("remount,size={size}"),
        false => format!("size={size}"),
    };
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "tmpfs", p(dir)])
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A real full filesystem (a 72 MiB tmpfs; this run spills about twice that): the run fails
/// with the OS's error after pass 1, the dir is resumable, and once the filesystem has room the
/// resume makes the proof of an uninterrupted run.
#[test]
fn a_full_filesystem_fails_resumably_and_resumes_once_it_has_room() {
    let dir = scratch("enospc");
    let fs = dir.join("fs");
    if !mount_tmpfs(&fs, "72m", false) {
        println!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _fs = Unmount(fs.clone());
    let big = || Run {
        n: "6000",
        ..Run::default()
    };
    let want_proof = dir.join("want.proof");
    ok(run(big(), &want_proof, &[]).output().unwrap());
    let want = std::fs::read(&want_proof).unwrap();

    let spill = fs.join("spill");
    let proof = dir.join("enospc.proof");
    let err = refused(
        run(big(), &proof, &["--spill-dir", p(&spill)])
            .output()
            .unwrap(),
        "No space left on device",
    );
    assert!(err.contains("--resume"), "no resume hint in: {err}");
    assert!(!proof.exists(), "a failed run wrote a proof");
    let report = inspect(&spill);
    assert!(report.contains("resume     yes, after pass"), "{report}");

    assert!(mount_tmpfs(&fs, "512m", true), "remount with room");
    ok(run(big(), &proof, &["--resume", p(&spill)])
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&proof).unwrap(), want);
    drop(_fs);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_refuses_another_run_a_changed_file_and_a_live_owner() {
    let (want, times) = reference();
    let dir = scratch("refuse");
    let spill = dir.join("spill");
    let proof = dir.join("refuse.proof");
    let half = Duration::from_millis(times[2].1 / 2);
    assert!(
        kill_in(
            fib(&proof, &["--spill-dir", p(&spill)]),
            &spill,
            "quotient",
            half
        )
        .is_some()
    );

    // Another program, input or setting: named, and the dir stays resumable.
    let resume_dir = ["--resume", p(&spill)];
    let cases = [
        (
            Run {
                n: "3001",
                ..Run::default()
            },
            "another input",
        ),
        (
            Run {
                program: "sub",
                ..Run::default()
            },
            "another program",
        ),
        (
            Run {
                queries: "30",
                ..Run::default()
            },
            "queries 24",
        ),
        (
            Run {
                chunk_rows: "2^13",
                ..Run::default()
            },
            "chunk-rows 4096",
        ),
    ];
    for (r, why) in cases {
        refused(run(r, &proof, &resume_dir).output().unwrap(), why);
        assert!(
            inspect(&spill).contains("resume     yes"),
            "{why}: {}",
            inspect(&spill)
        );
    }

    // A chunked run cannot resume.
    let mut chunked = Command::new(BIN);
    chunked
        .args([
            "run",
            &elf("fib_iterative"),
            "--input-u32",
            "3000",
            "--chunked",
        ])
        .args(["--resume", p(&spill)]);
    refused(chunked.output().unwrap(), "--chunked");

    // A live owner: a second process may not take the dir over.
    let live = dir.join("live");
    let mut child = fib(&dir.join("live.proof"), &["--spill-dir", p(&live)])
        .spawn()
        .unwrap();
    while running_pass(&live).is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    refused(
        resume(&live, &dir.join("x.proof")).output().unwrap(),
        "in use by running process",
    );
    let _ = child.kill();
    let _ = child.wait();

    // A changed checkpoint, then a changed segment of a finished pass: named.
    let checkpoint = spill.join("checkpoint-main.bin");
    let original = std::fs::read(&checkpoint).unwrap();
    let mut bad = original.clone();
    bad[original.len() / 2] ^= 1;
    std::fs::write(&checkpoint, &bad).unwrap();
    refused(
        resume(&spill, &proof).output().unwrap(),
        "checkpoint-main.bin",
    );
    std::fs::write(&checkpoint, &original).unwrap();
    let segment = std::fs::read_dir(spill.join("aux"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "arrow"))
        .expect("an aux segment");
    let original = std::fs::read(&segment).unwrap();
    let mut bad = original.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    std::fs::write(&segment, &bad).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap().to_string();
    refused(resume(&spill, &proof).output().unwrap(), &name);

    // Restored, it resumes to the same proof.
    std::fs::write(&segment, &original).unwrap();
    ok(resume(&spill, &proof).output().unwrap());
    assert_eq!(&std::fs::read(&proof).unwrap(), want);

    // A finished run is not resumed (its dir is gone unless kept).
    refused(resume(&spill, &proof).output().unwrap(), "cannot resume");
    std::fs::remove_dir_all(&dir).unwrap();
}
