//! Pass 6: FRI over DEEP codewords kept as segments. While the next layer to commit has at
//! least as many chunks as values in a leaf (`2^a`), its tree is hashed slab by slab from its
//! chunks (leaf row `i` is row `i` of the chunks [`chunked::leaf_chunks`] names) and its `a`
//! folds are written chunk by chunk as segments, each read back for the next; a smaller
//! codeword joins when the fold reaches its size. The first layer with fewer chunks (at most
//! four, of `L B` values each) and what is left to join go to the in-memory loop
//! ([`stark::fri::chunked::finish_in_memory`]). Memory: one slab of leaf rows over every chunk,
//! or two chunks for a fold, whatever the codeword's length, then that last layer.

use std::collections::BTreeMap;

use formats::SegmentMeta;
use pipeline::{SegmentRef, SpillDir};
use stark::RowMajorMatrix;
use stark::chunk_tree::{self, ChunkTree, LevelBuilder};
use stark::field::{EF, F, coords, ext};
use stark::fri::FriProver;
use stark::fri::chunked::{self, ChunkedWord};
use stark::merkle::Digest;
use stark::ntt::ChunkGeometry;
use stark::proof::FriLayerOpening;
use stark::protocol::{self, FriLayer};
use stark::prover::{MatrixView, ProveError};
use stark::transcript::Transcript;

use crate::error::Error;
use crate::store::{Matrix, write_matrix};

/// A codeword (DEEP or a FRI layer) in natural coset chunks, each a segment of `B` extension
/// elements (2 base columns).
pub struct DiskWord {
    pub geo: ChunkGeometry,
    /// Chunk `(u, c)` at `u K + c`.
    pub chunks: Vec<SegmentRef>,
}

/// A layer committed from disk: its word's segments and its tree.
struct DiskLayer {
    layer: FriLayer,
    word: DiskWord,
    tree: ChunkTree,
}

/// The FRI prover's layers: the chunked ones on disk with their trees, then the in-memory rest.
pub struct DiskFri {
    layers: Vec<DiskLayer>,
    memory: FriProver,
    pub roots: Vec<Digest>,
    pub final_value: EF,
}

/// Writes chunk `at` of a word as a segment named `<name>-<at>.layer` in `pass` (`deep` for
/// the DEEP codewords, `fri` for the folded layers).
pub fn write_chunk(
    spill: &SpillDir,
    pass: &str,
    name: &str,
    at: usize,
    values: &[EF],
) -> Result<SegmentRef, Error> {
    let flat = values.iter().flat_map(|v| coords(*v)).collect();
    let meta = SegmentMeta::new(name, at as u64, pass, "layer");
    write_matrix(spill, &meta, &mut RowMajorMatrix::new(flat, 2))
}

fn open_chunk(spill: &SpillDir, w: &DiskWord, at: usize) -> Result<Matrix, Error> {
    Matrix::open(spill, &w.chunks[at], 2, w.geo.chunk_rows())
}

/// Rows `from..from + n` of a mapped chunk, as extension elements.
fn rows(m: &Matrix, from: usize, n: usize) -> Vec<EF> {
    m.view().values[2 * from..2 * (from + n)]
        .chunks_exact(2)
        .map(|p| ext(p[0], p[1]))
        .collect()
}

fn read_word(spill: &SpillDir, w: &DiskWord) -> Result<ChunkedWord, Error> {
    let chunks = (0..w.chunks.len())
        .map(|at| Ok(rows(&open_chunk(spill, w, at)?, 0, w.geo.chunk_rows())))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(ChunkedWord { geo: w.geo, chunks })
}

/// The tree of a chunked layer over its `2^log_arity`-value leaf rows, hashed slab by slab.
fn layer_tree(spill: &SpillDir, w: &DiskWord, log_arity: usize) -> Result<ChunkTree, Error> {
    let leaves = chunked::shrink(&w.geo, log_arity);
    let (k, b, slab) = (w.geo.chunks(), w.geo.chunk_rows(), leaves.slab_rows());
    let mut level = LevelBuilder::new(leaves);
    for u in 0..leaves.cosets() {
        let mapped = (0..k)
            .map(|c| open_chunk(spill, w, u * k + c))
            .collect::<Result<Vec<_>, _>>()?;
        for at in (0..b).step_by(slab) {
            let leaf_rows: Vec<Vec<F>> = (0..leaves.chunks())
                .map(|c| {
                    let chunks: Vec<Vec<EF>> = chunked::leaf_chunks(&w.geo, log_arity, 0, c)
                        .map(|at_c| rows(&mapped[at_c], at, slab))
                        .collect();
                    let views: Vec<&[EF]> = chunks.iter().map(|c| &c[..]).collect();
                    chunked::leaf_rows(&views)
                })
                .collect();
            let width = 2 << log_arity;
            let views: Vec<_> = leaf_rows
                .iter()
                .map(|p| MatrixView::new(p, width))
                .collect();
            level.add_slab(u, at, &views);
        }
    }
    level
        .finish()
        .map_err(|msg| Error::Config(format!("FRI layer tree: {msg}")))
}

/// FRI's commit phase over `words` (keyed by log2 size), as [`stark::fri::prove`] makes it.
pub fn prove(
    spill: &SpillDir,
    mut words: BTreeMap<usize, DiskWord>,
    t: &mut Transcript,
    log_blowup: usize,
) -> Result<DiskFri, Error> {
    let shape = |msg: &str| Error::from(ProveError::Shape(format!("FRI: {msg}")));
    if words.iter().any(|(&l, w)| {
        w.geo.log_blowup != log_blowup
            || w.geo.log_height + w.geo.log_blowup != l
            || l <= log_blowup
            || w.chunks.len() != w.geo.cosets() * w.geo.chunks()
    }) {
        return Err(shape("DEEP codeword shapes do not match their keys"));
    }
    let schedule = protocol::fri_layers(words.keys().copied(), log_blowup);
    let Some((_, mut cur)) = words.pop_last() else {
        return Err(shape("no DEEP codeword"));
    };
    let (mut layers, mut roots, mut level) = (Vec::new(), Vec::new(), 0);
    let mut todo = &schedule[..];
    while let Some((&fl, rest)) = todo.split_first() {
        if cur.geo.chunks() < 1 << fl.log_arity {
            break;
        }
        let tree = layer_tree(spill, &cur, fl.log_arity)?;
        let betas = protocol::observe_fri_layer(t, &tree.root, fl);
        roots.push(tree.root);
        let end = chunked::shrink(&cur.geo, fl.log_arity);
        let joining = match words.last_key_value() {
            Some((&l, _)) if l == end.log_height + end.log_blowup => {
                let d = words.pop_last().expect("just looked").1;
                if d.geo != end {
                    return Err(shape("a DEEP codeword joins with another chunk size"));
                }
                Some(d)
            }
            _ => None,
        };
        // The layer's folds, each written as segments and read back by the next; the last
        // one's word is the next layer (with the joining codeword added).
        let mut word: Option<DiskWord> = None;
        for (k, beta) in betas.iter().enumerate() {
            let from = word.as_ref().unwrap_or(&cur);
            let last = k + 1 == betas.len();
            let next = fold_word(
                spill,
                from,
                level + k,
                *beta,
                joining.as_ref().filter(|_| last),
            )?;
            if let Some(done) = word.replace(next) {
                remove_word(spill, done)?;
            }
        }
        layers.push(DiskLayer {
            layer: fl,
            word: cur,
            tree,
        });
        cur = word.expect("a layer folds at least once");
        level += fl.log_arity;
        todo = rest;
    }
    let last = read_word(spill, &cur)?;
    let rest = words
        .values()
        .map(|w| Ok((w.geo.log_height + w.geo.log_blowup, read_word(spill, w)?)))
        .collect::<Result<BTreeMap<_, _>, Error>>()?;
    let memory = chunked::finish_in_memory(&last, rest, level, todo, t);
    roots.extend(&memory.roots);
    Ok(DiskFri {
        layers,
        final_value: memory.final_value,
        memory,
        roots,
    })
}

/// One two-to-one fold by `beta` of `cur` (fold level `level`), written chunk by chunk as the
/// segments `layer<level + 1>-<at>` of pass `fri`, with `joining`'s chunks added (weight
/// `beta^2`) when a smaller DEEP codeword joins there.
fn fold_word(
    spill: &SpillDir,
    cur: &DiskWord,
    level: usize,
    beta: EF,
    joining: Option<&DiskWord>,
) -> Result<DiskWord, Error> {
    let half = chunked::half(&cur.geo);
    let (k, b) = (cur.geo.chunks(), cur.geo.chunk_rows());
    let name = format!("layer{}", level + 1);
    let mut next = Vec::with_capacity(half.cosets() * half.chunks());
    for at in 0..half.cosets() * half.chunks() {
        let (u, c) = (at / half.chunks(), at % half.chunks());
        let (lo, hi) = (
            open_chunk(spill, cur, u * k + c)?,
            open_chunk(spill, cur, u * k + c + k / 2)?,
        );
        let lo_rows = rows(&lo, 0, b);
        let mut v = chunked::fold_chunk(&cur.geo, level, beta, u, c, &lo_rows, &rows(&hi, 0, b));
        if let Some(d) = joining {
            chunked::join_chunk(&mut v, &rows(&open_chunk(spill, d, at)?, 0, b), beta);
        }
        next.push(write_chunk(spill, "fri", &name, at, &v)?);
    }
    Ok(DiskWord {
        geo: half,
        chunks: next,
    })
}

/// Removes a folded word no layer commits (it was read by the next fold).
fn remove_word(spill: &SpillDir, w: DiskWord) -> Result<(), Error> {
    w.chunks.iter().try_for_each(|s| spill.remove_segment(s))?;
    Ok(())
}

impl DiskFri {
    /// Every layer's leaves at the query positions, batch-opened: the chunked layers' leaves
    /// read from their chunks and checked against their trees.
    pub fn open(
        &self,
        spill: &SpillDir,
        positions: &[usize],
    ) -> Result<Vec<FriLayerOpening>, Error> {
        let mut out = Vec::with_capacity(self.roots.len());
        for (l, DiskLayer { layer, word, tree }) in self.layers.iter().enumerate() {
            let idx = protocol::fri_group_indices(positions, *layer);
            let a = layer.log_arity;
            let leaves = chunked::shrink(&word.geo, a);
            let mut mapped: Vec<Option<Matrix>> = (0..word.chunks.len()).map(|_| None).collect();
            let mut failed = None;
            let mut row = |at: usize, i: usize| -> Result<Vec<EF>, String> {
                if mapped[at].is_none() {
                    match open_chunk(spill, word, at) {
                        Ok(m) => mapped[at] = Some(m),
                        Err(e) => {
                            let msg = e.to_string();
                            failed = Some(e);
                            return Err(msg);
                        }
                    }
                }
                Ok(rows(mapped[at].as_ref().expect("just mapped"), i, 1))
            };
            let opening = chunk_tree::open(&leaves, 2 << a, tree, &idx, |u, c, i| {
                let values = chunked::leaf_chunks(&word.geo, a, u, c)
                    .map(|at| row(at, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let views: Vec<&[EF]> = values.iter().map(|v| &v[..]).collect();
                Ok(chunked::leaf_rows(&views))
            });
            match (opening, failed) {
                (_, Some(e)) => return Err(e),
                (Ok(o), None) => out.push(chunked::layer_opening(o)),
                (Err(msg), None) => return Err(shape_error(l, msg)),
            }
        }
        out.extend(self.memory.open(positions));
        Ok(out)
    }
}

fn shape_error(layer: usize, msg: String) -> Error {
    Error::BadSegment {
        path: format!("FRI layer {layer}"),
        msg,
    }
}
