//! The single-instance prover on segments (`docs/one-instance.md`): every table is one instance
//! of its full padded height (or a few, at most `instance_rows` rows each), and chunks are row
//! blocks of it, each pass reading and writing them as segments. The proof is the one
//! [`stark::prove`] makes of the same instances, byte for byte, whatever `block_rows` is.
//!
//! The driver reads as the transcript schedule; each pass is a module:
//!
//! | pass | module | writes |
//! |------|--------|--------|
//! | 1 main | [`main`] | main and preprocessed LDE chunks (the trace blocks only until step 1 of their LDE) |
//! | 2 aux | [`aux`] | aux LDE chunks, from a second execution |
//! | 3 quotient | [`quotient`] | the pieces' LDE chunks |
//! | 4 ood | [`ood`] | nothing (values to the transcript) |
//! | 5 deep | [`deep`] | the DEEP codeword of each height, in chunks |
//! | 6 fri | [`fri`] | the committed layers folded in chunks while they have a chunk per leaf value |
//! | 7 open | [`crate::lde::open`] | nothing: K rows read per query and tree |
//! | 8 check | [`crate::passes::check`] | nothing: the verifier run on the proof |
//!
//! Passes 1 to 3 commit two instances at a time ([`lanes`]).
//!
//! Passes 1 to 5 save a checkpoint at their barrier ([`checkpoint`]), so a killed run resumes
//! after the last of them (`run --resume DIR`) and makes the same proof bytes.

pub mod aux;
pub mod checkpoint;
pub mod deep;
pub mod fri;
pub mod lanes;
pub mod main;
pub mod ood;
pub mod quotient;

use std::collections::HashMap;
use std::sync::Arc;

use pipeline::{Metrics, Progress, SpillDir};
use stark::chunk_tree::{self, ChunkTree};
use stark::pass_tree::{PassTree, PassTrees};
use stark::proof::{InstanceOpening, InstanceShape};
use stark::prover::{DeepAccumulator, ProveError};
use stark::transcript::Transcript;
use stark::{Proof, ProofParams, protocol};
use vm::Program;
use vm::air::{Rv32Air, Statement};

use crate::clock::PassClock;
use crate::error::Error;
use crate::lde;
use crate::widths::{TableWidth, table_widths};
use aux::AuxInstance;
use checkpoint::{
    AuxResults, DeepResults, MainResults, OodResults, QuotientResults, Results, Saved,
};
use main::{MainInstance, Preprocessed};

/// The matrices an instance commits before its quotient: what passes 3 to 7 read.
#[derive(Clone, Copy)]
pub struct Committed<'a> {
    pub main: &'a MainInstance,
    pub prep: Option<&'a Preprocessed>,
    pub aux: Option<&'a AuxInstance>,
}

/// What a single-instance run is asked to do.
#[derive(Clone, Debug)]
pub struct InstanceConfig {
    /// Rows of a block (a power of two): what one chunk of every pass holds.
    pub block_rows: usize,
    /// The most rows of one instance (a power of two); a taller table is split.
    pub instance_rows: usize,
    pub max_cycles: u64,
    pub params: ProofParams,
    pub progress: Progress,
}

/// The fewest rows a block of an instance of up to `instance_rows` rows may have: the square
/// root, rounded up to a power of two, so that no instance has more blocks than a block has
/// rows. The four-step's cross passes read a slab of rows from every block of an instance; with
/// more blocks than rows a slab is one row of each block's segment, and a run takes 10 to 50
/// times as long (2^5-row blocks of 2^16-row tables: 97 s where 2^12-row blocks take 2.4 s).
pub fn min_block_rows(instance_rows: usize) -> usize {
    1 << instance_rows.trailing_zeros().div_ceil(2)
}

/// A finished (and verified) proof and the statement it proves.
pub struct InstanceProof {
    pub proof: Proof,
    pub statement: Statement,
    pub widths: Vec<TableWidth>,
}

/// The passes and their expected shares of a run's time (fib_iterative), for the ETA.
const PASS_WEIGHTS: [(&str, f64); 8] = [
    ("main", 0.3),
    ("aux", 0.2),
    ("quotient", 0.3),
    ("ood", 0.05),
    ("deep", 0.1),
    ("fri", 0.03),
    ("open", 0.01),
    ("check", 0.01),
];

/// A pass barrier: the pass is timed and shown, and recorded in the spill dir's manifest.
fn pass<T>(
    config: &InstanceConfig,
    metrics: &Metrics,
    spill: &SpillDir,
    name: &'static str,
    body: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let clock = PassClock::begin(&config.progress, metrics, name);
    spill.begin_pass(name)?;
    let out = body()?;
    spill.end_pass(name)?;
    clock.finish();
    Ok(out)
}

/// A pass barrier with a checkpoint: a resumed run restores the pass's results and the
/// transcript after it; otherwise `body` computes the results, absorbing them into `t`, and
/// they are saved before the pass is marked finished.
fn checkpointed<T: Results>(
    config: &InstanceConfig,
    metrics: &Metrics,
    spill: &SpillDir,
    saved: &Saved,
    name: &'static str,
    t: &mut Transcript,
    body: impl FnOnce(&mut Transcript) -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some((results, after)) = saved.restore(spill, name)? {
        *t = after;
        return Ok(results);
    }
    let clock = PassClock::begin(&config.progress, metrics, name);
    spill.begin_pass(name)?;
    let out = body(t)?;
    checkpoint::save(spill, name, t, &out)?;
    clock.finish();
    Ok(out)
}

/// Proves `program` on `input` with every pass on segments of `spill`, timing each pass in
/// `metrics`, and verifies the proof before returning it. Resumable: every pass up to deep
/// saves a checkpoint ([`checkpoint`]); given the spill dir of a killed run of the same
/// program, input and settings ([`pipeline::SpillDir::resume`]), it goes on after the last.
pub fn prove(
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: &InstanceConfig,
    spill: &SpillDir,
    metrics: &Metrics,
) -> Result<InstanceProof, Error> {
    let params = config.params;
    params.validate().map_err(Error::Config)?;
    for (what, rows) in [
        ("block rows", config.block_rows),
        ("instance rows", config.instance_rows),
    ] {
        if !rows.is_power_of_two() {
            return Err(Error::Config(format!(
                "{what} {rows} is not a power of two"
            )));
        }
    }
    stark::pass_tree::check_join(&params, config.block_rows.trailing_zeros() as usize)
        .map_err(Error::Config)?;
    let air = Rv32Air::new(Arc::clone(&program));
    let airs = air.tables();
    let tables = stark::compile_all(&airs).map_err(ProveError::from)?;
    let log_b = params.log_blowup as usize;
    let progress = &config.progress;
    let key = checkpoint::run_key(
        &program,
        &input,
        &params,
        config.block_rows,
        config.instance_rows,
        config.max_cycles,
    );
    let saved = Saved::open(spill, key)?;
    saved.verify_segments(spill)?;
    if let Some(last) = saved.passes().last() {
        let part = match saved.partial() {
            Some((pass, n)) => format!(" and {n} instances of pass {pass}"),
            None => String::new(),
        };
        progress.println(&format!(
            "resuming {} after pass {last}{part}: its segments match their checksums",
            spill.path().display()
        ));
    }
    let remaining: Vec<(&str, f64)> = PASS_WEIGHTS
        .into_iter()
        .filter(|(p, _)| !saved.passes().any(|s| s == *p))
        .collect();
    progress.plan(&remaining);

    // Pass 1: main (and preprocessed, one per table and height) commitments. The transcript
    // starts here, bound to the statement and the instance shapes.
    let mut t = Transcript::from_state([0; 32]);
    let main = checkpointed(config, metrics, spill, &saved, "main", &mut t, |t| {
        let (mains, statement) = main::commit_main(
            Arc::clone(&program),
            Arc::clone(&input),
            config,
            log_b,
            spill,
        )?;
        let mut preps: HashMap<(usize, usize), Preprocessed> = HashMap::new();
        for m in &mains {
            let (table, geo) = (&tables[m.table], m.lde.geo);
            let key = (m.table, geo.log_height);
            if table.prep_width > 0 && !preps.contains_key(&key) {
                let p = main::commit_preprocessed(spill, airs[m.table], table, geo)?;
                preps.insert(key, p);
            }
        }
        let results = MainResults {
            statement,
            mains,
            preps,
        };
        *t = protocol::start(
            &tables,
            &params,
            &results.statement.public_inputs(),
            &shapes_of(&results.mains),
        );
        let (prep_pass, main_pass) = main_passes(&params, &results)?;
        protocol::observe_main(t, prep_pass.map(|p| p.root()).as_ref(), &main_pass.root());
        Ok(results)
    })?;
    let (prep_pass, main_pass) = main_passes(&params, &main)?;
    let (mains, statement) = (&main.mains, &main.statement);
    let shapes = shapes_of(mains);
    let public = statement.public_inputs();
    let lookup = protocol::draw_lookup_challenges(&mut t);

    // Pass 2: LogUp columns, block by block with carries, from a second execution.
    let AuxResults(auxs) = checkpointed(config, metrics, spill, &saved, "aux", &mut t, |t| {
        let inputs = aux::AuxInputs {
            program: Arc::clone(&program),
            input,
            airs: &airs,
            tables: &tables,
            mains,
            statement,
            lookup,
        };
        let auxs = aux::commit_aux(spill, config, &inputs)?;
        let aux_pass = aux_pass(&params, mains, &auxs)?;
        protocol::observe_aux(t, aux_pass.map(|p| p.root()).as_ref(), &claimed_sums(&auxs));
        Ok(AuxResults(auxs))
    })?;
    let aux_pass = aux_pass(&params, mains, &auxs)?;
    let composition = protocol::draw_composition_challenge(&mut t);
    let committed = |i: usize| Committed {
        main: &mains[i],
        prep: main.prep_of(&mains[i]),
        aux: auxs[i].as_ref(),
    };

    // Pass 3: quotients, with a partial checkpoint after each instance but the last.
    let QuotientResults(quotients) =
        checkpointed(config, metrics, spill, &saved, "quotient", &mut t, |t| {
            let chunks_of =
                |m: &MainInstance| (tables[m.table].quotient_pieces * m.lde.geo.chunks()) as u64;
            let stage = progress.stage(
                "quotient",
                "chunks",
                Some(mains.iter().map(chunks_of).sum()),
            );
            let mut done = match saved.restore_partial(spill, "quotient")? {
                Some((done, after)) => {
                    let QuotientResults(saved) = &done;
                    let fits = saved.len() < mains.len()
                        && saved.iter().zip(mains).all(|(q, m)| q.lde.geo == m.lde.geo);
                    if !fits {
                        return Err(Error::Resume(format!(
                            "the quotient's partial checkpoint holds {} instances that are not \
                             the first of this run's {}",
                            saved.len(),
                            mains.len()
                        )));
                    }
                    *t = after;
                    done
                }
                None => QuotientResults(Vec::with_capacity(mains.len())),
            };
            for m in &mains[..done.0.len()] {
                stage.advance(chunks_of(m), 0);
            }
            // Two instances at a time ([`lanes`]), absorbed and checkpointed in order.
            lanes::in_order(
                (done.0.len()..mains.len()).collect(),
                |i| {
                    let (table, geo) = (&tables[mains[i].table], mains[i].lde.geo);
                    let c = committed(i);
                    quotient::commit_quotient(spill, table, geo, c, &lookup, composition, &stage)
                },
                |(q, interpolated)| {
                    done.0.push(q);
                    if done.0.len() < mains.len() {
                        checkpoint::save_partial(spill, "quotient", done.0.len(), t, &done)?;
                    }
                    interpolated.remove(spill)
                },
            )?;
            stage.finish();
            let quotient_pass = quotient_pass(&params, mains, &done.0)?;
            protocol::observe_quotient(t, &quotient_pass.root());
            Ok(done)
        })?;
    let quotient_pass = quotient_pass(&params, mains, &quotients)?;
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: OOD values.
    let OodResults(oods) = checkpointed(config, metrics, spill, &saved, "ood", &mut t, |t| {
        let mut oods = Vec::with_capacity(mains.len());
        for (i, m) in mains.iter().enumerate() {
            let table = &tables[m.table];
            let o = ood::ood_values(spill, table, z, committed(i), &quotients[i])?;
            protocol::observe_ood(t, &o);
            oods.push(o);
        }
        Ok(OodResults(oods))
    })?;
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: one DEEP codeword per LDE height (absorbs nothing: FRI commits to it).
    let DeepResults(words) = checkpointed(config, metrics, spill, &saved, "deep", &mut t, |_| {
        let deep_acc = DeepAccumulator::new(&tables, &shapes, z, beta, log_b);
        let inputs: Vec<_> = mains
            .iter()
            .enumerate()
            .map(|(i, m)| deep::DeepInput {
                index: i,
                table: &tables[m.table],
                ood: &oods[i],
                committed: committed(i),
                quotient: &quotients[i],
            })
            .collect();
        Ok(DeepResults(deep::deep_words(spill, &deep_acc, &inputs)?))
    })?;

    // Pass 6: FRI, grinding, queries.
    let (fri, queries) = pass(config, metrics, spill, "fri", || {
        let fri = fri::prove(spill, words, &mut t, log_b)?;
        Ok((
            fri,
            protocol::grind_and_sample_queries(&mut t, &params, &shapes),
        ))
    })?;
    let protocol::Queries {
        pow_nonce,
        positions,
        log_max_lde,
    } = queries;

    // Pass 7: openings, K rows read per query and tree.
    let (openings, pass_siblings, fri_openings) = pass(config, metrics, spill, "open", || {
        let mut openings = Vec::with_capacity(mains.len());
        for (i, m) in mains.iter().enumerate() {
            let log_lde = m.lde.geo.log_height + log_b;
            let rows = protocol::query_rows(&positions, log_max_lde, log_lde);
            let c = committed(i);
            let open = |lde: &lde::InstanceLde| lde::open(spill, lde, &rows);
            openings.push(InstanceOpening {
                main: open(&m.lde)?,
                prep: c.prep.map(|p| open(&p.lde)).transpose()?,
                aux: c.aux.map(|a| open(&a.lde)).transpose()?,
                quotient: open(&quotients[i].lde)?,
            });
        }
        let passes = PassTrees {
            prep: prep_pass.as_ref(),
            main: &main_pass,
            aux: aux_pass.as_ref(),
            quotient: &quotient_pass,
        };
        let log_ldes: Vec<usize> = mains.iter().map(|m| log_lde(&params, m)).collect();
        let pass_siblings = passes.open(&mut openings, &log_ldes, &positions, log_max_lde);
        let fri_openings = fri.open(spill, &positions)?;
        Ok((openings, pass_siblings, fri_openings))
    })?;

    let proof = Proof {
        params,
        statement: public.statement,
        instances: shapes,
        main_root: main_pass.root(),
        aux_root: aux_pass.as_ref().map(|p| p.root()),
        claimed_sums: claimed_sums(&auxs),
        quotient_root: quotient_pass.root(),
        ood: oods,
        fri_roots: fri.roots.clone(),
        fri_final: fri.final_value,
        pow_nonce,
        openings,
        pass_siblings,
        fri_openings,
    };

    // Pass 8: the verifier on the finished proof.
    pass(config, metrics, spill, "check", || {
        crate::passes::check::pass_check(&program, statement, &proof)
    })?;
    let widths = table_widths(
        &air,
        mains
            .iter()
            .map(|m| (m.table, 1u64 << m.lde.geo.log_height)),
    );
    Ok(InstanceProof {
        proof,
        statement: main.statement,
        widths,
    })
}

fn shapes_of(mains: &[MainInstance]) -> Vec<InstanceShape> {
    mains
        .iter()
        .map(|m| InstanceShape {
            table: m.table as u32,
            log_height: m.lde.geo.log_height as u8,
        })
        .collect()
}

impl MainResults {
    /// The preprocessed commitment an instance shares with its table's others of its height.
    fn prep_of(&self, m: &MainInstance) -> Option<&Preprocessed> {
        self.preps.get(&(m.table, m.lde.geo.log_height))
    }
}

/// The pass tree over instance trees (each `(log_lde, tree)`, in instance order).
fn join<'a>(
    params: &ProofParams,
    members: impl IntoIterator<Item = (usize, &'a ChunkTree)>,
) -> Result<Option<PassTree>, Error> {
    chunk_tree::join_trees(params.log_join_lde(), members).map_err(Error::Config)
}

fn log_lde(params: &ProofParams, m: &MainInstance) -> usize {
    m.lde.geo.log_height + params.log_blowup as usize
}

/// The preprocessed pass tree (an instance of a table with preprocessed columns is a member
/// with its table's matrix) and the main pass tree.
fn main_passes(
    params: &ProofParams,
    results: &MainResults,
) -> Result<(Option<PassTree>, PassTree), Error> {
    let ms = &results.mains;
    let prep = join(
        params,
        ms.iter().filter_map(|m| {
            results
                .prep_of(m)
                .map(|p| (log_lde(params, m), &p.lde.tree))
        }),
    )?;
    let main = join(params, ms.iter().map(|m| (log_lde(params, m), &m.lde.tree)))?;
    Ok((
        prep,
        main.ok_or_else(|| Error::Config("no instances".into()))?,
    ))
}

fn aux_pass(
    params: &ProofParams,
    mains: &[MainInstance],
    auxs: &[Option<AuxInstance>],
) -> Result<Option<PassTree>, Error> {
    join(
        params,
        mains
            .iter()
            .zip(auxs)
            .filter_map(|(m, a)| a.as_ref().map(|a| (log_lde(params, m), &a.lde.tree))),
    )
}

fn quotient_pass(
    params: &ProofParams,
    mains: &[MainInstance],
    quotients: &[quotient::QuotientInstance],
) -> Result<PassTree, Error> {
    join(
        params,
        mains
            .iter()
            .zip(quotients)
            .map(|(m, q)| (log_lde(params, m), &q.lde.tree)),
    )?
    .ok_or_else(|| Error::Config("no instances".into()))
}

fn claimed_sums(auxs: &[Option<AuxInstance>]) -> Vec<Option<stark::EF>> {
    auxs.iter()
        .map(|a| a.as_ref().map(|a| a.claimed_sum))
        .collect()
}
