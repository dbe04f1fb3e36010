//! The prover over natural coset chunks, in memory: every pass of [`crate::prove`] computed a
//! chunk, a slab or a block at a time, as an out-of-core driver computes them (one instance per
//! table, however tall; chunks of `2^log_chunk` rows). The proof is byte-identical to
//! [`crate::prove`]'s on the same instances, whatever the chunk size: this module is the
//! protocol reference an out-of-core driver is checked against, with the whole of each pass's
//! data held in memory instead of in segments.
//!
//! ```text
//! main      trace chunks -> ntt::lde_chunked -> chunk_tree (level k hashed per coset)
//! aux       prover::aux_rows per chunk from 0; carries (the sums of the chunks before) folded
//!           into the LDE through ntt::Carry; claimed sum = the last carry plus the last chunk's
//! quotient  prover::quotient_chunk per chunk of the qf cosets (a chunk's rows and the next
//!           chunk's first) -> ntt::interpolate_chunked per coset -> prover::quotient_piece_block
//!           -> ntt::evaluate_chunked -> chunk_tree
//! ood       prover::ChunkedOod over every committed LDE's chunks on coset 0
//! deep      DeepAccumulator::add_chunk into one chunked codeword per height
//! fri       fri::chunked::prove_chunked (in chunks while a layer has a chunk per leaf value)
//! open      chunk_tree::open per tree (K rows read per query and tree); ChunkedFri::open
//! ```

use std::collections::{BTreeMap, HashMap};

use p3_matrix::dense::RowMajorMatrix;

use crate::air::Air;
use crate::chunk_tree::{self, ChunkTree, LevelBuilder};
use crate::constraints::{Table, compile_all};
use crate::field::{EF, F, PrimeCharacteristicRing, coords};
use crate::fri::chunked::{ChunkedWord, prove_chunked};
use crate::ntt::{
    Carry, ChunkGeometry, Extension, carry_offsets, evaluate_chunked, extend_chunked,
    interpolate_chunked,
};
use crate::params::ProofParams;
use crate::pass_tree::{PassTree, PassTrees};
use crate::proof::{InstanceOpening, InstanceShape, Proof, TreeOpening};
use crate::protocol::{self, PublicInputs};
use crate::prove::{InstanceTrace, instance_shapes};
use crate::prover::{self, ChunkRows, ChunkedOod, DeepAccumulator, MatrixView, ProveError};

/// A committed matrix of one instance: its LDE in natural coset chunks and its tree.
struct Committed {
    geo: ChunkGeometry,
    width: usize,
    /// LDE chunk (u, c) at `u K + c`.
    lde: Vec<RowMajorMatrix<F>>,
    tree: ChunkTree,
}

impl Committed {
    /// Extends `chunks` (K chunks of B rows) by `ext` and commits the result.
    fn new(geo: ChunkGeometry, ext: &Extension, chunks: &[RowMajorMatrix<F>]) -> Committed {
        Committed::from_lde(geo, extend_chunked(&geo, ext, chunks))
    }

    fn from_lde(geo: ChunkGeometry, per_coset: Vec<Vec<RowMajorMatrix<F>>>) -> Committed {
        let mut level = LevelBuilder::new(geo);
        for (u, chunks) in per_coset.iter().enumerate() {
            let views: Vec<_> = chunks.iter().map(|m| m.as_view()).collect();
            level.add_slab(u, 0, &views);
        }
        let width = per_coset[0][0].width;
        Committed {
            geo,
            width,
            lde: per_coset.into_iter().flatten().collect(),
            tree: level.finish().expect("every coset was hashed"),
        }
    }

    fn chunk(&self, u: usize, c: usize) -> MatrixView<'_> {
        self.lde[u * self.geo.chunks() + c].as_view()
    }

    /// Chunk (u, c) with the next chunk's first row appended.
    fn with_next(&self, u: usize, c: usize) -> RowMajorMatrix<F> {
        let next = self.chunk(u, (c + 1) % self.geo.chunks());
        let mut values = self.chunk(u, c).values.to_vec();
        values.extend_from_slice(&next.values[..self.width]);
        RowMajorMatrix::new(values, self.width)
    }

    fn open(&self, rows: &[usize]) -> Result<TreeOpening, ProveError> {
        let w = self.width;
        chunk_tree::open(&self.geo, w, &self.tree, rows, |u, c, i| {
            Ok(self.chunk(u, c).values[i * w..(i + 1) * w].to_vec())
        })
        .map_err(ProveError::Shape)
    }
}

/// A preprocessed trace's chunks and commitment, shared per (table, height).
type Prep = (Vec<RowMajorMatrix<F>>, Committed);

/// The chunks of `m`: K matrices of B rows.
fn chunks_of(geo: &ChunkGeometry, m: &RowMajorMatrix<F>) -> Vec<RowMajorMatrix<F>> {
    m.values
        .chunks(geo.chunk_rows() * m.width)
        .map(|v| RowMajorMatrix::new(v.to_vec(), m.width))
        .collect()
}

/// An instance's aux columns: the commitment and the claimed sum.
struct Aux {
    lde: Committed,
    claimed_sum: EF,
}

/// Pass 2 for one instance, chunk by chunk: each chunk's LogUp columns from a running sum of 0,
/// the carries entering the LDE through step 2 of the four-step.
fn aux_chunks(
    table: &Table,
    geo: ChunkGeometry,
    main: &[RowMajorMatrix<F>],
    prep: Option<&[RowMajorMatrix<F>]>,
    lookup: &[EF; 2],
) -> Result<Aux, ProveError> {
    let width = table.aux_width();
    let columns = prover::running_sum_columns(table);
    let (mut stored, mut carries) = (Vec::new(), Vec::new());
    let mut carry = EF::ZERO;
    for (c, m) in main.iter().enumerate() {
        let p = prep.map(|p| p[c].as_view());
        let rows = prover::aux_rows(table, m.as_view(), p, lookup, EF::ZERO)?;
        carries.extend(coords(carry));
        stored.push(RowMajorMatrix::new(rows.values, width));
        carry += rows.running_sum;
    }
    let lde_ext = Extension {
        carry: Some(Carry {
            columns: columns.to_vec(),
            offsets: carry_offsets(&geo, RowMajorMatrix::new(carries, 2)),
        }),
        ..Extension::lde(&geo)
    };
    Ok(Aux {
        lde: Committed::new(geo, &lde_ext, &stored),
        claimed_sum: carry,
    })
}

/// Pass 3 for one instance: the quotient's pieces, committed (their LDE and tree).
#[allow(clippy::too_many_arguments)]
fn quotient_chunks(
    table: &Table,
    geo: ChunkGeometry,
    main: &Committed,
    prep: Option<&Committed>,
    aux: Option<&Aux>,
    lookup: &[EF; 2],
    composition: EF,
) -> Result<Committed, ProveError> {
    let qf = table.quotient_pieces;
    let step = prover::quotient_coset_step(table, &geo)?;
    let claimed = aux.map_or(EF::ZERO, |a| a.claimed_sum);
    let mut interpolated = Vec::with_capacity(qf);
    for q in 0..qf {
        let mut values = Vec::with_capacity(geo.chunks());
        for c in 0..geo.chunks() {
            let (m, p, a) = (
                main.with_next(q * step, c),
                prep.map(|p| p.with_next(q * step, c)),
                aux.map(|a| a.lde.with_next(q * step, c)),
            );
            let rows = ChunkRows {
                main: m.as_view(),
                prep: p.as_ref().map(|p| p.as_view()),
                aux: a.as_ref().map(|a| a.as_view()),
            };
            let v = prover::quotient_chunk(table, &geo, q, c, rows, lookup, claimed, composition)?;
            let flat = v.into_iter().flat_map(coords).collect();
            values.push(RowMajorMatrix::new(flat, 2));
        }
        interpolated.push(interpolate_chunked(&geo, &values, None));
    }
    let blocks = (0..geo.chunks())
        .map(|j1| {
            let views: Vec<_> = interpolated.iter().map(|c| c[j1].as_view()).collect();
            prover::quotient_piece_block(table, &geo, j1, &views)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let lde = evaluate_chunked(&geo, &Extension::lde(&geo), blocks);
    Ok(Committed::from_lde(geo, lde))
}

/// Proves `traces` (one instance per table, or any instances sorted by table) like
/// [`crate::prove`], computing every pass over chunks of `2^log_chunk` rows: the same proof.
pub fn prove(
    airs: &[&dyn Air],
    traces: Vec<InstanceTrace>,
    public: &PublicInputs,
    params: &ProofParams,
    log_chunk: usize,
) -> Result<Proof, ProveError> {
    params.validate().map_err(ProveError::Params)?;
    crate::pass_tree::check_join(params, log_chunk).map_err(ProveError::Params)?;
    let tables = compile_all(airs)?;
    let log_b = params.log_blowup as usize;
    let shapes = instance_shapes(&tables, &traces, log_b)?;
    let geo = |s: &InstanceShape| ChunkGeometry::new(s.log_height as usize, log_chunk, log_b);
    let mut t = protocol::start(&tables, params, public, &shapes);

    // Pass 1: main (and preprocessed, shared per table and height) commitments.
    let mut prep: HashMap<(usize, u8), Prep> = HashMap::new();
    let mut mains = Vec::with_capacity(traces.len());
    let mut main_chunks = Vec::with_capacity(traces.len());
    for (i, it) in traces.iter().enumerate() {
        let (s, table) = (&shapes[i], &tables[it.table]);
        let g = geo(s);
        if table.prep_width > 0 && !prep.contains_key(&(it.table, s.log_height)) {
            let m = prover::preprocessed_trace(airs[it.table], table, s.log_height)
                .map_err(|msg| ProveError::Instance { index: i, msg })?
                .expect("prep_width > 0");
            let chunks = chunks_of(&g, &m);
            let c = Committed::new(g, &Extension::lde(&g), &chunks);
            prep.insert((it.table, s.log_height), (chunks, c));
        }
        let chunks = chunks_of(&g, &it.trace);
        mains.push(Committed::new(g, &Extension::lde(&g), &chunks));
        main_chunks.push(chunks);
    }
    drop(traces);
    let prep_of = |i: usize| prep.get(&(shapes[i].table as usize, shapes[i].log_height));
    let log_lde = |i: usize| shapes[i].log_height as usize + log_b;
    let join = |members: Vec<(usize, &ChunkTree)>| {
        chunk_tree::join_trees(params.log_join_lde(), members).map_err(ProveError::Shape)
    };
    let prep_pass = join(
        (0..shapes.len())
            .filter_map(|i| prep_of(i).map(|p| (log_lde(i), &p.1.tree)))
            .collect(),
    )?;
    let main_pass = pass_of(join(
        mains
            .iter()
            .enumerate()
            .map(|(i, c)| (log_lde(i), &c.tree))
            .collect(),
    )?);
    protocol::observe_main(
        &mut t,
        prep_pass.as_ref().map(|p| p.root()).as_ref(),
        &main_pass.root(),
    );
    let lookup = protocol::draw_lookup_challenges(&mut t);

    // Pass 2: aux columns, chunk by chunk with carries.
    let mut auxs: Vec<Option<Aux>> = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let table = &tables[s.table as usize];
        let aux = match table.has_aux() {
            false => None,
            true => {
                let p = prep_of(i).map(|p| p.0.as_slice());
                Some(aux_chunks(table, geo(s), &main_chunks[i], p, &lookup)?)
            }
        };
        auxs.push(aux);
    }
    let aux_pass = join(
        auxs.iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (log_lde(i), &a.lde.tree)))
            .collect(),
    )?;
    let claimed_sums: Vec<_> = auxs
        .iter()
        .map(|a| a.as_ref().map(|a| a.claimed_sum))
        .collect();
    protocol::observe_aux(
        &mut t,
        aux_pass.as_ref().map(|p| p.root()).as_ref(),
        &claimed_sums,
    );
    let composition = protocol::draw_composition_challenge(&mut t);

    // Pass 3: quotients.
    let mut quotients = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let table = &tables[s.table as usize];
        let p = prep_of(i).map(|p| &p.1);
        let q = quotient_chunks(
            table,
            geo(s),
            &mains[i],
            p,
            auxs[i].as_ref(),
            &lookup,
            composition,
        )?;
        quotients.push(q);
    }
    let quotient_pass = pass_of(join(
        quotients
            .iter()
            .enumerate()
            .map(|(i, c)| (log_lde(i), &c.tree))
            .collect(),
    )?);
    protocol::observe_quotient(&mut t, &quotient_pass.root());
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: OOD values from the committed columns' chunks and the pieces' blocks.
    let mut oods = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let table = &tables[s.table as usize];
        let mut ood = ChunkedOod::new(table, geo(s), z);
        for c in 0..geo(s).chunks() {
            let rows = ChunkRows {
                main: mains[i].chunk(0, c),
                prep: prep_of(i).map(|p| p.1.chunk(0, c)),
                aux: auxs[i].as_ref().map(|a| a.lde.chunk(0, c)),
            };
            ood.add_chunk(c, rows, quotients[i].chunk(0, c))?;
        }
        let o = ood.finish()?;
        protocol::observe_ood(&mut t, &o);
        oods.push(o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: one chunked DEEP codeword per LDE height.
    let deep = DeepAccumulator::new(&tables, &shapes, z, beta, log_b);
    let mut words: BTreeMap<usize, ChunkedWord> = BTreeMap::new();
    for (i, s) in shapes.iter().enumerate() {
        let (table, g) = (&tables[s.table as usize], geo(s));
        let word = words
            .entry(s.log_height as usize + log_b)
            .or_insert_with(|| ChunkedWord::zero(g));
        for u in 0..g.cosets() {
            for c in 0..g.chunks() {
                let rows = ChunkRows {
                    main: mains[i].chunk(u, c),
                    prep: prep_of(i).map(|p| p.1.chunk(u, c)),
                    aux: auxs[i].as_ref().map(|a| a.lde.chunk(u, c)),
                };
                let q = quotients[i].chunk(u, c);
                let out = &mut word.chunks[u * g.chunks() + c];
                deep.add_chunk(table, i, &oods[i], &g, u, c, rows, q, out)?;
            }
        }
    }

    // Pass 6: FRI, grinding, queries.
    let fri = prove_chunked(words, &mut t, log_b)?;
    let protocol::Queries {
        pow_nonce,
        positions,
        log_max_lde,
    } = protocol::grind_and_sample_queries(&mut t, params, &shapes);

    // Pass 7: openings.
    let mut openings = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let rows = protocol::query_rows(&positions, log_max_lde, s.log_height as usize + log_b);
        openings.push(InstanceOpening {
            main: mains[i].open(&rows)?,
            prep: prep_of(i).map(|p| p.1.open(&rows)).transpose()?,
            aux: auxs[i].as_ref().map(|a| a.lde.open(&rows)).transpose()?,
            quotient: quotients[i].open(&rows)?,
        });
    }
    let passes = PassTrees {
        prep: prep_pass.as_ref(),
        main: &main_pass,
        aux: aux_pass.as_ref(),
        quotient: &quotient_pass,
    };
    let log_ldes: Vec<usize> = (0..shapes.len()).map(log_lde).collect();
    let pass_siblings = passes.open(&mut openings, &log_ldes, &positions, log_max_lde);
    let fri_openings = fri.open(&positions).map_err(ProveError::Shape)?;

    Ok(Proof {
        params: *params,
        statement: public.statement,
        instances: shapes,
        main_root: main_pass.root(),
        aux_root: aux_pass.as_ref().map(|p| p.root()),
        claimed_sums,
        quotient_root: quotient_pass.root(),
        ood: oods,
        fri_roots: fri.roots.clone(),
        fri_final: fri.final_value,
        pow_nonce,
        openings,
        pass_siblings,
        fri_openings,
    })
}

/// The tree of a pass every instance is a member of.
fn pass_of(tree: Option<PassTree>) -> PassTree {
    tree.expect("a proof has an instance")
}
