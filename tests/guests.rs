//! Guest programs built from source with the real toolchains: `stark-pipe new` projects (Rust
//! and C) built with exactly the commands their README gives, then proven and verified; and the
//! real-workload fixtures rebuilt by fixtures/build-guests.sh, compared byte for byte with the
//! committed ELFs (when the toolchain is the recorded one) and run against the manifest.
//!
//! Needs the Debian packages gcc-riscv64-unknown-elf, binutils-riscv64-unknown-elf,
//! picolibc-riscv64-unknown-elf, rustc-web, cargo-web and rust-web-src (and crates.io for the
//! Rust guests' dependencies). Without them each test says SKIPPED; with
//! STARK_PIPE_REQUIRE_GUESTS=1 (set by .ci/run) a missing toolchain is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod manifest;

use manifest::{Case, fixtures_dir};

const BIN: &str = env!("CARGO_BIN_EXE_stark-pipe");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh scratch directory under the target dir, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("guests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What is missing of the guest toolchains (empty: all there).
fn missing_toolchains(lang: &str) -> Vec<String> {
    let runs = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut tools = vec!["riscv64-unknown-elf-ld"];
    let mut paths = Vec::new();
    if lang == "c" || lang == "all" {
        tools.extend(["riscv64-unknown-elf-gcc", "make"]);
        paths.push("/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs");
    }
    if lang == "rust" || lang == "all" {
        tools.extend(["/usr/bin/rustc", "/usr/bin/cargo"]);
        paths.push("/usr/lib/rustlib/src/rust/library/core");
    }
    let mut missing: Vec<String> = tools
        .into_iter()
        .filter(|t| !runs(t))
        .map(str::to_owned)
        .collect();
    missing.extend(
        paths
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .map(str::to_owned),
    );
    missing
}

/// True when the test can go on; false (after saying so) when it must be skipped.
fn toolchains_present(test: &str, lang: &str) -> bool {
    let missing = missing_toolchains(lang);
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("STARK_PIPE_REQUIRE_GUESTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: guest toolchains are required (STARK_PIPE_REQUIRE_GUESTS=1) but missing: {missing:?}"
    );
    eprintln!(
        "SKIPPED {test}: missing {missing:?} (apt-get install gcc-riscv64-unknown-elf \
         binutils-riscv64-unknown-elf picolibc-riscv64-unknown-elf rustc-web cargo-web rust-web-src)"
    );
    false
}

/// A command with the environment that `cargo test` adds removed, so that nested cargo, make
/// and rustc runs behave as in a user's shell; stark-pipe's folder first on PATH, so that the
/// README's `stark-pipe ...` lines run this build of it.
fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let cargo_own = key.starts_with("CARGO_") && key != "CARGO_HOME";
        if cargo_own
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key.contains("RUSTFLAGS")
            || matches!(
                key.as_str(),
                "MAKEFLAGS" | "MFLAGS" | "OUT_DIR" | "TARGET" | "HOST"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    cmd
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines of the first ```sh block of a README.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != "```sh").skip(1);
    let cmds: Vec<String> = lines
        .by_ref()
        .take_while(|l| l.trim() != "```")
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(!cmds.is_empty(), "no ```sh block in:\n{readme}");
    cmds
}

/// `stark-pipe new NAME --lang LANG` into a fresh scratch folder; returns the project folder.
fn stark_pipe_new(scratch_name: &str, name: &str, lang: &str) -> PathBuf {
    let project = scratch(scratch_name).join(name);
    let out = Command::new(BIN)
        .args(["new", name, "--lang", lang, "--path"])
        .arg(&project)
        .output()
        .unwrap();
    check(&out, "stark-pipe new");
    project
}

/// `stark-pipe new NAME` into a scratch folder, then every command of its README, in order, in
/// the project folder; returns the project folder and the ELF the `verify` line names.
fn new_project_through_its_readme(name: &str, lang: &str) -> (PathBuf, PathBuf) {
    let project = stark_pipe_new(&format!("new-{lang}"), name, lang);
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    // The top-level README's "Programs" section gives the same commands after `stark-pipe new`.
    let top = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let programs = top
        .split("\n## ")
        .find(|s| s.starts_with("Programs"))
        .expect("README has a Programs section");
    let new_line = format!("stark-pipe new {name}");
    let after_new: Vec<&str> = programs
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{new_line} ")))
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .collect();
    assert!(
        !after_new.is_empty(),
        "README's Programs section has `{new_line}`"
    );
    for line in after_new {
        assert!(
            commands.iter().any(|c| c == line),
            "README.md's {line:?} is not in the {lang} project's README commands {commands:?}"
        );
    }
    assert!(
        commands.iter().any(|c| c.starts_with("stark-pipe run"))
            && commands.iter().any(|c| c.starts_with("stark-pipe verify")),
        "the README goes to a verified proof: {commands:?}"
    );
    let mut elf = None;
    for command in &commands {
        eprintln!("{lang} project: $ {command}");
        let out = clean_command("sh")
            .arg("-ec")
            .arg(command)
            .current_dir(&project)
            .output()
            .unwrap();
        check(&out, command);
        if let Some(rest) = command.strip_prefix("stark-pipe verify ") {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("verified:"), "{stdout}");
            elf = rest.split_whitespace().nth(1).map(|e| project.join(e));
        }
    }
    (
        project,
        elf.expect("the README's verify line names the ELF"),
    )
}

/// The verified output of `proof`, exactly (`verify --output-file`).
fn verified_output(proof: &Path, elf: &Path) -> Vec<u8> {
    let file = proof.with_extension("out");
    let out = Command::new(BIN)
        .arg("verify")
        .arg(proof)
        .arg(elf)
        .args(["--min-security", "0", "--output-file"])
        .arg(&file)
        .output()
        .unwrap();
    check(&out, "verify --output-file");
    std::fs::read(file).unwrap()
}

fn execute(elf: &Path, input: &Path) -> Output {
    Command::new(BIN)
        .arg("execute")
        .arg(elf)
        .arg("--input")
        .arg(input)
        .arg("--quiet")
        .output()
        .unwrap()
}

/// The SHA-256 of `file` in hex, from the committed hand-written C fixture `sha256` (an
/// implementation independent of the `sha2` crate the Rust template uses).
fn sha256_hex(file: &Path) -> String {
    let out = execute(&fixtures_dir().join("elf/sha256.elf"), file);
    check(&out, "sha256.elf");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn new_rust_project_builds_proves_and_verifies_through_its_readme() {
    if !toolchains_present("new_rust_project", "rust") {
        return;
    }
    let (project, elf) = new_project_through_its_readme("hello", "rust");
    let input = project.join("input.txt");
    let expected = format!(
        "hello, {}!\nsha256 of the input: {}\n",
        std::fs::read_to_string(&input).unwrap().trim(),
        sha256_hex(&input)
    );
    let proven = verified_output(&project.join("hello.proof"), &elf);
    assert_eq!(String::from_utf8_lossy(&proven), expected);
    // Edited programs keep building: a panic is reported with its message and code 101.
    let main = project.join("src/main.rs");
    let src = std::fs::read_to_string(&main).unwrap();
    let src = src.replace(
        "    let digest",
        "    if name == \"boom\" {\n        panic!(\"asked to fail: {}\", input.len());\n    }\n    let digest",
    );
    std::fs::write(&main, src).unwrap();
    let out = clean_command("sh")
        .arg("-ec")
        .arg("RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release")
        .current_dir(&project)
        .output()
        .unwrap();
    check(&out, "rebuild");
    std::fs::write(project.join("boom.txt"), "boom").unwrap();
    let out = execute(&elf, &project.join("boom.txt"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains("panicked at src/main.rs:") && stderr.contains("asked to fail: 4"),
        "{stderr}"
    );
}

/// The rustup route of the Rust template's README: the stock `riscv32im-unknown-none-elf`
/// target and plain stable `cargo build --release` (no build-std), where rustup has that
/// target; skipped elsewhere (CI machines have Debian's Rust, not rustup).
#[test]
fn new_rust_project_builds_with_a_rustup_target() {
    let installed = clean_command("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let has_target = installed.is_ok_and(|o| {
        o.status.success()
            && String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "riscv32im-unknown-none-elf")
    });
    if !has_target || !missing_toolchains("rust").is_empty() {
        eprintln!(
            "SKIPPED new_rust_project_builds_with_a_rustup_target: needs rustup with the \
             riscv32im-unknown-none-elf target and riscv64-unknown-elf-ld"
        );
        return;
    }
    let project = stark_pipe_new("rustup", "hello", "rust");
    // The default toolchain's own cargo (PATH may put Debian's first).
    let which = clean_command("rustup")
        .args(["which", "cargo"])
        .output()
        .unwrap();
    check(&which, "rustup which cargo");
    let cargo = String::from_utf8(which.stdout).unwrap();
    let out = clean_command(cargo.trim())
        .args(["build", "--release"])
        .current_dir(&project)
        .output()
        .unwrap();
    check(&out, "cargo build with the rustup target");
    let elf = project.join("target/riscv32im-unknown-none-elf/release/hello");
    let input = project.join("input.txt");
    let expected = format!(
        "hello, {}!\nsha256 of the input: {}\n",
        std::fs::read_to_string(&input).unwrap().trim(),
        sha256_hex(&input)
    );
    let out = clean_command("stark-pipe")
        .args([
            "run",
            "--progress",
            "never",
            "-o",
            "hello.proof",
            "--input",
            "input.txt",
        ])
        .arg(&elf)
        .current_dir(&project)
        .output()
        .unwrap();
    check(&out, "stark-pipe run");
    let proven = verified_output(&project.join("hello.proof"), &elf);
    assert_eq!(String::from_utf8_lossy(&proven), expected);
}

#[test]
fn new_c_project_builds_proves_and_verifies_through_its_readme() {
    if !toolchains_present("new_c_project", "c") {
        return;
    }
    let (project, elf) = new_project_through_its_readme("hello-c", "c");
    let text = std::fs::read_to_string(project.join("input.txt")).unwrap();
    let trimmed = text.trim_end_matches(['\n', ' ']);
    let hash = trimmed
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let expected = format!(
        "hello, {trimmed}!\n{} bytes, hash {hash:08x}\n",
        trimmed.len()
    );
    let proven = verified_output(&project.join("hello-c.proof"), &elf);
    assert_eq!(String::from_utf8_lossy(&proven), expected);
    // An empty input takes the other branch.
    std::fs::write(project.join("empty.txt"), "").unwrap();
    let out = execute(&elf, &project.join("empty.txt"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello, world!\n0 bytes, hash 00000000\n"
    );
    // Edited to recurse without end on "deep": the run stops, naming a stack overflow.
    let main = project.join("main.c");
    let src = std::fs::read_to_string(&main).unwrap();
    let src = src.replace(
        "int main(void) {",
        "static unsigned deep(unsigned n) {\n    volatile unsigned pad[64];\n    pad[0] = n;\n    \
         unsigned r = n ? deep(n - 1) : 0;\n    pad[1] = r;\n    return pad[0] + pad[1];\n}\n\n\
         int main(void) {",
    );
    let src = src.replace(
        "    buf[len] = '\\0';\n",
        "    buf[len] = '\\0';\n    if (len >= 4 && !memcmp(buf, \"deep\", 4)) return (int)deep(1u << 20);\n",
    );
    assert!(
        src.contains("deep(1u << 20)"),
        "the template changed: {src}"
    );
    std::fs::write(&main, src).unwrap();
    let out = clean_command("make")
        .current_dir(&project)
        .output()
        .unwrap();
    check(&out, "rebuild");
    std::fs::write(project.join("deep.txt"), "deep").unwrap();
    let out = execute(&elf, &project.join("deep.txt"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("stack overflow at pc 0x"), "{stderr}");
}

const GUEST_FIXTURES: [&str; 5] = [
    "rs_sha256",
    "rs_json",
    "rs_bigint",
    "rs_memsort",
    "c_wordfreq",
];

fn guest_cases() -> Vec<Case> {
    let cases: Vec<Case> = manifest::cases()
        .into_iter()
        .filter(|c| GUEST_FIXTURES.contains(&c.program.as_str()))
        .collect();
    for program in GUEST_FIXTURES {
        assert!(
            cases.iter().any(|c| c.program == program),
            "the manifest has a case for {program}"
        );
    }
    cases
}

/// fixtures/build-guests.sh into a scratch folder: every ELF is the committed one byte for
/// byte when the toolchain is the one recorded in fixtures/guests/TOOLCHAIN (and, whatever the
/// toolchain, every rebuilt program gives each manifest case's exit code and output).
#[test]
fn fixtures_rebuilt_from_source_match_the_committed_elves_and_the_manifest() {
    if !toolchains_present("fixtures_rebuilt_from_source", "all") {
        return;
    }
    let out_dir = scratch("rebuild");
    let out = clean_command("bash")
        .arg(fixtures_dir().join("build-guests.sh"))
        .arg(&out_dir)
        .output()
        .unwrap();
    check(&out, "fixtures/build-guests.sh");

    let recorded = std::fs::read_to_string(fixtures_dir().join("guests/TOOLCHAIN")).unwrap();
    let ours = std::fs::read_to_string(out_dir.join("TOOLCHAIN")).unwrap();
    let mut differ = BTreeMap::new();
    for program in GUEST_FIXTURES {
        let rebuilt = std::fs::read(out_dir.join(format!("{program}.elf"))).unwrap();
        let committed = std::fs::read(fixtures_dir().join(format!("elf/{program}.elf"))).unwrap();
        if rebuilt != committed {
            differ.insert(program, (rebuilt.len(), committed.len()));
        }
    }
    if recorded == ours {
        assert!(
            differ.is_empty(),
            "rebuilt with the recorded toolchain, these ELFs differ from the committed ones \
             (rebuilt size, committed size): {differ:?}; run fixtures/build-guests.sh and commit"
        );
    } else {
        eprintln!(
            "fixtures_rebuilt_from_source: toolchain differs from fixtures/guests/TOOLCHAIN, so \
             byte identity is not checked (differing: {differ:?})\nrecorded:\n{recorded}\nhere:\n{ours}"
        );
    }

    for case in guest_cases() {
        let input = out_dir.join(format!("{}.in", case.name));
        std::fs::write(&input, case.input()).unwrap();
        let out = execute(&out_dir.join(format!("{}.elf", case.program)), &input);
        assert_eq!(
            out.status.code(),
            Some(case.exit_code),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            case.output,
            "{}",
            case.name
        );
    }
}

/// The committed real-workload fixtures prove and verify on small inputs, and the verified
/// output is the manifest's (the large inputs are for `stark-pipe bench programs`).
#[test]
fn small_guest_fixture_runs_prove_and_verify() {
    let dir = scratch("prove");
    let cases = guest_cases();
    for name in [
        "rs_sha256_abc",
        "rs_json_small",
        "rs_bigint_small",
        "rs_memsort_1000",
        "c_wordfreq_empty",
    ] {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        let elf = fixtures_dir().join(format!("elf/{}.elf", case.program));
        let input = dir.join(format!("{name}.in"));
        std::fs::write(&input, case.input()).unwrap();
        let proof = dir.join(format!("{name}.proof"));
        let out = Command::new(BIN)
            .arg("run")
            .arg(&elf)
            .arg("--input")
            .arg(&input)
            .args([
                "--queries",
                "24",
                "--pow-bits",
                "4",
                "--progress",
                "never",
                "-o",
            ])
            .arg(&proof)
            .output()
            .unwrap();
        check(&out, &format!("run {name}"));
        assert_eq!(
            String::from_utf8_lossy(&verified_output(&proof, &elf)),
            case.output,
            "{name}"
        );
    }
}

/// The guest runtime's own unit tests (the allocator under a random workload, in-place growth,
/// exhaustion), run on the host with the cargo that runs these tests.
#[test]
fn guest_runtime_unit_tests_pass_on_the_host() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target = scratch("runtime-unit");
    let out = clean_command(&cargo)
        .args(["test", "--offline", "--manifest-path"])
        .arg(repo().join("guest/rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    check(&out, "cargo test in guest/rust");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test result: ok. 3 passed"), "{stdout}");
}
