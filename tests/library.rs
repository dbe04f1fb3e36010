//! The library API (`stark_pipe::{Prover, verify}`) as an embedding program uses it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use stark_pipe::{Error, Program, ProgressEvent, Proof, Prover, Store, verify, verify_with};

fn program(name: &str) -> Program {
    Program::open(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/elf")
            .join(format!("{name}.elf")),
    )
    .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("library-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small fast prover: 2^12-row chunks, 24 queries and 4 grinding bits.
fn fast(p: &Program, n: u32) -> Prover {
    Prover::new(p.clone())
        .input(n.to_le_bytes())
        .chunk_rows(1 << 12)
        .security(24, 4)
}

#[test]
fn the_out_of_core_and_the_in_memory_prover_give_the_same_bytes_and_report_every_pass() {
    let fib = program("fib_iterative");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let spill = scratch("spill").join("run");
    let piped = fast(&fib, 5000)
        .spill_dir(&spill)
        .keep_spill(true)
        .on_progress(move |e| match e {
            ProgressEvent::PassStarted { pass, .. } => {
                seen.lock().unwrap().push(format!("start {pass}"))
            }
            ProgressEvent::PassFinished { pass, run, .. } => seen
                .lock()
                .unwrap()
                .push(format!("end {pass} {:.2}", run.fraction)),
            _ => {}
        })
        .prove()
        .unwrap();
    let in_memory = fast(&fib, 5000).in_memory(true).prove().unwrap();
    assert_eq!(piped.to_bytes(), in_memory.to_bytes());
    let report = piped.report().unwrap();
    assert_eq!(report.spill_dir_kept.as_deref(), Some(spill.as_path()));
    assert_eq!(report.summary.passes.len(), 8);
    // One instance per table that has rows.
    assert!(report.instances > 1 && report.instances <= report.widths.len());

    let events = events.lock().unwrap();
    let passes = [
        "main", "aux", "quotient", "ood", "deep", "fri", "open", "check",
    ];
    let starts: Vec<_> = events.iter().filter(|e| e.starts_with("start")).collect();
    assert_eq!(
        starts,
        passes
            .map(|p| format!("start {p}"))
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(events.last().unwrap(), "end check 1.00");

    let v = verify_with(&piped, &fib, 0).unwrap();
    assert_eq!(v.output, b"2448710421\n");
    assert_eq!((v.exit_code, v.program_digest), (0, fib.digest()));
    assert_eq!(v.cycles, piped.statement().cycles);
    // Below the default 100 bits: refused by `verify`, with the reason.
    let err = verify(&piped, &fib).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.to_string().contains("below the required 100"), "{err}");
}

/// A chunked run makes an instance per chunk, with the in-memory prover's bytes under any store
/// policy; the chunked settings are refused without it.
#[test]
fn a_chunked_run_matches_its_in_memory_proof_and_owns_the_store_policy() {
    let fib = program("fib_iterative");
    let recompute = "recompute".parse::<Store>().unwrap();
    let chunked = fast(&fib, 5000)
        .chunked(true)
        .store(recompute)
        .prove()
        .unwrap();
    let in_memory = fast(&fib, 5000)
        .chunked(true)
        .in_memory(true)
        .prove()
        .unwrap();
    assert_eq!(chunked.to_bytes(), in_memory.to_bytes());
    let single = fast(&fib, 5000).prove().unwrap();
    let (many, one) = (
        chunked.report().unwrap().instances,
        single.report().unwrap().instances,
    );
    assert!(many > one, "{many} chunks, {one} instances");
    for (prover, says) in [
        (fast(&fib, 10).store(recompute), "store policies"),
        (fast(&fib, 10).channel_capacity(1), "channel capacity"),
        (
            fast(&fib, 10).chunked(true).instance_rows(1 << 16),
            "chunked run's instances",
        ),
        (
            fast(&fib, 10).chunked(true).resume("/nonexistent"),
            "resume",
        ),
    ] {
        let err = prover.prove().unwrap_err();
        assert!(
            matches!(err, Error::Settings(_)) && err.to_string().contains(says),
            "{err}"
        );
    }
}

#[test]
fn proofs_round_trip_through_files_and_refuse_the_wrong_program() {
    let fib = program("fib_iterative");
    let proof = fast(&fib, 100).prove().unwrap();
    let path = scratch("file").join("fib.proof");
    proof.write(&path).unwrap();
    let read = Proof::read(&path).unwrap();
    assert_eq!(read.to_bytes(), proof.to_bytes());
    assert!(read.report().is_none());
    assert_eq!(verify_with(&read, &fib, 0).unwrap().output, b"3314859971\n");
    let err = verify_with(&read, &program("sub"), 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("fib.proof is not a valid proof for")
            && err.to_string().contains("another program"),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    assert!(matches!(
        Program::from_elf(b"\x7fELF not really", "junk.elf"),
        Err(Error::Program(m)) if m.contains("junk.elf")
    ));
    for bytes in [&b""[..], b"garbage", &[0u8; 4096]] {
        assert!(Proof::from_bytes(bytes).is_err());
    }
    let fib = program("fib_iterative");
    let mut good = fast(&fib, 10).prove().unwrap().to_bytes();
    let at = good.len() / 2;
    good[at] ^= 1;
    if let Ok(p) = Proof::from_bytes(&good) {
        assert!(verify_with(&p, &fib, 0).is_err());
    }
    let err = fast(&fib, 10).chunk_rows(3).prove().unwrap_err();
    assert!(matches!(err, Error::Settings(_)), "{err}");
    let err = fast(&fib, 10).max_cycles(100).prove().unwrap_err();
    assert!(err.to_string().contains("cycle limit"), "{err}");
    // A failed run with a kept spill dir says where it is.
    let dir = scratch("failed").join("spill");
    let err = fast(&fib, 10)
        .max_cycles(100)
        .spill_dir(&dir)
        .keep_spill(true)
        .prove()
        .unwrap_err();
    match &err {
        Error::Prove { spill_dir_kept, .. } => {
            assert_eq!(spill_dir_kept.as_deref(), Some(dir.as_path()))
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err.to_string().contains("spill dir kept"), "{err}");
    assert!(dir.join("manifest.toml").exists());
}
