//! End-to-end tests of the out-of-core provers through the binary: proofs verify and are
//! byte-identical to the in-memory prover for any chunk rows (and, chunked, any store policy,
//! channel capacity and thread count); `inspect` explains proofs and kept, corrupted, failed and
//! interrupted spill dirs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_stark-pipe");

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
        .join(format!("pipeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `stark-pipe run fib_iterative --input-u32 N --chunk-rows R` with fast parameters.
fn run_fib(n: &str, chunk_rows: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &elf("fib_iterative"), "--input-u32", n])
        .args([
            "--chunk-rows",
            chunk_rows,
            "--queries",
            "24",
            "--pow-bits",
            "4",
        ]);
    cmd
}

/// [`run_fib`] without progress output, to `proof`, with `extra` flags.
fn prove(n: &str, chunk_rows: &str, proof: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = run_fib(n, chunk_rows);
    cmd.args(["--progress", "never", "-o", p(proof)])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn verify(proof: &Path) -> Output {
    Command::new(BIN)
        .args([
            "verify",
            p(proof),
            &elf("fib_iterative"),
            "--min-security",
            "0",
        ])
        .output()
        .unwrap()
}

fn inspect(path: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["inspect", p(path)])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn chunked_proofs_verify_and_match_the_in_memory_prover_byte_for_byte() {
    let dir = scratch("identical");
    let reference = dir.join("in-memory.proof");
    ok(
        &prove("200", "2^6", &reference, &["--chunked", "--in-memory"], &[]),
        "in-memory run",
    );
    let expected = std::fs::read(&reference).unwrap();
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        ("default-store", &["--widths"], &[]),
        (
            "trace-lde-1thread",
            &["--store", "trace,lde", "--stage-stats"],
            &[("RAYON_NUM_THREADS", "1")],
        ),
        (
            "trace-cap1",
            &["--store", "trace", "--channel-capacity", "1"],
            &[],
        ),
        (
            "trace-cap8",
            &["--store", "trace", "--channel-capacity", "8"],
            &[],
        ),
        (
            "recompute-1thread",
            &["--store", "recompute"],
            &[("RAYON_NUM_THREADS", "1")],
        ),
        (
            "recompute-2threads",
            &["--store", "recompute"],
            &[("RAYON_NUM_THREADS", "2")],
        ),
    ];
    for (name, flags, env) in cases {
        let proof = dir.join(format!("{name}.proof"));
        let flags = [&["--chunked"], *flags].concat();
        let out = prove("200", "2^6", &proof, &flags, env);
        ok(&out, name);
        let stdout = text(&out.stdout);
        for row in [
            "main",
            "quotient",
            "open",
            "total",
            "proof size",
            "security",
        ] {
            assert!(
                stdout.contains(row),
                "{name}: summary lacks `{row}`:\n{stdout}"
            );
        }
        if flags.contains(&"--widths") {
            for row in ["table      instances", "cpu ", "committed witness cells"] {
                assert!(
                    stdout.contains(row),
                    "{name}: widths lack `{row}`:\n{stdout}"
                );
            }
        }
        if flags.contains(&"--stage-stats") {
            for row in ["busy s", "quotient  quotient", "open      open"] {
                assert!(
                    stdout.contains(row),
                    "{name}: stage table lacks `{row}`:\n{stdout}"
                );
            }
        }
        assert!(
            std::fs::read(&proof).unwrap() == expected,
            "{name}: the proof differs from the in-memory prover's"
        );
        let v = verify(&proof);
        ok(&v, &format!("verify {name}"));
        assert!(text(&v.stdout).contains("exits with 0"));
    }
}

/// By default every table is one instance (or a few, when taller than `--instance-rows`) built
/// in blocks of `--chunk-rows`: the proof is the in-memory prover's of the same instances,
/// whatever the chunk rows and threads, and it verifies.
#[test]
fn single_instance_proofs_do_not_depend_on_chunk_rows() {
    let dir = scratch("one-instance");
    // fib(2000)'s tables fit 2^16 rows, so they are one instance each, as with the default
    // instance rows (2^26, whose blocks are at least 2^13 rows); 2^11 splits the taller ones.
    for (instance_rows, chunks) in [
        (None, &["2^13"][..]),
        (Some("2^16"), &["2^8", "2^12", "2^16"]),
        (Some("2^11"), &["2^6"]),
    ] {
        let flags: Vec<&str> = instance_rows
            .map(|rows| vec!["--instance-rows", rows])
            .unwrap_or_default();
        let rows = instance_rows.unwrap_or("default");
        let reference = dir.join(format!("in-memory-{rows}.proof"));
        let r = prove(
            "2000",
            "2^10",
            &reference,
            &[&["--in-memory"], &flags[..]].concat(),
            &[],
        );
        ok(&r, "in-memory run");
        let expected = std::fs::read(&reference).unwrap();
        for (i, chunk_rows) in chunks.iter().enumerate() {
            let proof = dir.join(format!("one-{rows}-{chunk_rows}.proof"));
            let threads = if i == 0 { "1" } else { "2" };
            let out = prove(
                "2000",
                chunk_rows,
                &proof,
                &flags,
                &[("RAYON_NUM_THREADS", threads)],
            );
            let what = format!("instance rows {rows}, --chunk-rows {chunk_rows}");
            ok(&out, &what);
            let stdout = text(&out.stdout);
            for row in [
                "instances:",
                "main",
                "aux",
                "quotient",
                "deep",
                "fri",
                "open",
                "check",
            ] {
                assert!(
                    stdout.contains(row),
                    "{what}: output lacks `{row}`:\n{stdout}"
                );
            }
            assert!(
                std::fs::read(&proof).unwrap() == expected,
                "{what}: the proof differs from the in-memory prover's"
            );
            ok(&verify(&proof), &format!("verify {what}"));
        }
    }
}

/// fib(150000)'s 600,354 CPU rows fill at most 3/4 of 2^20, so the CPU table is cut into
/// instances of 2^19 and 2^17 rows (`vm::air::cut_rows`). Built in 2^14-row blocks, the cut
/// comes after the first blocks went out, and pass 1 regroups them and pass 2 places them by
/// pass 1's instances: the proof is still the in-memory prover's, and it verifies.
#[test]
fn a_mostly_padded_table_is_cut_in_two_with_the_in_memory_bytes() {
    let dir = scratch("cut");
    let reference = dir.join("in-memory.proof");
    let r = prove("150000", "2^20", &reference, &["--in-memory"], &[]);
    ok(&r, "in-memory run");
    let proof = dir.join("blocks.proof");
    let out = prove("150000", "2^14", &proof, &[], &[]);
    ok(&out, "--chunk-rows 2^14");
    assert!(
        std::fs::read(&proof).unwrap() == std::fs::read(&reference).unwrap(),
        "the proof differs from the in-memory prover's"
    );
    ok(&verify(&proof), "verify");
    let shown = text(&inspect(&proof, &[]).stdout);
    let cpu = shown
        .lines()
        .find(|l| l.trim_start().starts_with("cpu ") && l.contains("rows:"))
        .unwrap_or_else(|| panic!("no cpu line in:\n{shown}"));
    assert!(cpu.ends_with("2^19 2^17"), "{cpu}");
}

#[test]
fn inspect_explains_a_proof_and_a_kept_spill_dir_and_names_a_corrupt_segment() {
    let dir = scratch("inspect");
    let proof = dir.join("fib.proof");
    let spill = dir.join("spill");
    let out = prove(
        "100",
        "2^5",
        &proof,
        &[
            "--chunked",
            "--store",
            "trace",
            "--keep-spill",
            "--spill-dir",
            p(&spill),
        ],
        &[],
    );
    ok(&out, "run");
    assert!(text(&out.stdout).contains("(kept)"));

    let out = inspect(&proof, &[]);
    ok(&out, "inspect proof");
    let s = text(&out.stdout);
    for needle in [
        "blowup 2, 24 queries, 4 grinding bits",
        "security",
        "cpu",
        "instances",
        "openings",
        "fri",
    ] {
        assert!(s.contains(needle), "inspect proof lacks `{needle}`:\n{s}");
    }

    let out = inspect(&spill, &["--verify"]);
    ok(&out, "inspect spill dir");
    let s = text(&out.stdout);
    for needle in [
        "finished",
        "main",
        "quotient",
        "checksums verified",
        "trace",
        "aux-trace",
        "quotient-coeffs",
    ] {
        assert!(
            s.contains(needle),
            "inspect spill dir lacks `{needle}`:\n{s}"
        );
    }

    // Flip one byte in the middle of a kept trace segment.
    let segment = std::fs::read_dir(spill.join("main"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".trace.arrow"))
        .expect("a trace segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let out = inspect(&spill, &["--verify"]);
    assert!(!out.status.success(), "a corrupt segment must fail inspect");
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        text(&out.stderr).contains(name),
        "the error names the file {name}:\n{}",
        text(&out.stderr)
    );

    // Neither a proof nor a spill dir.
    let out = inspect(Path::new(&elf("fib_iterative")), &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("neither a stark-pipe proof file nor a spill dir"));
}

#[test]
fn a_segment_changed_on_disk_during_the_run_gives_an_error_and_no_proof() {
    let dir = scratch("changed");
    let spill = dir.join("spill");
    let proof = dir.join("fib.proof");
    let mut child = run_fib("100000", "2^10")
        .args([
            "--chunked",
            "--progress",
            "never",
            "--spill-dir",
            p(&spill),
            "-o",
            p(&proof),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As soon as pass 2 starts, freeze the run, flip a byte in every main LDE segment pass 1
    // wrote (pass 3 reads them), and let it go on.
    let start = Instant::now();
    while !spill.join("aux").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pass 2 never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended too early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    let mut flipped = 0;
    for entry in std::fs::read_dir(spill.join("main")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".main-lde.arrow") {
            let mut bytes = std::fs::read(&path).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            flipped += 1;
        }
    }
    signal("-CONT");
    assert!(flipped > 0, "pass 1 wrote main LDE segments");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the run must fail");
    let err = text(&out.stderr);
    assert!(
        err.contains("changed on disk") || err.contains(".main-lde.arrow"),
        "the error says a segment changed:\n{err}"
    );
    assert!(!proof.exists(), "no proof file from a corrupted run");
}

#[test]
fn progress_always_draws_a_bar_per_stage_even_without_a_terminal() {
    let dir = scratch("bars");
    let out = run_fib("3000", "2^8")
        .args(["--chunked", "--progress", "always"])
        .args(["-o", p(&dir.join("fib.proof"))])
        .output()
        .unwrap();
    ok(&out, "run with bars");
    let err = text(&out.stderr);
    assert!(
        err.contains('\x1b'),
        "bars are drawn with terminal escapes:\n{err}"
    );
    for stage in ["execute", "commit", "spill", "quotient", "open"] {
        assert!(err.contains(stage), "no bar for `{stage}`:\n{err}");
    }
    assert!(!err.contains("[progress]"), "bars, not log lines:\n{err}");
}

#[test]
fn a_full_spill_filesystem_fails_cleanly_without_a_proof() {
    // The chunked pipeline, and the single-instance prover.
    for (name, flags) in [
        ("full", "--chunked --store trace"),
        ("full-one", "--instance-rows 2^16"),
    ] {
        a_full_spill_filesystem_fails_cleanly(name, flags);
    }
}

fn a_full_spill_filesystem_fails_cleanly(name: &str, flags: &str) {
    let dir = scratch(name);
    let proof = dir.join("fib.proof");
    let spill = dir.join("spill");
    // RLIMIT_FSIZE stands in for a full disk (no root needed); SIGXFSZ ignored so that the
    // write fails with EFBIG instead of killing the process.
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec {BIN} run {} --input-u32 2000 --chunk-rows 2^8 \
         --queries 24 --pow-bits 4 --progress never {flags} --spill-dir {} -o {}",
        elf("fib_iterative"),
        p(&spill),
        p(&proof)
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        !out.status.success(),
        "the run must fail:\n{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(".arrow"),
        "the error names the segment file:\n{err}"
    );
    assert!(!proof.exists(), "no proof file after a failed run");
    let leftovers: Vec<_> = std::fs::read_dir(&spill)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "the spill dir is emptied after a failed run: {leftovers:?}"
    );
}

#[test]
fn inspect_explains_an_interrupted_run() {
    let dir = scratch("interrupted");
    let spill = dir.join("spill");
    let proof = dir.join("fib.proof");
    let mut child = run_fib("200000", "2^8")
        .args([
            "--chunked",
            "--progress",
            "never",
            "--store",
            "trace",
            "--spill-dir",
            p(&spill),
        ])
        .args(["-o", p(&proof)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until pass 1 has written a few segments, then kill the run (SIGKILL, no cleanup).
    let start = Instant::now();
    loop {
        let n = std::fs::read_dir(spill.join("main")).map_or(0, |d| d.count());
        if n >= 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no segments appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended too early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!proof.exists());
    let out = inspect(&spill, &[]);
    let s = text(&out.stdout);
    assert!(
        s.contains("INTERRUPTED"),
        "inspect names the interrupted run:\n{s}"
    );
    assert!(s.contains("main (running)"), "and the pass it was in:\n{s}");
}

#[test]
fn the_next_run_removes_the_default_spill_dir_of_a_killed_run() {
    let dir = scratch("stale");
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let mut child = run_fib("200000", "2^8")
        .args(["--chunked", "--progress", "never", "--store", "trace"])
        .args(["-o", p(&dir.join("killed.proof"))])
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let spill = loop {
        let found = std::fs::read_dir(&tmpdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.join("main")
                    .read_dir()
                    .is_ok_and(|mut d| d.next().is_some())
            });
        if let Some(found) = found {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no segments appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(spill.exists());

    let out = prove(
        "20",
        "2^5",
        &dir.join("next.proof"),
        &[],
        &[("TMPDIR", p(&tmpdir))],
    );
    ok(&out, "next run");
    assert!(
        text(&out.stderr).contains("left by interrupted run"),
        "the next run says what it removed:\n{}",
        text(&out.stderr)
    );
    assert!(!spill.exists(), "the killed run's spill dir is gone");
    let left: Vec<_> = std::fs::read_dir(&tmpdir).unwrap().collect();
    assert!(left.is_empty(), "nothing else is left in TMPDIR: {left:?}");
}
