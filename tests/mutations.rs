//! Random mutations of valid proof files, as `stark-pipe verify` reads them: bit flips,
//! truncations and extensions, edits of the statement's fields, and edits of the decoded STARK
//! proof's parts (shapes, roots, claimed sums, OOD values, opened rows, Merkle siblings, FRI
//! layers, the nonce) and whole-section swaps. Every mutation must be refused, and nothing may
//! panic (a panic fails the test).
//!
//! `STARK_PIPE_MUTATIONS` sets the count (default 10,000; the figure is 10^5:
//! `STARK_PIPE_MUTATIONS=100000 cargo test --release -p stark-pipe --test mutations -- --nocapture`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use formats::proof_file::ProofFile;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stark::field::{EF, F, PrimeCharacteristicRing};
use stark::{Proof, ProofParams, VerifierParams};
use vm::Program;
use vm::air::{ExecutionVerifier, Statement, table};

const P: u64 = 0xffff_ffff_0000_0001;

fn program() -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/elf/fib_iterative.elf");
    Arc::new(Program::from_file(&path).unwrap())
}

/// A proof file of fib_iterative(n) with instances of at most `rows` rows, small query count.
fn proof_file(program: &Arc<Program>, n: u32, rows: usize) -> (Statement, Proof, Vec<u8>) {
    let params = ProofParams {
        log_blowup: 1,
        num_queries: 16,
        pow_bits: 2,
        ..ProofParams::default()
    };
    let run = stages::prove_in_memory(
        Arc::clone(program),
        Arc::from(&n.to_le_bytes()[..]),
        rows,
        u64::MAX,
        &params,
    )
    .unwrap();
    let file = ProofFile {
        statement: run.statement.to_bytes(),
        proof: run.proof.to_bytes(),
    };
    (run.statement, run.proof, file.to_bytes())
}

fn file_bytes(statement: &Statement, proof: &Proof) -> Vec<u8> {
    ProofFile {
        statement: statement.to_bytes(),
        proof: proof.to_bytes(),
    }
    .to_bytes()
}

/// What `stark-pipe verify` (and `inspect`) do with a file's bytes; true when accepted.
fn accepted(verifier: &mut ExecutionVerifier, names: &[&str], bytes: &[u8]) -> bool {
    let Ok(file) = ProofFile::from_bytes(bytes, Path::new("fuzz.proof")) else {
        return false;
    };
    let (Ok(statement), Ok(proof)) = (
        Statement::from_bytes(&file.statement),
        Proof::from_bytes(&file.proof),
    ) else {
        return false;
    };
    let _ = proof.summary(names).to_string();
    let params = VerifierParams {
        min_security_bits: 0,
        ..VerifierParams::default()
    };
    verifier.verify(&statement, &proof, &params).is_ok()
}

fn pick<T>(rng: &mut StdRng, v: &mut [T]) -> Option<usize> {
    (!v.is_empty()).then(|| rng.random_range(0..v.len()))
}

fn nudge_ef(x: &mut EF) {
    *x += EF::ONE;
}

/// One edit of the decoded proof; false when the chosen part was empty.
fn mutate_proof(rng: &mut StdRng, p: &mut Proof) -> bool {
    let byte = |rng: &mut StdRng, d: &mut [u8; 32]| {
        d[rng.random_range(0..32)] ^= 1 << rng.random_range(0..8)
    };
    match rng.random_range(0..15) {
        0 => {
            let Some(i) = pick(rng, &mut p.instances) else {
                return false;
            };
            let s = &mut p.instances[i];
            match rng.random_range(0..3) {
                0 => s.log_height = s.log_height.wrapping_add(1),
                1 => s.log_height = s.log_height.wrapping_sub(1),
                _ => s.table = (s.table + 1) % table::COUNT as u32,
            }
        }
        1 => byte(rng, &mut p.main_root),
        2 => {
            if rng.random_bool(0.5) {
                let Some(r) = p.aux_root.as_mut() else {
                    return false;
                };
                byte(rng, r);
            } else {
                let Some(i) = pick(rng, &mut p.claimed_sums) else {
                    return false;
                };
                let Some(c) = p.claimed_sums[i].as_mut() else {
                    return false;
                };
                nudge_ef(c);
            }
        }
        3 => byte(rng, &mut p.quotient_root),
        4 => {
            let Some(i) = pick(rng, &mut p.ood) else {
                return false;
            };
            let cols = p.ood[i].columns_mut();
            let k = rng.random_range(0..cols.len());
            let v = cols.into_iter().nth(k).unwrap();
            let Some(j) = pick(rng, v) else { return false };
            nudge_ef(&mut v[j]);
        }
        5 => {
            let Some(i) = pick(rng, &mut p.fri_roots) else {
                return false;
            };
            byte(rng, &mut p.fri_roots[i]);
        }
        6 => nudge_ef(&mut p.fri_final),
        7 => p.pow_nonce ^= 1 << rng.random_range(0..64),
        8 | 9 => {
            let Some(i) = pick(rng, &mut p.openings) else {
                return false;
            };
            let o = &mut p.openings[i];
            let tree = match rng.random_range(0..4) {
                0 => &mut o.main,
                1 => match o.prep.as_mut() {
                    Some(t) => t,
                    None => return false,
                },
                2 => match o.aux.as_mut() {
                    Some(t) => t,
                    None => return false,
                },
                _ => &mut o.quotient,
            };
            if rng.random_bool(0.5) {
                let Some(r) = pick(rng, &mut tree.rows) else {
                    return false;
                };
                let Some(c) = pick(rng, &mut tree.rows[r]) else {
                    return false;
                };
                tree.rows[r][c] += F::ONE;
            } else {
                let Some(s) = pick(rng, &mut tree.siblings) else {
                    return false;
                };
                byte(rng, &mut tree.siblings[s]);
            }
        }
        10 => {
            let Some(i) = pick(rng, &mut p.fri_openings) else {
                return false;
            };
            let l = &mut p.fri_openings[i];
            if rng.random_bool(0.5) {
                let Some(j) = pick(rng, &mut l.values) else {
                    return false;
                };
                nudge_ef(&mut l.values[j]);
            } else {
                let Some(s) = pick(rng, &mut l.siblings) else {
                    return false;
                };
                byte(rng, &mut l.siblings[s]);
            }
        }
        11 => {
            // Drop or duplicate an instance with everything that belongs to it.
            let Some(i) = pick(rng, &mut p.instances) else {
                return false;
            };
            if rng.random_bool(0.5) {
                p.instances.remove(i);
                p.claimed_sums.remove(i);
                p.ood.remove(i);
                p.openings.remove(i);
            } else {
                p.instances.insert(i, p.instances[i]);
                p.claimed_sums.insert(i, p.claimed_sums[i]);
                p.ood.insert(i, p.ood[i].clone());
                p.openings.insert(i, p.openings[i].clone());
            }
        }
        12 => {
            // Swap two instances of one table (canonical order kept by table).
            let n = p.instances.len();
            let i = rng.random_range(0..n);
            let Some(j) = (0..n).find(|&j| j != i && p.instances[j].table == p.instances[i].table)
            else {
                return false;
            };
            p.claimed_sums.swap(i, j);
            p.ood.swap(i, j);
            p.openings.swap(i, j);
            if p.openings[i] == p.openings[j] {
                return false;
            }
        }
        13 => {
            // A sibling of a pass tree above its join layer.
            let t = &mut p.pass_siblings;
            let tree = match rng.random_range(0..4) {
                0 => &mut t.prep,
                1 => &mut t.main,
                2 => &mut t.aux,
                _ => &mut t.quotient,
            };
            let Some(s) = pick(rng, tree) else {
                return false;
            };
            byte(rng, &mut tree[s]);
        }
        _ => {
            let k = rng.random_range(1..=4) as u8;
            p.params.num_queries = p.params.num_queries.wrapping_sub(k as u16).max(1);
        }
    }
    true
}

fn mutate_statement(rng: &mut StdRng, s: &mut Statement) {
    match rng.random_range(0..8) {
        0 => {
            s.cycles = [
                s.cycles + 1,
                s.cycles - 1,
                s.cycles + P,
                0,
                u64::MAX,
                (1 << 36) + 1,
            ][rng.random_range(0..6)]
        }
        1 => s.exit_code ^= 1 << rng.random_range(0..32),
        2 => {
            let i = rng.random_range(0..s.output.len());
            s.output[i] ^= 1 << rng.random_range(0..8);
        }
        3 => {
            s.output.pop();
        }
        4 => s.output.push(rng.random()),
        5 => s.entry = s.entry.wrapping_add(4),
        6 => s.program_digest[rng.random_range(0..32)] ^= 1,
        _ => s.output.insert(0, b'1'),
    }
}

fn cases() -> usize {
    std::env::var("STARK_PIPE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Several instances per table (2^8-row instances).
#[test]
fn mutated_proof_files_are_refused_without_panics() {
    let program = program();
    let proofs = (
        proof_file(&program, 300, 1 << 8),
        proof_file(&program, 301, 1 << 8),
    );
    assert!(
        proofs.0.1.instances.len() > table::COUNT,
        "several instances per table"
    );
    refuse_mutations(&program, proofs, cases());
}

/// One instance per table, as `run` proves by default (the same bytes as in memory with
/// every table in one instance, which the pipeline tests check).
#[test]
fn mutated_single_instance_proof_files_are_refused_without_panics() {
    let program = program();
    let proofs = (
        proof_file(&program, 300, 1 << 16),
        proof_file(&program, 301, 1 << 16),
    );
    let tables: Vec<u32> = proofs.0.1.instances.iter().map(|s| s.table).collect();
    let mut distinct = tables.clone();
    distinct.dedup();
    assert_eq!(tables, distinct, "one instance per table");
    refuse_mutations(&program, proofs, cases());
}

type File = (Statement, Proof, Vec<u8>);

/// Mutates the first proof file `cases` times (the second is another run's, for swaps) and
/// checks every mutation is refused.
fn refuse_mutations(program: &Arc<Program>, (first, other): (File, File), cases: usize) {
    let (statement, proof, bytes) = first;
    let (other_statement, other_proof, _) = other;
    let mut verifier = ExecutionVerifier::new(Arc::clone(program));
    let air = vm::air::Rv32Air::new(Arc::clone(program));
    let names: Vec<&str> = air.tables().iter().map(|t| t.name()).collect();
    assert!(
        accepted(&mut verifier, &names, &bytes),
        "the honest proof verifies"
    );
    assert!(accepted(
        &mut verifier,
        &names,
        &file_bytes(&other_statement, &other_proof)
    ));

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let start = Instant::now();
    let mut counts = [0usize; 5];
    let mut done = 0;
    while done < cases {
        let kind = rng.random_range(0..100);
        let class = match kind {
            0..40 => 0,
            40..50 => 1,
            50..70 => 2,
            70..98 => 3,
            _ => 4,
        };
        let mutated = match kind {
            0..40 => {
                let mut b = bytes.clone();
                for _ in 0..rng.random_range(1..=4) {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
                b
            }
            40..50 => {
                if rng.random_bool(0.8) {
                    bytes[..rng.random_range(0..bytes.len())].to_vec()
                } else {
                    let mut b = bytes.clone();
                    b.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
                    b
                }
            }
            50..70 => {
                let mut s = statement.clone();
                mutate_statement(&mut rng, &mut s);
                file_bytes(&s, &proof)
            }
            70..98 => {
                let mut p = proof.clone();
                if !mutate_proof(&mut rng, &mut p) {
                    continue;
                }
                file_bytes(&statement, &p)
            }
            _ => {
                // Another run's proof with this statement, or its statement with this proof.
                if rng.random_bool(0.5) {
                    file_bytes(&statement, &other_proof)
                } else {
                    file_bytes(&other_statement, &proof)
                }
            }
        };
        if mutated == bytes {
            continue;
        }
        counts[class] += 1;
        assert!(
            !accepted(&mut verifier, &names, &mutated),
            "mutation {done} (kind {kind}) was accepted"
        );
        done += 1;
    }
    eprintln!(
        "{done} mutations refused, none accepted, no panic, in {:.1} s: {} bit flips, {} truncations/extensions, {} statement edits, {} proof-part edits, {} section swaps",
        start.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4]
    );
}
