//! Drives the per-instance steps the way an out-of-core pipeline would: keep only traces and
//! small results between passes, recompute every LDE and tree when a pass needs it, and check
//! the result is byte-identical to the in-memory `prove`.

mod common;
use common::*;
use stark::pass_tree::{JoinNodes, PassTrees};
use stark::proof::{InstanceOpening, InstanceShape, Proof};
use stark::prover::{self, Committed, InstanceLdes};
use stark::{Air, InstanceTrace, PublicInputs, VerifierParams, fri, protocol};

/// Everything recomputed for one instance from its trace (what a pipeline stage would redo).
struct Recomputed {
    main: Committed,
    prep: Option<Committed>,
    aux: Option<Committed>,
}

fn recompute(
    airs: &[&dyn Air],
    tables: &[stark::Table],
    it: &InstanceTrace,
    s: InstanceShape,
    lookup: &[stark::EF; 2],
    log_b: usize,
) -> Recomputed {
    let table = &tables[it.table];
    let prep_trace = prover::preprocessed_trace(airs[it.table], table, s.log_height).unwrap();
    let aux = prover::aux_trace(
        table,
        it.trace.as_view(),
        prep_trace.as_ref().map(|p| p.as_view()),
        lookup,
    )
    .unwrap();
    Recomputed {
        main: prover::commit_trace_view(it.trace.as_view(), log_b),
        prep: prep_trace.map(|p| prover::commit_trace(p, log_b)),
        aux: aux.map(|a| prover::commit_trace(a.trace, log_b)),
    }
}

fn ldes(r: &Recomputed) -> InstanceLdes<'_> {
    InstanceLdes {
        main: r.main.lde.as_view(),
        prep: r.prep.as_ref().map(|c| c.lde.as_view()),
        aux: r.aux.as_ref().map(|c| c.lde.as_view()),
    }
}

fn prove_by_steps(airs: &[&dyn Air], traces: &[InstanceTrace], public: &PublicInputs) -> Proof {
    let params = params();
    let log_b = params.log_blowup as usize;
    let tables = stark::compile_all(airs).unwrap();
    let shapes: Vec<InstanceShape> = traces
        .iter()
        .map(|it| InstanceShape {
            table: it.table as u32,
            log_height: prover::check_trace(&tables[it.table], &it.trace, 0).unwrap(),
        })
        .collect();
    let mut t = protocol::start(&tables, &params, public, &shapes);
    let log_lde = |i: usize| shapes[i].log_height as usize + log_b;
    // A pass tree from the members' trees, each recomputed for what joins the pass tree.
    let join = |members: Vec<usize>, tree: &dyn Fn(usize) -> stark::merkle::MerkleTree| {
        let nodes: Vec<JoinNodes> = members
            .iter()
            .map(|&i| JoinNodes::of(&tree(i), params.log_join_lde()))
            .collect();
        JoinNodes::join(params.log_join_lde(), &nodes).unwrap()
    };
    let all: Vec<usize> = (0..traces.len()).collect();

    // Pass 1: main and preprocessed pass roots only.
    let main_pass = join(all.clone(), &|i| {
        prover::commit_trace_view(traces[i].trace.as_view(), log_b).tree
    })
    .unwrap();
    let prep_of = |i: usize| {
        let it = &traces[i];
        prover::commit_preprocessed(
            airs[it.table],
            &tables[it.table],
            shapes[i].log_height,
            log_b,
        )
        .unwrap()
    };
    let with_prep: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| prep_of(i).is_some())
        .collect();
    let prep_pass = join(with_prep, &|i| prep_of(i).unwrap().tree);
    protocol::observe_main(
        &mut t,
        prep_pass.as_ref().map(|p| p.root()).as_ref(),
        &main_pass.root(),
    );
    let lookup = protocol::draw_lookup_challenges(&mut t);

    // Pass 2: aux roots and claimed sums.
    let mut aux = Vec::new();
    for (i, it) in traces.iter().enumerate() {
        let table = &tables[it.table];
        let prep = prover::preprocessed_trace(airs[it.table], table, shapes[i].log_height).unwrap();
        let a = prover::aux_trace(
            table,
            it.trace.as_view(),
            prep.as_ref().map(|p| p.as_view()),
            &lookup,
        )
        .unwrap();
        aux.push(a.map(|a| a.claimed_sum));
    }
    let with_aux: Vec<usize> = all.iter().copied().filter(|&i| aux[i].is_some()).collect();
    let aux_pass = join(with_aux, &|i| {
        recompute(airs, &tables, &traces[i], shapes[i], &lookup, log_b)
            .aux
            .unwrap()
            .tree
    });
    protocol::observe_aux(&mut t, aux_pass.as_ref().map(|p| p.root()).as_ref(), &aux);
    let alpha = protocol::draw_composition_challenge(&mut t);
    let claimed = |i: usize| aux[i].unwrap_or_default();

    // Pass 3: quotient roots (LDEs recomputed).
    let quotient = |i: usize, r: &Recomputed| {
        let s = shapes[i];
        prover::commit_lde(
            prover::quotient(
                &tables[s.table as usize],
                s.log_height as usize,
                ldes(r),
                &lookup,
                claimed(i),
                alpha,
                log_b,
            )
            .unwrap(),
        )
    };
    let mut quotient_coeffs = Vec::new();
    for (i, it) in traces.iter().enumerate() {
        let r = recompute(airs, &tables, it, shapes[i], &lookup, log_b);
        let s = shapes[i];
        let (q, coeffs) = prover::quotient_with_coeffs(
            &tables[s.table as usize],
            s.log_height as usize,
            ldes(&r),
            &lookup,
            claimed(i),
            alpha,
            log_b,
        )
        .unwrap();
        assert_eq!(q.values, quotient(i, &r).lde.values);
        quotient_coeffs.push(coeffs);
    }
    let quotient_pass = join(all.clone(), &|i| {
        quotient(
            i,
            &recompute(airs, &tables, &traces[i], shapes[i], &lookup, log_b),
        )
        .tree
    })
    .unwrap();
    protocol::observe_quotient(&mut t, &quotient_pass.root());
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: OOD values (recomputed again).
    let mut ood = Vec::new();
    for (i, it) in traces.iter().enumerate() {
        let r = recompute(airs, &tables, it, shapes[i], &lookup, log_b);
        let q = quotient(i, &r);
        let o = prover::ood(
            &tables[it.table],
            shapes[i].log_height as usize,
            ldes(&r),
            q.lde.as_view(),
            z,
        )
        .unwrap();
        // The same values with no LDE at all: traces plus the kept quotient coefficients.
        let table = &tables[it.table];
        let prep = prover::preprocessed_trace(airs[it.table], table, shapes[i].log_height).unwrap();
        let aux = prover::aux_trace(
            table,
            it.trace.as_view(),
            prep.as_ref().map(|p| p.as_view()),
            &lookup,
        )
        .unwrap();
        let from_traces = prover::ood_from_traces(
            table,
            shapes[i].log_height as usize,
            prover::InstanceTraces {
                main: it.trace.as_view(),
                prep: prep.as_ref().map(|p| p.as_view()),
                aux: aux.as_ref().map(|a| a.trace.as_view()),
            },
            quotient_coeffs[i].as_view(),
            z,
        )
        .unwrap();
        assert_eq!(from_traces, o);
        protocol::observe_ood(&mut t, &o);
        ood.push(o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: DEEP, visiting instances in reverse order (order-independent by design). Even
    // instances from their LDEs, odd ones from traces + quotient coefficients (no LDE).
    let mut deep = prover::DeepAccumulator::new(&tables, &shapes, z, beta, log_b);
    for (i, it) in traces.iter().enumerate().rev() {
        let table = &tables[it.table];
        if i % 2 == 0 {
            let r = recompute(airs, &tables, it, shapes[i], &lookup, log_b);
            let q = quotient(i, &r);
            deep.add(table, i, ldes(&r), q.lde.as_view(), &ood[i])
                .unwrap();
        } else {
            let prep =
                prover::preprocessed_trace(airs[it.table], table, shapes[i].log_height).unwrap();
            let aux = prover::aux_trace(
                table,
                it.trace.as_view(),
                prep.as_ref().map(|p| p.as_view()),
                &lookup,
            )
            .unwrap();
            let traces = prover::InstanceTraces {
                main: it.trace.as_view(),
                prep: prep.as_ref().map(|p| p.as_view()),
                aux: aux.as_ref().map(|a| a.trace.as_view()),
            };
            deep.add_from_traces(table, i, traces, quotient_coeffs[i].as_view(), &ood[i])
                .unwrap();
        }
    }

    // Pass 6: FRI, grinding, queries.
    let fri_prover = fri::prove(std::mem::take(&mut deep.codewords), &mut t, log_b).unwrap();
    let protocol::Queries {
        pow_nonce: nonce,
        positions,
        log_max_lde,
    } = protocol::grind_and_sample_queries(&mut t, &params, &shapes);

    // Pass 7: openings (recomputed once more).
    let mut openings: Vec<InstanceOpening> = traces
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let r = recompute(airs, &tables, it, shapes[i], &lookup, log_b);
            let q = quotient(i, &r);
            let rows = protocol::query_rows(
                &positions,
                log_max_lde,
                shapes[i].log_height as usize + log_b,
            );
            InstanceOpening {
                main: r.main.open(&rows),
                prep: r.prep.as_ref().map(|c| c.open(&rows)),
                aux: r.aux.as_ref().map(|c| c.open(&rows)),
                quotient: q.open(&rows),
            }
        })
        .collect();
    let passes = PassTrees {
        prep: prep_pass.as_ref(),
        main: &main_pass,
        aux: aux_pass.as_ref(),
        quotient: &quotient_pass,
    };
    let log_ldes: Vec<usize> = all.iter().map(|&i| log_lde(i)).collect();
    let pass_siblings = passes.open(&mut openings, &log_ldes, &positions, log_max_lde);

    Proof {
        params,
        statement: public.statement,
        instances: shapes,
        main_root: main_pass.root(),
        aux_root: aux_pass.as_ref().map(|p| p.root()),
        claimed_sums: aux,
        quotient_root: quotient_pass.root(),
        ood,
        fri_roots: fri_prover.roots.clone(),
        fri_final: fri_prover.final_value,
        pow_nonce: nonce,
        openings,
        pass_siblings,
        fri_openings: fri_prover.open(&positions),
    }
}

#[test]
fn steps_with_recomputation_match_in_memory_prove() {
    let airs: [&dyn Air; 4] = [&SquareUser, &SquareTable, &RangeTable, &RangeUser];
    let mut traces = lookup_traces(&[5, 2, 4], 3);
    for t in range_traces(5) {
        traces.push(InstanceTrace {
            table: t.table + 2,
            trace: t.trace,
        });
    }
    let public = plain_public();
    let by_steps = prove_by_steps(&airs, &traces, &public);
    let in_memory = stark::prove(&airs, traces, &public, &params()).unwrap();
    assert_eq!(by_steps.to_bytes(), in_memory.to_bytes());
    stark::verify(&airs, &by_steps, &public, &VerifierParams::default()).unwrap();
}

/// A tall instance's aux trace is the aux rows of its blocks: each block continued from the
/// previous one's running sum, or each started from 0 and offset by the total of the blocks
/// before it (the carries an out-of-core prover folds into the LDE).
#[test]
fn aux_rows_of_blocks_carry_the_running_sum() {
    use stark::field::{PrimeCharacteristicRing, coords, ext};
    use stark::{EF, F};
    let airs: [&dyn Air; 2] = [&SquareUser, &SquareTable];
    let tables = stark::compile_all(&airs).unwrap();
    let lookup = [EF::from(F::new(1234567)), EF::from(F::new(89))];
    for it in &lookup_traces(&[6], 9) {
        let table = &tables[it.table];
        let full = prover::aux_trace(table, it.trace.as_view(), None, &lookup)
            .unwrap()
            .unwrap();
        let (aw, w) = (table.aux_width(), it.trace.width);
        let [c0, c1] = prover::running_sum_columns(table);
        let block = (it.trace.values.len() / w / 4).max(1);
        let (mut continued, mut offset) = (Vec::new(), Vec::new());
        let (mut end, mut carry) = (EF::ZERO, EF::ZERO);
        for rows in it.trace.values.chunks(block * w) {
            let view = prover::MatrixView::new(rows, w);
            let next = prover::aux_rows(table, view, None, &lookup, end).unwrap();
            end = next.running_sum;
            continued.extend(next.values);
            let mut local = prover::aux_rows(table, view, None, &lookup, EF::ZERO).unwrap();
            for row in local.values.chunks_exact_mut(aw) {
                let [s0, s1] = coords(ext(row[c0], row[c1]) + carry);
                (row[c0], row[c1]) = (s0, s1);
            }
            carry += local.running_sum;
            offset.extend(local.values);
        }
        assert_eq!(continued, full.trace.values, "table {}", table.name);
        assert_eq!(offset, full.trace.values, "table {}", table.name);
        assert_eq!((end, carry), (full.claimed_sum, full.claimed_sum));
    }
}

/// Passes 3 to 5 chunk by chunk over natural coset chunks equal the in-memory ones, value for
/// value: the quotient on each chunk (`prover::quotient_chunk`; a transition from a chunk's last
/// row reads the next chunk's first row, and the last chunk wraps to the first), its pieces'
/// coefficients (`prover::quotient_piece_block`), their LDE and tree, the OOD values
/// (`prover::ChunkedOod`) and the DEEP codeword (`DeepAccumulator::add_chunk`). Checked with transitions (fib), buses (square lookups) and
/// preprocessed columns (range), and with a fib trace broken exactly at a chunk boundary (its
/// quotient, not low-degree there, must come out the same, or the verifier would judge a
/// different polynomial).
#[test]
fn passes_3_to_5_by_chunks_are_the_in_memory_ones() {
    use stark::chunk_tree::LevelBuilder;
    use stark::field::PrimeCharacteristicRing;
    use stark::ntt::{
        ChunkGeometry, Extension, evaluate_chunked, interpolate_chunked, lde_chunked,
    };
    use stark::{EF, F, RowMajorMatrix};

    /// Returns the table's quotient pieces.
    fn check(air: &dyn Air, trace: &RowMajorMatrix<F>, log_chunk: usize) -> usize {
        let tables = stark::compile_all(&[air]).unwrap();
        let table = &tables[0];
        let log_b = params().log_blowup as usize;
        let n = trace.values.len() / trace.width;
        let log_n = n.trailing_zeros() as usize;
        let lookup = [EF::from(F::new(1234567)), EF::from(F::new(89))];
        let composition = EF::from(F::new(4242));
        let prep = prover::preprocessed_trace(air, table, log_n as u8).unwrap();
        let aux = prover::aux_trace(
            table,
            trace.as_view(),
            prep.as_ref().map(|p| p.as_view()),
            &lookup,
        )
        .unwrap();
        let claimed = aux.as_ref().map_or(EF::ZERO, |a| a.claimed_sum);
        let aux = aux.map(|a| a.trace);

        let commit = |m: &RowMajorMatrix<F>| prover::commit_trace(m.clone(), log_b);
        let (main_c, prep_c, aux_c) = (
            commit(trace),
            prep.as_ref().map(commit),
            aux.as_ref().map(commit),
        );
        let ldes = InstanceLdes {
            main: main_c.lde.as_view(),
            prep: prep_c.as_ref().map(|c| c.lde.as_view()),
            aux: aux_c.as_ref().map(|c| c.lde.as_view()),
        };
        let full =
            prover::quotient_values(table, log_n, ldes, &lookup, claimed, composition, log_b)
                .unwrap();

        let geo = ChunkGeometry::new(log_n, log_chunk, log_b);
        let (k, b) = (geo.chunks(), geo.chunk_rows());
        let chunked = |m: &RowMajorMatrix<F>| {
            let chunks: Vec<_> = m
                .values
                .chunks(b * m.width)
                .map(|v| RowMajorMatrix::new(v.to_vec(), m.width))
                .collect();
            lde_chunked(&geo, &chunks)
        };
        let (main_l, prep_l, aux_l) = (
            chunked(trace),
            prep.as_ref().map(chunked),
            aux.as_ref().map(chunked),
        );
        let qgeo = ChunkGeometry::new(log_n, log_chunk, table.log_quotient_factor());
        let step = geo.cosets() / qgeo.cosets();
        let mut qchunks: Vec<Vec<RowMajorMatrix<F>>> = vec![Vec::new(); qgeo.cosets()];
        for u in 0..qgeo.cosets() {
            for c in 0..k {
                // The chunk's rows, then the next chunk's first row.
                let with_next = |l: &Vec<Vec<RowMajorMatrix<F>>>| {
                    let (here, next) = (&l[u * step][c], &l[u * step][(c + 1) % k]);
                    let mut v = here.values.clone();
                    v.extend_from_slice(&next.values[..here.width]);
                    RowMajorMatrix::new(v, here.width)
                };
                let (main, prep, aux) = (
                    with_next(&main_l),
                    prep_l.as_ref().map(with_next),
                    aux_l.as_ref().map(with_next),
                );
                let rows = prover::ChunkRows {
                    main: main.as_view(),
                    prep: prep.as_ref().map(|m| m.as_view()),
                    aux: aux.as_ref().map(|m| m.as_view()),
                };
                let values =
                    prover::quotient_chunk(table, &geo, u, c, rows, &lookup, claimed, composition)
                        .unwrap();
                let flat = values
                    .iter()
                    .flat_map(|v| stark::field::coords(*v))
                    .collect();
                qchunks[u].push(RowMajorMatrix::new(flat, 2));
                for (i, v) in values.iter().enumerate() {
                    assert_eq!(
                        *v,
                        full[qgeo.lde_row(u, c, i)],
                        "{}: chunk ({u}, {c}) row {i}",
                        table.name
                    );
                }
            }
        }
        // The pieces, block by block from the chunks' values, are the in-memory pieces (in the
        // four-step's transposed order), and their LDE in natural coset chunks is the committed
        // quotient LDE, with the same tree.
        let (q_lde, q_pieces) =
            prover::quotient_with_coeffs(table, log_n, ldes, &lookup, claimed, composition, log_b)
                .unwrap();
        let interpolated: Vec<Vec<RowMajorMatrix<F>>> = qchunks
            .iter()
            .map(|chunks| interpolate_chunked(&geo, chunks, None))
            .collect();
        let qw = q_pieces.width;
        let blocks: Vec<RowMajorMatrix<F>> = (0..k)
            .map(|j1| {
                let views: Vec<_> = interpolated.iter().map(|c| c[j1].as_view()).collect();
                prover::quotient_piece_block(table, &geo, j1, &views).unwrap()
            })
            .collect();
        for (j1, block) in blocks.iter().enumerate() {
            for j2 in 0..b {
                let r = j1 + k * j2;
                assert_eq!(
                    &block.values[j2 * qw..(j2 + 1) * qw],
                    &q_pieces.values[r * qw..(r + 1) * qw],
                    "{}: piece coefficient {r}",
                    table.name
                );
            }
        }
        let pieces_lde = evaluate_chunked(&geo, &Extension::lde(&geo), blocks);
        // The OOD values from every committed LDE's chunks on coset 0 (in reverse order) are the
        // in-memory ones.
        let z = stark::field::ext(F::new(5), F::new(7));
        let expected = prover::ood(table, log_n, ldes, q_lde.as_view(), z).unwrap();
        let mut ood = prover::ChunkedOod::new(table, geo, z);
        let coset0 = |c: usize| prover::ChunkRows {
            main: main_l[0][c].as_view(),
            prep: prep_l.as_ref().map(|l| l[0][c].as_view()),
            aux: aux_l.as_ref().map(|l| l[0][c].as_view()),
        };
        for c in (1..k).rev() {
            ood.add_chunk(c, coset0(c), pieces_lde[0][c].as_view())
                .unwrap();
            assert!(
                ood.add_chunk(c, coset0(c), pieces_lde[0][c].as_view())
                    .is_err(),
                "a chunk twice"
            );
        }
        let mut unfinished = prover::ChunkedOod::new(table, geo, z);
        unfinished
            .add_chunk(0, coset0(0), pieces_lde[0][0].as_view())
            .unwrap();
        assert_eq!(unfinished.finish().is_err(), k > 1, "chunks missing");
        let short = prover::MatrixView::new(&pieces_lde[0][0].values[1..], 1);
        assert!(
            ood.add_chunk(0, coset0(0), short).is_err(),
            "pieces of the wrong shape"
        );
        ood.add_chunk(0, coset0(0), pieces_lde[0][0].as_view())
            .unwrap();
        assert_eq!(
            ood.finish().unwrap(),
            expected,
            "{}: OOD values",
            table.name
        );
        // The DEEP codeword chunk by chunk is the in-memory one.
        let beta = stark::field::ext(F::new(11), F::new(13));
        let shapes = [stark::proof::InstanceShape {
            table: 0,
            log_height: log_n as u8,
        }];
        let mut deep = prover::DeepAccumulator::new(&tables, &shapes, z, beta, log_b);
        deep.add(table, 0, ldes, q_lde.as_view(), &expected)
            .unwrap();
        let codeword = &deep.codewords[&(log_n + log_b)];
        for u in 0..geo.cosets() {
            for c in 0..k {
                let rows = prover::ChunkRows {
                    main: main_l[u][c].as_view(),
                    prep: prep_l.as_ref().map(|l| l[u][c].as_view()),
                    aux: aux_l.as_ref().map(|l| l[u][c].as_view()),
                };
                let mut out = vec![EF::ZERO; b];
                let q = pieces_lde[u][c].as_view();
                deep.add_chunk(table, 0, &expected, &geo, u, c, rows, q, &mut out)
                    .unwrap();
                for (i, v) in out.iter().enumerate() {
                    assert_eq!(*v, codeword[geo.lde_row(u, c, i)], "{}: DEEP", table.name);
                }
                let short = &mut out[1..];
                assert!(
                    deep.add_chunk(table, 0, &expected, &geo, u, c, rows, q, short)
                        .is_err()
                );
            }
        }

        let mut level = LevelBuilder::new(geo);
        for (u, chunks) in pieces_lde.iter().enumerate() {
            for (c, m) in chunks.iter().enumerate() {
                for i in 0..b {
                    let r = geo.lde_row(u, c, i);
                    assert_eq!(
                        &m.values[i * qw..(i + 1) * qw],
                        &q_lde.values[r * qw..(r + 1) * qw]
                    );
                }
            }
            let views: Vec<_> = chunks.iter().map(|m| m.as_view()).collect();
            level.add_slab(u, 0, &views);
        }
        assert_eq!(
            level.finish().unwrap().root,
            prover::commit_lde(q_lde).root()
        );
        let short: Vec<_> = interpolated
            .iter()
            .skip(1)
            .map(|c| c[0].as_view())
            .collect();
        assert!(prover::quotient_piece_block(table, &geo, 0, &short).is_err());

        // A chunk of the wrong height is an error, not a panic.
        let short = prover::ChunkRows {
            main: prover::MatrixView::new(&trace.values[..trace.width], trace.width),
            prep: None,
            aux: None,
        };
        assert!(
            prover::quotient_chunk(table, &geo, 0, 0, short, &lookup, claimed, composition)
                .is_err()
        );
        table.quotient_pieces
    }

    let (fib, _) = fib_traces(&[6]);
    let mut broken = fib[0].trace.clone();
    broken.values[8 * 4] += F::ONE; // row 8: the first row of chunk 1 at 8-row chunks
    let mut pieces = Vec::new();
    for log_chunk in [3, 1, 6] {
        pieces.push(check(&Fib, &fib[0].trace, log_chunk));
        pieces.push(check(&Fib, &broken, log_chunk));
    }
    let lookups = lookup_traces(&[6], 9);
    pieces.push(check(&SquareUser, &lookups[0].trace, 2));
    let ranges = range_traces(5);
    pieces.push(check(&RangeTable, &ranges[0].trace, 2));
    // The cross-coset step of the pieces is exercised.
    assert!(pieces.iter().any(|&p| p >= 2), "{pieces:?}");
}
