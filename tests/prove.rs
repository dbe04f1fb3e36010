//! End-to-end tests of `stark-pipe run` and `stark-pipe verify` through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_stark-pipe");

fn elf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prove-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stark_pipe(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fast parameters: 24 queries and 4 grinding bits (about 28 bits, so verify lowers its minimum).
const FAST: [&str; 4] = ["--queries", "24", "--pow-bits", "4"];

fn run(name: &str, input: &[&str], chunk_rows: &str, proof: &Path) -> Output {
    let mut args: Vec<String> = vec![
        "run".into(),
        elf(name).to_str().unwrap().to_owned(),
        "--chunk-rows".into(),
        chunk_rows.into(),
    ];
    args.extend(input.iter().map(|s| s.to_string()));
    args.extend(FAST.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), proof.to_str().unwrap().into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stark_pipe(&args)
}

/// `run` of fib_iterative for 40M instructions (minutes of proving) with `extra` arguments: for
/// refusals that must come before any work.
fn long_run(extra: &[&str]) -> Output {
    let fib = elf("fib_iterative");
    let mut args = vec!["run", fib.to_str().unwrap(), "--input-u32", "10000000"];
    args.extend_from_slice(extra);
    stark_pipe(&args)
}

fn verify(proof: &Path, name: &str) -> Output {
    stark_pipe(&[
        "verify",
        proof.to_str().unwrap(),
        elf(name).to_str().unwrap(),
        "--min-security",
        "0",
    ])
}

#[test]
fn rv32i_fixtures_prove_and_verify_through_the_binary() {
    let dir = scratch("fixtures");
    let cases: &[(&str, &[&str], &str, &str)] = &[
        ("sub", &[], "2^5", "exit code:   2"),
        (
            "fib_iterative",
            &["--input-u32", "100"],
            "2^5",
            "\"3314859971\\n\"",
        ),
        ("rv32i_selftest", &[], "2^10", "\"rv32i ok\\n\""),
    ];
    for (name, input, rows, expect) in cases {
        let proof = dir.join(format!("{name}.proof"));
        let out = run(name, input, rows, &proof);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(expect),
            "{name}: {}",
            text(&out.stdout)
        );
        let out = verify(&proof, name);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("verified"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn verify_refuses_wrong_program_tampering_and_weak_proofs() {
    let dir = scratch("refuse");
    let proof = dir.join("fib.proof");
    assert!(
        run("fib_iterative", &["--input-u32", "20"], "2^6", &proof)
            .status
            .success()
    );

    let out = verify(&proof, "sub");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another program"),
        "{}",
        text(&out.stderr)
    );

    // The default minimum security refuses the fast test parameters.
    let out = stark_pipe(&[
        "verify",
        proof.to_str().unwrap(),
        elf("fib_iterative").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    let bytes = std::fs::read(&proof).unwrap();
    let tampered = dir.join("tampered.proof");
    // A flipped byte in the statement (the output), in the STARK proof, and a truncation.
    // The statement section starts at byte 26: 32 bytes of program digest, then entry, exit code.
    let exit_code_at = 26 + 32 + 4;
    for (what, mutated) in [
        ("statement byte", {
            let mut b = bytes.clone();
            b[exit_code_at] ^= 1;
            b
        }),
        ("proof byte", {
            let mut b = bytes.clone();
            let k = b.len() / 2;
            b[k] ^= 0x10;
            b
        }),
        ("truncated", bytes[..bytes.len() - 7].to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&tampered, &mutated).unwrap();
        let out = verify(&tampered, "fib_iterative");
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stdout));
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{what}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("tampered.proof"),
            "{what} names the file: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn run_refuses_bad_arguments_without_writing_a_proof() {
    let dir = scratch("bad");
    let proof = dir.join("x.proof");
    let out = run("sub", &[], "1000", &proof);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("power of two"),
        "{}",
        text(&out.stderr)
    );
    let csr = elf("sub").with_file_name("../bad/csr.elf");
    let out = stark_pipe(&["run", csr.to_str().unwrap(), "-o", proof.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("illegal instruction"),
        "{}",
        text(&out.stderr)
    );
    for (rows, says) in [
        ("3000", "power of two"),
        ("2^27", "2^26"),
        ("2^4", "above the instance rows"),
    ] {
        let sub = elf("sub");
        let args = [
            "run",
            sub.to_str().unwrap(),
            "--chunk-rows",
            "2^8",
            "--instance-rows",
            rows,
        ];
        let out = stark_pipe(&[&args[..], &["-o", proof.to_str().unwrap()]].concat());
        assert!(!out.status.success(), "--instance-rows {rows}");
        assert!(
            text(&out.stderr).contains(says),
            "{rows}: {}",
            text(&out.stderr)
        );
    }
    let out = stark_pipe(&["run", "/nonexistent.elf", "-o", proof.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("/nonexistent.elf"),
        "{}",
        text(&out.stderr)
    );
    assert!(!proof.exists(), "no proof file after a failure");
}

#[test]
fn m_extension_programs_prove_and_verify_through_the_binary() {
    let dir = scratch("m");
    let input = dir.join("input.txt");
    std::fs::write(&input, b"The quick brown fox").unwrap();
    let cases: &[(&str, Vec<String>, &str)] = &[
        ("rv32m_selftest", vec![], "\"rv32m ok\\n\""),
        ("sort", vec!["--input-u32".into(), "64".into()], "\"64 "),
        (
            "sha256",
            vec!["--input".into(), input.to_str().unwrap().into()],
            "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9",
        ),
    ];
    for (name, input, expect) in cases {
        let proof = dir.join(format!("{name}.proof"));
        let input: Vec<&str> = input.iter().map(String::as_str).collect();
        let out = run(name, &input, "2^8", &proof);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(expect),
            "{name}: {}",
            text(&out.stdout)
        );
        let out = verify(&proof, name);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    }
}

/// An output path that cannot be written is refused before any execution or proving (a run of
/// 40M instructions would take minutes), with one message naming the path; nothing is left.
#[test]
fn an_unwritable_output_is_refused_before_proving() {
    for (out, why) in [
        ("/nonexistent-dir/x.proof", "No such file or directory"),
        ("/proc/x.proof", ""),
    ] {
        let result = long_run(&["-o", out]);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot write the proof to {out}")) && stderr.contains(why),
            "{stderr}"
        );
        assert_eq!(stderr.matches("os error").count(), 1, "said once: {stderr}");
        assert!(!text(&result.stdout).contains("cycles:"), "nothing ran");
    }
}

#[test]
fn version_names_the_proof_formats() {
    let out = stark_pipe(&["--version"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.starts_with(&format!("stark-pipe {}", env!("CARGO_PKG_VERSION")))
            && stdout.contains("proof file format 1")
            && stdout.contains("STARK proof format 5"),
        "{stdout}"
    );
}

/// `verify --output-file` writes the proven output exactly (here 1500 binary bytes, past the 512
/// the text report shows), and `run --json` / `verify --json` parse and agree with it.
#[test]
fn verify_writes_the_proven_output_and_json_reports_parse() {
    let dir = scratch("json");
    let input: Vec<u8> = (0..1500u32).map(|i| (i * 7919 % 256) as u8).collect();
    let input_path = dir.join("input.bin");
    std::fs::write(&input_path, &input).unwrap();
    let proof = dir.join("echo.proof");
    let mut args = vec![
        "run",
        elf("echo").to_str().unwrap().to_owned().leak(),
        "--input",
        input_path.to_str().unwrap(),
        "--chunk-rows",
        "2^10",
        "--json",
        "-o",
        proof.to_str().unwrap(),
    ];
    args.extend(FAST);
    let out = stark_pipe(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run --json is JSON");
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(run["statement"]["output_hex"], hex);
    assert_eq!(run["statement"]["output_len"], 1500);
    assert_eq!(run["statement"]["exit_code"], 0);
    assert_eq!(run["proof"]["path"], proof.to_str().unwrap());
    assert_eq!(
        run["proof"]["bytes"],
        std::fs::metadata(&proof).unwrap().len()
    );
    let passes: Vec<&str> = run["passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        passes,
        [
            "main", "aux", "quotient", "ood", "deep", "fri", "open", "check"
        ]
    );
    // --chunk-rows 2^10, raised to the square root of the default instance rows (2^26).
    assert_eq!(run["proof"]["chunk_rows"], 8192);
    assert_eq!(run["proof"]["ldes_kept"], run["proof"]["instances"]);
    let tables = run["tables"].as_array().unwrap();
    let cpu = tables
        .iter()
        .find(|t| t["name"] == "cpu")
        .expect("a cpu table");
    assert!(cpu["rows"].as_u64().unwrap() >= run["statement"]["cycles"].as_u64().unwrap());
    let cells: u64 = tables
        .iter()
        .map(|t| t["committed_cells"].as_u64().unwrap())
        .sum();
    assert!(cells > 0);
    assert_eq!(
        cpu["committed_cells"].as_u64().unwrap(),
        cpu["rows"].as_u64().unwrap()
            * (cpu["main_columns"].as_u64().unwrap() + cpu["aux_columns"].as_u64().unwrap())
    );

    let written = dir.join("out.bin");
    let out = stark_pipe(&[
        "verify",
        proof.to_str().unwrap(),
        elf("echo").to_str().unwrap(),
        "--min-security",
        "0",
        "--json",
        "--output-file",
        written.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&written).unwrap(), input);
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["statement"], run["statement"]);
    assert_eq!(
        verified["statement"]["output_text"],
        serde_json::Value::Null
    );
    assert_eq!(verified["security_bits"], run["proof"]["security_bits"]);

    // inspect --json: the same statement, sections that add up to the file.
    let out = stark_pipe(&["inspect", proof.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["kind"], "proof");
    assert_eq!(inspected["statement"], run["statement"]);
    assert_eq!(inspected["file_bytes"], run["proof"]["bytes"]);
    let sections: u64 = inspected["sizes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(sections < inspected["file_bytes"].as_u64().unwrap());
    assert_eq!(
        inspected["tables"].as_array().unwrap().len(),
        vm::air::table::COUNT
    );

    // Refused: JSON with the reason, exit 1, and no output file.
    let not_written = dir.join("refused.bin");
    let out = stark_pipe(&[
        "verify",
        proof.to_str().unwrap(),
        elf("sub").to_str().unwrap(),
        "--json",
        "--output-file",
        not_written.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(refused["valid"], false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("another program")
    );
    assert!(!not_written.exists());
}

/// A spill dir that cannot be created is refused at once, naming it, the OS error said once.
#[test]
fn an_impossible_spill_dir_is_refused_before_proving() {
    let dir = scratch("bad-spill");
    let out = long_run(&[
        "--spill-dir",
        "/proc/no-such-dir/spill",
        "-o",
        dir.join("x.proof").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spill dir /proc/no-such-dir/spill"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("os error").count(), 1, "said once: {stderr}");
    assert!(!dir.join("x.proof").exists());
}

#[test]
fn inspect_json_describes_a_kept_spill_dir() {
    let dir = scratch("inspect-json");
    let spill = dir.join("spill");
    let proof = dir.join("sub.proof");
    let mut args = vec![
        "run",
        elf("sub").to_str().unwrap().to_owned().leak(),
        "--keep-spill",
        "--spill-dir",
        spill.to_str().unwrap(),
        "--progress",
        "never",
        "-o",
        proof.to_str().unwrap(),
    ];
    args.extend(FAST);
    assert!(stark_pipe(&args).status.success());
    let out = stark_pipe(&["inspect", spill.to_str().unwrap(), "--json", "--verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "spill-dir");
    assert_eq!(v["state"], "finished");
    assert_eq!(v["verified"], true);
    let segments = v["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    assert!(
        segments
            .iter()
            .all(|s| s["ok"] == true && s["status"] == "ok"),
        "{v}"
    );
    let passes: Vec<&str> = v["passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        passes.starts_with(&["main", "aux", "quotient"]),
        "{passes:?}"
    );
}

/// Mounts a tmpfs of `size` at `dir` (read-only when asked); false when this process may not
/// mount (not root, or no CAP_SYS_ADMIN in a container).
fn mount_tmpfs(dir: &Path, size: &str, read_only: bool) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let mut opts = format!("size={size}");
    if read_only {
        opts += ",ro";
    }
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "tmpfs", dir.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A spill dir on a full or a read-only filesystem is refused before anything runs (the input
/// asks for 40M instructions, minutes of proving), with one message naming the dir.
#[test]
fn a_spill_dir_on_a_full_or_read_only_filesystem_is_refused_at_once() {
    let dir = scratch("fs-spill");
    let (full, ro) = (dir.join("full"), dir.join("ro"));
    if !mount_tmpfs(&full, "8m", false) {
        println!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _full = Unmount(full.clone());
    assert!(mount_tmpfs(&ro, "256m", true));
    let _ro = Unmount(ro.clone());
    let proof = dir.join("x.proof");
    for (spill, why) in [
        (
            full.join("spill"),
            "its filesystem has 8.0 MiB free, and a run needs at least 64.0 MiB",
        ),
        (ro.clone(), "Read-only file system"),
        (ro.join("spill"), "Read-only file system"),
    ] {
        let out = long_run(&[
            "--spill-dir",
            spill.to_str().unwrap(),
            "-o",
            proof.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(why), "{}: {stderr}", spill.display());
        assert!(
            stderr.contains(ro.to_str().unwrap()) || stderr.contains(full.to_str().unwrap()),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
        assert!(!text(&out.stdout).contains("cycles:"), "nothing ran");
        assert!(!proof.exists());
    }
    assert!(
        !full.join("spill").exists(),
        "the refused dir is not left behind"
    );
}

/// In a real 100x30 terminal (tmux), a whole `run` shows at most one line per pass and the
/// overall bar (passes + 2 allowed), and never a total of 0.
#[test]
fn a_run_in_a_100x30_terminal_shows_one_line_per_pass() {
    let has_tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tmux {
        assert!(
            std::env::var_os("STARK_PIPE_REQUIRE_TMUX").is_none(),
            "STARK_PIPE_REQUIRE_TMUX is set but tmux is missing"
        );
        println!("skipped: tmux is not installed");
        return;
    }
    const PASSES: usize = 8;
    let dir = scratch("tmux");
    let session = format!("stark-pipe-test-{}", std::process::id());
    let command = format!(
        // Its own TMPDIR: a stopped run another process left in /tmp would add a note line.
        "TMPDIR={} {BIN} run {} --input-u32 200000 --chunk-rows 2^15 --queries 24 --pow-bits 4 -o {}; echo __END__; sleep 120",
        dir.display(),
        elf("fib_iterative").display(),
        dir.join("t.proof").display()
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().unwrap();
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let (mut captures, mut spinner, mut overall) = (0, false, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let screen = text(&tmux(&["capture-pane", "-p", "-t", &session]).stdout);
        if screen.contains("exit code:") || screen.contains("__END__") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not end:\n{screen}"
        );
        let shown: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            shown.len() <= PASSES + 2,
            "{} lines:\n{screen}",
            shown.len()
        );
        assert!(!screen.contains("/0 "), "a total of 0:\n{screen}");
        spinner |= screen.contains(" rows, ");
        overall |= shown
            .last()
            .is_some_and(|l| l.trim_start().starts_with("total"));
        captures += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let screen = text(&tmux(&["capture-pane", "-p", "-t", &session]).stdout);
    tmux(&["kill-session", "-t", &session]);
    assert!(
        captures > 10 && spinner && overall,
        "{captures} captures:\n{screen}"
    );
    assert!(screen.contains("check  done in"), "{screen}");
    assert!(
        screen.contains("total  [") && screen.contains("100%"),
        "{screen}"
    );
    assert!(screen.contains("exit code:   0"), "{screen}");
}

/// `bench pipeline` reads each run's `--json` report: one row per prover; the out-of-core and
/// in-RAM proofs have the same size (they are the same bytes), the chunked one more instances.
#[test]
fn bench_pipeline_prints_a_row_per_prover() {
    let out = stark_pipe(&[
        "bench",
        "pipeline",
        "--instructions",
        "20K",
        "--chunk-rows",
        "2^10",
        "--queries",
        "24",
        "--pow-bits",
        "4",
        "--instance-rows",
        "2^16",
        "--chunked",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("20000 "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let provers = (rows[0][1], rows[1][1], rows[2][1]);
    assert_eq!(provers, ("pipeline", "chunked", "in-RAM"), "{stdout}");
    assert_eq!(
        rows[0].last(),
        rows[2].last(),
        "proof bytes differ:\n{stdout}"
    );
    let (one, chunked): (usize, usize) = (rows[0][2].parse().unwrap(), rows[1][2].parse().unwrap());
    assert!(
        one < chunked,
        "one instance per table, fewer than chunks:\n{stdout}"
    );
    assert_eq!(
        rows[1][2], rows[1][3],
        "every chunk kept its LDEs:\n{stdout}"
    );
    // Spill held per instruction: some for the provers on disk, none in RAM.
    let held = |r: &Vec<&str>| r[r.len() - 2].parse::<u64>().unwrap();
    assert!(held(&rows[0]) > 0 && held(&rows[1]) > 0, "{stdout}");
    assert_eq!(held(&rows[2]), 0, "{stdout}");
}
