//! Pass 2: every instance's LogUp columns, block by block. Pass 1 kept no trace, so the
//! program is executed again ([`main::execute`]) and each block's columns are computed as the
//! block comes, with its running sum started from 0, and written as they are. The carry (the
//! sum of the instance's blocks before) enters the LDE through step 2 of the four-step
//! ([`stark::ntt::Carry`]), so the committed columns (stored plus carry) are never written,
//! and the stored ones go once step 1 has read them. The claimed sum is the last carry plus the
//! last block's sum. Preprocessed traces are regenerated in memory (they are the program's
//! size, not the run's).

use std::collections::HashMap;
use std::sync::Arc;

use pipeline::{SegmentRef, SpillDir};
use stark::field::{EF, F, PrimeCharacteristicRing, coords};
use stark::ntt::{Carry, Extension, carry_offsets};
use stark::prover::MatrixView;
use stark::{Air, RowMajorMatrix, Table, prover};
use vm::Program;
use vm::air::{Cut, Statement};

use formats::SegmentMeta;

use super::main::{self, Handout, MainInstance};
use super::{InstanceConfig, lanes};
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::write_matrix;

/// An instance's committed LogUp columns.
pub struct AuxInstance {
    pub lde: InstanceLde,
    pub claimed_sum: EF,
}

/// What pass 2 needs from pass 1 and the transcript.
pub struct AuxInputs<'a> {
    pub program: Arc<Program>,
    pub input: Arc<[u8]>,
    pub airs: &'a [&'a dyn Air],
    pub tables: &'a [Table],
    pub mains: &'a [MainInstance],
    /// Pass 1's statement: the second execution must give the same.
    pub statement: &'a Statement,
    pub lookup: [EF; 2],
}

/// An instance's stored (uncarried) LogUp blocks so far.
#[derive(Default)]
struct Stored {
    blocks: Vec<SegmentRef>,
    carries: Vec<EF>,
    sum: EF,
}

/// A cut the second execution made must be one pass 1 made: the instance it ends has `blocks`
/// blocks and another follows it.
fn check_cut(
    mains: &[MainInstance],
    at: &HashMap<(usize, u64), usize>,
    cut: Cut,
) -> Result<(), Error> {
    let ends = at
        .get(&(cut.table, cut.instance))
        .is_some_and(|&i| mains[i].lde.geo.chunks() as u64 == cut.blocks);
    if ends && at.contains_key(&(cut.table, cut.instance + 1)) {
        return Ok(());
    }
    Err(Error::Diverged {
        what: format!(
            "a cut of instance {} of table {} after {} blocks",
            cut.instance, cut.table, cut.blocks
        ),
        expected: "the instances of pass 1".into(),
    })
}

/// Computes and commits the LogUp columns of every instance of `inputs.mains` (in their order;
/// `None` for a table without any).
pub fn commit_aux(
    spill: &SpillDir,
    config: &InstanceConfig,
    inputs: &AuxInputs<'_>,
) -> Result<Vec<Option<AuxInstance>>, Error> {
    let AuxInputs {
        airs,
        tables,
        mains,
        lookup,
        ..
    } = inputs;
    let at: HashMap<(usize, u64), usize> = mains
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.table, m.instance), i))
        .collect();
    let mut preps: HashMap<(usize, usize), RowMajorMatrix<F>> = HashMap::new();
    for m in mains.iter().filter(|m| tables[m.table].has_aux()) {
        let (table, log_height) = (&tables[m.table], m.lde.geo.log_height);
        if let std::collections::hash_map::Entry::Vacant(e) = preps.entry((m.table, log_height)) {
            let trace = prover::preprocessed_trace(airs[m.table], table, log_height as u8)
                .map_err(Error::Config)?;
            if let Some(trace) = trace {
                e.insert(trace);
            }
        }
    }
    let mut stored: Vec<Stored> = mains.iter().map(|_| Stored::default()).collect();
    let stage = config.progress.stage("aux", "execute", None);
    let block_rows = config.block_rows;
    let statement = main::execute(
        Arc::clone(&inputs.program),
        Arc::clone(&inputs.input),
        config,
        &stage,
        |handout| {
            let mut b = match handout {
                Handout::Block(b) => b,
                Handout::Cut(cut) => return check_cut(mains, &at, cut),
            };
            let table = &tables[b.table];
            if !table.has_aux() {
                return Ok(());
            }
            let mut i = *at
                .get(&(b.table, b.instance))
                .ok_or_else(|| Error::Diverged {
                    what: format!("instance {} of {}", b.instance, table.name),
                    expected: "no such instance".into(),
                })?;
            // Past the end of its instance, a block is one the cut at the end of the run moves
            // into the next (pass 1 saw that cut, and its instances say where it falls).
            let blocks = mains[i].lde.geo.chunks() as u64;
            if b.index >= blocks
                && let Some(&next) = at.get(&(b.table, b.instance + 1))
            {
                (b.instance, b.index, i) = (b.instance + 1, b.index - blocks, next);
            }
            let (m, s) = (&mains[i], &mut stored[i]);
            if b.index != s.blocks.len() as u64 {
                return Err(Error::Diverged {
                    what: format!("{} block {}", m.label, b.index),
                    expected: format!("block {}", s.blocks.len()),
                });
            }
            let rows = b.trace.values.len() / b.trace.width.max(1);
            let prep = preps
                .get(&(m.table, m.lde.geo.log_height))
                .map(|p| {
                    let (w, from) = (p.width, b.index as usize * block_rows);
                    p.values
                        .get(from * w..(from + rows) * w)
                        .map(|values| MatrixView::new(values, w))
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "{}: block {} runs past the preprocessed trace",
                                m.label, b.index
                            ))
                        })
                })
                .transpose()?;
            let aux = prover::aux_rows(table, b.trace.as_view(), prep, lookup, EF::ZERO)?;
            let meta = SegmentMeta::new(&*m.label, b.index, "aux", "aux");
            let mut values = RowMajorMatrix::new(aux.values, table.aux_width());
            s.blocks.push(write_matrix(spill, &meta, &mut values)?);
            s.carries.push(s.sum);
            s.sum += aux.running_sum;
            Ok(())
        },
    )?;
    stage.finish();
    if statement != *inputs.statement {
        return Err(Error::Diverged {
            what: format!("{} cycles", statement.cycles),
            expected: format!("the statement of {} cycles", inputs.statement.cycles),
        });
    }

    let blocks = stored.iter().map(|s| s.blocks.len() as u64).sum();
    let commit = config.progress.stage("aux", "commit", Some(blocks));
    let out = lanes::map(mains.iter().zip(stored).collect(), |(m, s)| {
        let table = &tables[m.table];
        if !table.has_aux() {
            return Ok(None);
        }
        let geo = m.lde.geo;
        if s.blocks.len() != geo.chunks() {
            return Err(Error::Diverged {
                what: format!("{} blocks of {}", s.blocks.len(), m.label),
                expected: format!("{}", geo.chunks()),
            });
        }
        let flat: Vec<_> = s.carries.iter().flat_map(|c| coords(*c)).collect();
        let ext = Extension {
            carry: Some(Carry {
                columns: prover::running_sum_columns(table).to_vec(),
                offsets: carry_offsets(&geo, RowMajorMatrix::new(flat, 2)),
            }),
            ..Extension::lde(&geo)
        };
        let name = LdeName {
            table: &m.label,
            pass: "aux",
            kind: "aux-lde",
        };
        let count = s.blocks.len() as u64;
        let lde = lde::extend(spill, name, geo, &ext, s.blocks, table.aux_width())?;
        commit.advance(count, 1u64 << geo.log_height);
        Ok(Some(AuxInstance {
            lde,
            claimed_sum: s.sum,
        }))
    })?;
    commit.finish();
    Ok(out)
}
