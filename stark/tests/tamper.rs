//! Every check bites: corrupt one thing at a random position, the proof is rejected.

mod common;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stark::field::{EF, F, PrimeCharacteristicRing};
use stark::{Air, Proof, PublicInputs, Tamper, VerifierParams, prove, prove_with_tamper, verify};

const CASES: usize = 12;

/// Fibonacci (3 chunks) plus the lookup tables in one proof: every kind of column and height.
struct Fixture {
    airs: Vec<&'static dyn Air>,
    traces: Vec<stark::InstanceTrace>,
    public: PublicInputs,
}

struct FibUser;
impl Air for FibUser {
    fn name(&self) -> &str {
        "fib"
    }
    fn main_width(&self) -> usize {
        Fib.main_width()
    }
    fn eval(&self, b: &mut stark::AirBuilder) {
        Fib.eval(b)
    }
}

/// The pass trees joined at 2^7 rows: the fib instance of 2^9 rows has siblings below the join
/// layer, the others are injected above it, and every pass tree has siblings of its own.
fn params() -> stark::ProofParams {
    stark::ProofParams {
        log_join_rows: 7,
        ..common::params()
    }
}

fn fixture() -> Fixture {
    let (mut traces, end) = fib_traces(&[4, 3, 9]);
    for t in lookup_traces(&[4, 2], 9) {
        traces.push(stark::InstanceTrace {
            table: t.table + 1,
            trace: t.trace,
        });
    }
    for t in range_traces(5) {
        traces.push(stark::InstanceTrace {
            table: t.table + 3,
            trace: t.trace,
        });
    }
    Fixture {
        airs: vec![&FibUser, &SquareUser, &SquareTable, &RangeTable, &RangeUser],
        traces,
        public: fib_public(end),
    }
}

fn honest() -> (Fixture, Proof) {
    let f = fixture();
    let proof = prove(&f.airs, f.traces.clone(), &f.public, &params()).unwrap();
    verify(&f.airs, &proof, &f.public, &VerifierParams::default()).unwrap();
    (f, proof)
}

fn rejects(f: &Fixture, p: &Proof) -> bool {
    verify(&f.airs, p, &f.public, &VerifierParams::default()).is_err()
}

fn bump(x: &mut F) {
    *x += F::ONE;
}
fn bump_ext(x: &mut EF) {
    *x += EF::ONE;
}

#[test]
fn mutated_main_cell_is_rejected() {
    let f = fixture();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..CASES {
        let inst = rng.random_range(0..f.traces.len());
        let cell = rng.random_range(0..f.traces[inst].trace.values.len());
        let proof = prove_with_tamper(&f.airs, f.traces.clone(), &f.public, &params(), &mut |t| {
            if let Tamper::Main { instance, trace } = t
                && instance == inst
            {
                bump(&mut trace.values[cell]);
            }
        })
        .unwrap();
        assert!(rejects(&f, &proof), "instance {inst} cell {cell}");
    }
}

#[test]
fn mutated_aux_cell_and_claimed_sum_are_rejected() {
    let f = fixture();
    let mut rng = StdRng::seed_from_u64(2);
    for case in 0..2 * CASES {
        let inst = rng.random_range(0..f.traces.len());
        let pick: u64 = rng.random();
        let mut hit = false;
        let proof = prove_with_tamper(&f.airs, f.traces.clone(), &f.public, &params(), &mut |t| {
            if let Tamper::Aux { instance, aux } = t
                && instance == inst
            {
                hit = true;
                if case % 2 == 0 {
                    let cell = (pick % aux.trace.values.len() as u64) as usize;
                    bump(&mut aux.trace.values[cell]);
                } else {
                    bump_ext(&mut aux.claimed_sum);
                }
            }
        })
        .unwrap();
        if hit {
            assert!(rejects(&f, &proof), "case {case} instance {inst}");
        }
    }
    // A claimed sum changed in the finished proof.
    let (f, proof) = honest();
    for i in 0..proof.claimed_sums.len() {
        if proof.claimed_sums[i].is_some() {
            let mut p = proof.clone();
            bump_ext(p.claimed_sums[i].as_mut().unwrap());
            assert!(rejects(&f, &p));
        }
    }
}

/// The running sum has no first-row constraint: the same sum shifted by a constant on every row
/// proves the same statement (what binds is each instance's claimed sum, below).
#[test]
fn running_sum_shifted_by_a_constant_is_the_same_statement() {
    let f = fixture();
    let proof = prove_with_tamper(&f.airs, f.traces.clone(), &f.public, &params(), &mut |t| {
        if let Tamper::Aux { aux, .. } = t {
            let w = aux.trace.width;
            for row in aux.trace.values.chunks_exact_mut(w) {
                row[w - 2] += F::from_u64(12345);
                row[w - 1] += F::from_u64(678);
            }
        }
    })
    .unwrap();
    verify(&f.airs, &proof, &f.public, &VerifierParams::default()).unwrap();
}

/// Claimed sums moved from one instance to another keep the buses balanced in total; each
/// instance's running-sum step (which closes through its own claimed sum) refuses them.
#[test]
fn claimed_sums_moved_between_instances_are_rejected() {
    let f = fixture();
    let (_, honest) = honest();
    let with_aux: Vec<usize> = (0..honest.claimed_sums.len())
        .filter(|&i| honest.claimed_sums[i].is_some())
        .collect();
    assert!(with_aux.len() >= 3);
    for pair in with_aux.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let delta = EF::from(F::from_u64(7));
        let proof = prove_with_tamper(&f.airs, f.traces.clone(), &f.public, &params(), &mut |t| {
            if let Tamper::Aux { instance, aux } = t {
                if instance == a {
                    aux.claimed_sum += delta;
                } else if instance == b {
                    aux.claimed_sum -= delta;
                }
            }
        })
        .unwrap();
        let total: EF = proof.claimed_sums.iter().flatten().copied().sum();
        let honest_total: EF = honest.claimed_sums.iter().flatten().copied().sum();
        assert_eq!(total, honest_total);
        assert!(rejects(&f, &proof), "claimed sums moved from {a} to {b}");
    }
}

/// Tree `k` of an instance's openings: 0 main, 1 preprocessed, 2 aux, 3 quotient.
fn tree_mut(
    op: &mut stark::proof::InstanceOpening,
    k: usize,
) -> Option<&mut stark::proof::TreeOpening> {
    match k {
        0 => Some(&mut op.main),
        1 => op.prep.as_mut(),
        2 => op.aux.as_mut(),
        _ => Some(&mut op.quotient),
    }
}

#[test]
fn mutated_proof_fields_are_rejected() {
    let (f, proof) = honest();
    let mut rng = StdRng::seed_from_u64(3);
    let n = proof.instances.len();
    for _ in 0..CASES {
        // OOD value.
        let mut p = proof.clone();
        let o = &mut p.ood[rng.random_range(0..n)];
        let vecs: Vec<&mut Vec<EF>> = o
            .columns_mut()
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect();
        let k = rng.random_range(0..vecs.len());
        let v = vecs.into_iter().nth(k).unwrap();
        let j = rng.random_range(0..v.len());
        bump_ext(&mut v[j]);
        assert!(rejects(&f, &p), "ood");

        // Merkle sibling node of an opened tree, and an opened value (query answer).
        let mut with_siblings = Vec::new();
        for i in 0..n {
            for k in 0..4 {
                if tree_mut(&mut proof.clone().openings[i], k)
                    .is_some_and(|t| !t.siblings.is_empty())
                {
                    with_siblings.push((i, k));
                }
            }
        }
        assert!(!with_siblings.is_empty());
        let (i, k) = with_siblings[rng.random_range(0..with_siblings.len())];
        let mut p = proof.clone();
        let t = tree_mut(&mut p.openings[i], k).unwrap();
        let d = rng.random_range(0..t.siblings.len());
        t.siblings[d][rng.random_range(0..32)] ^= 1 << rng.random_range(0..8);
        assert!(rejects(&f, &p), "merkle node");
        let mut p = proof.clone();
        let t = tree_mut(&mut p.openings[i], k).unwrap();
        let r = rng.random_range(0..t.rows.len());
        let c = rng.random_range(0..t.rows[r].len());
        bump(&mut t.rows[r][c]);
        assert!(rejects(&f, &p), "query answer");

        // FRI layer value and FRI sibling node.
        let mut p = proof.clone();
        let layer = rng.random_range(0..p.fri_roots.len());
        let lo = &mut p.fri_openings[layer];
        let k = rng.random_range(0..lo.values.len());
        bump_ext(&mut lo.values[k]);
        assert!(rejects(&f, &p), "fri value");
        let with_siblings: Vec<usize> = (0..p.fri_roots.len())
            .filter(|&l| !proof.fri_openings[l].siblings.is_empty())
            .collect();
        let l = with_siblings[rng.random_range(0..with_siblings.len())];
        let mut p = proof.clone();
        let lo = &mut p.fri_openings[l];
        let d = rng.random_range(0..lo.siblings.len());
        lo.siblings[d][rng.random_range(0..32)] ^= 0x80;
        assert!(rejects(&f, &p), "fri sibling");

        // A sibling of a pass tree above its join layer.
        let mut p = proof.clone();
        let s = &mut p.pass_siblings;
        let mut tops: Vec<&mut Vec<stark::Digest>> =
            [&mut s.prep, &mut s.main, &mut s.aux, &mut s.quotient]
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect();
        assert_eq!(
            tops.len(),
            4,
            "every pass has siblings above its join layer"
        );
        let k = rng.random_range(0..tops.len());
        let top = &mut tops[k];
        let d = rng.random_range(0..top.len());
        top[d][rng.random_range(0..32)] ^= 1 << rng.random_range(0..8);
        assert!(rejects(&f, &p), "pass sibling");

        // Roots.
        let mut p = proof.clone();
        p.main_root[rng.random_range(0..32)] ^= 4;
        assert!(rejects(&f, &p), "main root");
        let mut p = proof.clone();
        p.aux_root.as_mut().unwrap()[rng.random_range(0..32)] ^= 4;
        assert!(rejects(&f, &p), "aux root");
        let mut p = proof.clone();
        p.quotient_root[rng.random_range(0..32)] ^= 4;
        assert!(rejects(&f, &p), "quotient root");
        let mut p = proof.clone();
        p.fri_roots[layer][5] ^= 2;
        assert!(rejects(&f, &p), "fri root");
    }
    // Grinding nonce, FRI final value.
    for delta in 1..=CASES as u64 {
        let mut p = proof.clone();
        p.pow_nonce = p.pow_nonce.wrapping_add(delta);
        assert!(rejects(&f, &p), "nonce");
    }
    let mut p = proof.clone();
    bump_ext(&mut p.fri_final);
    assert!(rejects(&f, &p), "fri final");
}

#[test]
fn deterministic_across_thread_counts() {
    let f = fixture();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            prove(&f.airs, f.traces.clone(), &f.public, &params())
                .unwrap()
                .to_bytes()
        })
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a, b);
    assert_eq!(a, run(2));

    // Large enough that every parallel loop splits into many pieces.
    let airs: [&dyn Air; 1] = [&Cubes];
    let traces = vec![cubes_trace(13), cubes_trace(11)];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            prove(&airs, traces.clone(), &plain_public(), &params())
                .unwrap()
                .to_bytes()
        })
    };
    assert_eq!(run(1), run(2));
}

fn cubes_trace(lh: usize) -> stark::InstanceTrace {
    let v = (0..1u64 << lh)
        .flat_map(|i| [F::from_u64(i), F::from_u64(i * i * i)])
        .collect();
    stark::InstanceTrace {
        table: 0,
        trace: stark::RowMajorMatrix::new(v, 2),
    }
}

/// No buses: a bad main cell can only be caught by the constraint/quotient check.
struct Cubes;
impl Air for Cubes {
    fn name(&self) -> &str {
        "cubes"
    }
    fn main_width(&self) -> usize {
        2
    }
    fn eval(&self, b: &mut stark::AirBuilder) {
        let (x, y, xn) = (b.main(0), b.main(1), b.main_next(0));
        b.assert_zero(&y - &x * &x * &x);
        b.assert_zero_transition(xn - &x - 1u64);
        b.assert_zero_first(x);
    }
}

#[test]
fn mutated_main_cell_fails_the_quotient_check() {
    let airs: [&dyn Air; 1] = [&Cubes];
    let trace = |lh: usize| {
        let v = (0..1u64 << lh)
            .flat_map(|i| [F::from_u64(i), F::from_u64(i * i * i)])
            .collect();
        stark::InstanceTrace {
            table: 0,
            trace: stark::RowMajorMatrix::new(v, 2),
        }
    };
    let traces = vec![trace(5), trace(3)];
    let public = plain_public();
    let p = prove(&airs, traces.clone(), &public, &params()).unwrap();
    verify(&airs, &p, &public, &VerifierParams::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..CASES {
        let inst = rng.random_range(0..2);
        let cell = rng.random_range(0..traces[inst].trace.values.len());
        let p = prove_with_tamper(&airs, traces.clone(), &public, &params(), &mut |t| {
            if let Tamper::Main { instance, trace } = t
                && instance == inst
            {
                bump(&mut trace.values[cell]);
            }
        })
        .unwrap();
        let r = verify(&airs, &p, &public, &VerifierParams::default());
        assert_eq!(
            r,
            Err(stark::VerifyError::Constraints(inst)),
            "instance {inst} cell {cell}"
        );
        // The checking prover names the failing instance.
        let mut bad = traces.clone();
        bump(&mut bad[inst].trace.values[cell]);
        match stark::prove_checked(&airs, bad, &public, &params()) {
            Err(stark::ProveError::Unsatisfied(msg)) => {
                assert!(msg.contains(&format!("instance {inst}")), "{msg}")
            }
            other => panic!("expected Unsatisfied, got {other:?}"),
        }
    }
}

#[test]
fn structural_mutations_are_rejected() {
    let (f, proof) = honest();
    type Mutation = Box<dyn Fn(&mut Proof)>;
    let with_aux = proof.claimed_sums.iter().position(|a| a.is_some()).unwrap();
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "log height up",
            Box::new(|p| p.instances[0].log_height += 1),
        ),
        (
            "log height down",
            Box::new(|p| p.instances[1].log_height -= 1),
        ),
        ("table index", Box::new(|p| p.instances[0].table = 1)),
        (
            "drop instance",
            Box::new(|p| {
                p.instances.pop();
            }),
        ),
        (
            "drop opened row",
            Box::new(|p| {
                p.openings[0].main.rows.pop();
            }),
        ),
        (
            "extra sibling",
            Box::new(|p| p.openings[2].quotient.siblings.push([0; 32])),
        ),
        (
            "drop sibling",
            Box::new(|p| {
                p.openings[2].main.siblings.pop();
            }),
        ),
        (
            "drop FRI layer opening",
            Box::new(|p| {
                p.fri_openings.pop();
            }),
        ),
        (
            "drop FRI root",
            Box::new(|p| {
                p.fri_roots.pop();
            }),
        ),
        (
            "drop OOD value",
            Box::new(|p| {
                p.ood[0].main.pop();
            }),
        ),
        (
            "drop claimed sum",
            Box::new(move |p| p.claimed_sums[with_aux] = None),
        ),
        ("drop aux root", Box::new(|p| p.aux_root = None)),
        (
            "drop pass sibling",
            Box::new(|p| {
                p.pass_siblings.main.pop();
            }),
        ),
        (
            "extra pass sibling",
            Box::new(|p| p.pass_siblings.quotient.push([0; 32])),
        ),
        (
            "swap pass siblings",
            Box::new(|p| {
                let s = &mut p.pass_siblings;
                std::mem::swap(&mut s.main, &mut s.aux);
            }),
        ),
        ("join layer up", Box::new(|p| p.params.log_join_rows += 1)),
        ("join layer down", Box::new(|p| p.params.log_join_rows -= 1)),
        ("fewer queries", Box::new(|p| p.params.num_queries -= 1)),
        ("more queries", Box::new(|p| p.params.num_queries += 1)),
        ("blowup", Box::new(|p| p.params.log_blowup = 2)),
        ("grinding up", Box::new(|p| p.params.pow_bits += 1)),
        ("grinding down", Box::new(|p| p.params.pow_bits -= 1)),
        ("statement", Box::new(|p| p.statement[31] ^= 1)),
        ("swap openings", Box::new(|p| p.openings.swap(0, 1))),
        (
            "duplicate FRI leaf value",
            Box::new(|p| {
                let x = p.fri_openings[0].values[0];
                p.fri_openings[0].values.insert(0, x);
            }),
        ),
    ];
    for (name, m) in mutations {
        let mut p = proof.clone();
        m(&mut p);
        assert!(rejects(&f, &p), "{name}");
        // Through bytes as well: decoding either fails or the verifier rejects.
        if let Ok(q) = Proof::from_bytes(&p.to_bytes()) {
            assert!(rejects(&f, &q), "{name} (bytes)");
        }
    }
}

/// The LogUp argument needs fewer than p bus terms in all; the verifier caps the total rows at
/// `MAX_TOTAL_ROWS` before anything else, whatever `max_instances` allows.
#[test]
fn shapes_above_the_total_row_bound_are_refused() {
    use stark::VerifyError;
    use stark::params::MAX_TOTAL_ROWS;
    use stark::proof::InstanceShape;

    let airs: [&dyn Air; 1] = [&Fib];
    let (traces, end) = fib_traces(&[3]);
    let public = fib_public(end);
    let mut proof = prove(&airs, traces, &public, &params()).unwrap();
    let vp = VerifierParams {
        min_security_bits: 0,
        ..VerifierParams::default()
    };
    verify(&airs, &proof, &public, &vp).unwrap();
    let shape = InstanceShape {
        table: 0,
        log_height: 26,
    };
    let at_bound = (MAX_TOTAL_ROWS >> 26) as usize;
    proof.instances = vec![shape; at_bound + 1];
    match verify(&airs, &proof, &public, &vp) {
        Err(VerifyError::Bound { value, bound, .. }) => {
            assert_eq!(bound, MAX_TOTAL_ROWS);
            assert_eq!(value, MAX_TOTAL_ROWS + (1 << 26));
        }
        other => panic!("expected the row bound, got {other:?}"),
    }
    // At the bound itself the shapes pass this check (and fail later, being no real proof).
    proof.instances = vec![shape; at_bound];
    assert!(!matches!(
        verify(&airs, &proof, &public, &vp),
        Err(VerifyError::Bound { .. }) | Ok(_)
    ));
}
