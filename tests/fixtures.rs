//! End-to-end tests of `stark-pipe execute` on the committed fixtures: every manifest case gives
//! its expected exit code and output, agrees with `qemu-riscv32` (the independent oracle), and every
//! bad input gives its own clear error, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod manifest;

use manifest::{cases as manifest, fixtures_dir};

const BIN: &str = env!("CARGO_BIN_EXE_stark-pipe");

/// A scratch directory under the target dir, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fixtures-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A program that never reads its input may exit before taking it all: not an error.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn execute(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("execute")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_fixture_matches_its_manifest() {
    let dir = scratch("manifest");
    for case in manifest() {
        let input = dir.join(format!("{}.bin", case.name));
        std::fs::write(&input, case.input()).unwrap();
        let out = execute(&[
            case.elf().to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(case.exit_code),
            "{}: {stderr}",
            case.name
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            case.output,
            "{}",
            case.name
        );
        assert!(
            stderr.contains("instructions"),
            "{}: report on stderr: {stderr}",
            case.name
        );
    }
}

#[test]
fn input_u32_is_a_shortcut_for_a_word_of_input() {
    let fib = fixtures_dir().join("elf/fib_iterative.elf");
    let out = execute(&[fib.to_str().unwrap(), "--input-u32", "2^5", "--quiet"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2178309\n");
    assert!(out.stderr.is_empty(), "--quiet prints no report");
    let out = execute(&[fib.to_str().unwrap(), "--input-u32", "5", "--mix"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("opcode") && stderr.contains("ecall"),
        "{stderr}"
    );
}

/// Runs every manifest case under qemu-riscv32 (same ELF, same bytes on stdin) and under
/// stark-pipe: exit codes and stdout must be identical. Where qemu is missing the test says so
/// loudly; with STARK_PIPE_REQUIRE_QEMU=1 (set by .ci/run) a missing qemu is a failure.
#[test]
fn differential_against_qemu() {
    let qemu = std::env::var("QEMU_RISCV32").unwrap_or_else(|_| "qemu-riscv32".to_string());
    if Command::new(&qemu).arg("--version").output().is_err() {
        let required = std::env::var("STARK_PIPE_REQUIRE_QEMU").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "qemu-riscv32 is required (STARK_PIPE_REQUIRE_QEMU=1) but not found"
        );
        eprintln!(
            "SKIPPED differential_against_qemu: {qemu} not found (apt-get install qemu-user)"
        );
        return;
    }
    let mut compared = 0;
    for case in manifest() {
        let input = case.input();
        let theirs = run_with_stdin(Command::new(&qemu).arg(case.elf()), &input);
        let ours = run_with_stdin(
            Command::new(BIN)
                .arg("execute")
                .arg(case.elf())
                .args(["--input", "-", "--quiet"]),
            &input,
        );
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "{}: exit codes differ",
            case.name
        );
        assert_eq!(ours.stdout, theirs.stdout, "{}: stdout differs", case.name);
        compared += 1;
    }
    // Larger runs than the manifest's, where the two machines have more room to disagree.
    for (program, n) in [
        ("fib_iterative", 3_000_000u32),
        ("sort", 65_536),
        ("sort", 12_345),
    ] {
        let elf = fixtures_dir().join("elf").join(format!("{program}.elf"));
        let input = n.to_le_bytes();
        let theirs = run_with_stdin(Command::new(&qemu).arg(&elf), &input);
        let ours = run_with_stdin(
            Command::new(BIN)
                .arg("execute")
                .arg(&elf)
                .args(["--input", "-", "--quiet"]),
            &input,
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "{program} {n}");
        assert_eq!(ours.stdout, theirs.stdout, "{program} {n}");
        compared += 1;
    }
    eprintln!("differential_against_qemu: {compared} runs identical under {qemu} and stark-pipe");
}

/// Asserts a failed execute: status 125, the message on stderr, no panic.
fn assert_refused(elf: &Path, extra: &[&str], expected: &[&str]) {
    let mut args = vec![elf.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = execute(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{}: {stderr}", elf.display());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(elf.to_str().unwrap()),
        "names the file: {stderr}"
    );
    for e in expected {
        assert!(
            stderr.contains(e),
            "{}: expected {e:?} in: {stderr}",
            elf.display()
        );
    }
}

#[test]
fn bad_programs_are_refused_with_specific_errors() {
    let bad = fixtures_dir().join("bad");
    assert_refused(&bad.join("rv64.elf"), &[], &["64-bit ELF"]);
    assert_refused(&bad.join("x86_64.elf"), &[], &["not RISC-V", "x86-64"]);
    assert_refused(&bad.join("compressed.elf"), &[], &["EF_RISCV_RVC"]);
    assert_refused(
        &bad.join("csr.elf"),
        &[],
        &["illegal instruction 0xc0002573", "pc 0x", "CSR"],
    );
    assert_refused(
        &bad.join("misaligned.elf"),
        &[],
        &["misaligned load", "address 0x00011002"],
    );
    assert_refused(
        &bad.join("store_rodata.elf"),
        &[],
        &[
            "store to address 0x0001003c",
            "pc 0x0001002c",
            "read-only segment",
        ],
    );
    assert_refused(
        &bad.join("store_text.elf"),
        &[],
        &[
            "store to address 0x0001001c",
            "pc 0x00010024",
            "read-only segment",
        ],
    );
    assert_refused(
        &bad.join("unknown_syscall.elf"),
        &[],
        &["unknown system call 222"],
    );
    assert_refused(
        &bad.join("spin.elf"),
        &["--max-cycles", "100000"],
        &["cycle limit of 100000"],
    );

    let dir = scratch("bad");
    let sub = std::fs::read(fixtures_dir().join("elf/sub.elf")).unwrap();
    for len in [0, 10, 40, 100, sub.len() / 2] {
        let path = dir.join(format!("truncated-{len}.elf"));
        std::fs::write(&path, &sub[..len]).unwrap();
        assert_refused(&path, &[], &["not a valid ELF file"]);
    }
    let mut not_exec = sub.clone();
    not_exec[16] = 1; // e_type = ET_REL
    let path = dir.join("relocatable.elf");
    std::fs::write(&path, &not_exec).unwrap();
    assert_refused(&path, &[], &["not an executable"]);
    let path = dir.join("missing.elf");
    assert_refused(&path, &[], &["cannot read", "No such file"]);
}

/// Random corruptions of a real ELF: always a clean refusal or a run, never a crash.
#[test]
fn corrupted_elves_never_crash() {
    let dir = scratch("corrupt");
    let sub = std::fs::read(fixtures_dir().join("elf/sort.elf")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for k in 0..40 {
        let mut bytes = sub.clone();
        for _ in 0..(1 + next() % 4) {
            // Headers and program headers are where parsing can go wrong.
            let pos = (next() % 200) as usize;
            bytes[pos] ^= 1 << (next() % 8);
        }
        let path = dir.join(format!("corrupt-{k}.elf"));
        std::fs::write(&path, &bytes).unwrap();
        let out = execute(&[path.to_str().unwrap(), "--max-cycles", "5M", "--quiet"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "corrupt-{k}: {stderr}");
        assert!(
            out.status.code().is_some(),
            "corrupt-{k}: killed by a signal"
        );
    }
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(BIN)
        .args(["execute", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--input", "--input-u32", "--max-cycles", "--mix", "--quiet"] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

/// The committed ELFs are the ones SHA256SUMS records (rebuild with fixtures/build.sh).
#[test]
fn committed_elves_match_their_checksums() {
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("SHA256SUMS")
        .current_dir(fixtures_dir())
        .output();
    match out {
        Ok(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("SKIPPED committed_elves_match_their_checksums: sha256sum: {e}"),
    }
}
