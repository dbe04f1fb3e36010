//! Pass 6: FRI over DEEP codewords kept as segments. While a layer has two chunks or more, its
//! tree is hashed slab by slab from its chunks (the pair of row `i` is row `i` of chunks `c` and
//! `c + K/2`) and its fold is written chunk by chunk as the next layer's segments; a smaller
//! codeword joins when the fold reaches its size. The first one-chunk layer (`L B` values) and
//! what is left to join go to the in-memory loop ([`stark::fri::chunked::finish_in_memory`]).
//! Memory: two chunks and one slab of pair rows, whatever the codeword's length.

use std::collections::BTreeMap;

use formats::SegmentMeta;
use pipeline::{SegmentRef, SpillDir};
use stark::chunk_tree::{self, ChunkTree, LevelBuilder};
use stark::field::{EF, F, coords, ext};
use stark::fri::FriProver;
use stark::fri::chunked::{self, ChunkedWord};
use stark::merkle::Digest;
use stark::ntt::ChunkGeometry;
use stark::proof::FriLayerOpening;
use stark::prover::{MatrixView, ProveError};
use stark::transcript::Transcript;
use stark::{RowMajorMatrix, protocol};

use crate::error::Error;
use crate::store::{Matrix, write_matrix};

/// A codeword (DEEP or a FRI layer) in natural coset chunks, each a segment of `B` extension
/// elements (2 base columns).
pub struct DiskWord {
    pub geo: ChunkGeometry,
    /// Chunk `(u, c)` at `u K + c`.
    pub chunks: Vec<SegmentRef>,
}

/// The FRI prover's layers: the chunked ones on disk with their trees, then the in-memory rest.
pub struct DiskFri {
    layers: Vec<(DiskWord, ChunkTree)>,
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

/// The tree of a chunked layer over its pair rows, hashed slab by slab.
fn layer_tree(spill: &SpillDir, w: &DiskWord) -> Result<ChunkTree, Error> {
    let half = chunked::half(&w.geo);
    let (k, b, slab) = (w.geo.chunks(), w.geo.chunk_rows(), half.slab_rows());
    let mut level = LevelBuilder::new(half);
    for u in 0..half.cosets() {
        let mapped = (0..k)
            .map(|c| open_chunk(spill, w, u * k + c))
            .collect::<Result<Vec<_>, _>>()?;
        for at in (0..b).step_by(slab) {
            let pairs: Vec<Vec<F>> = (0..k / 2)
                .map(|c| {
                    let (lo, hi) = (&mapped[c], &mapped[c + k / 2]);
                    chunked::pair_rows(&rows(lo, at, slab), &rows(hi, at, slab))
                })
                .collect();
            let views: Vec<_> = pairs.iter().map(|p| MatrixView::new(p, 4)).collect();
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
    let Some((_, mut cur)) = words.pop_last() else {
        return Err(shape("no DEEP codeword"));
    };
    let (mut layers, mut roots, mut level) = (Vec::new(), Vec::new(), 0);
    while cur.geo.chunks() >= 2 {
        let tree = layer_tree(spill, &cur)?;
        let beta = protocol::observe_fri_layer(t, &tree.root);
        roots.push(tree.root);
        let half = chunked::half(&cur.geo);
        let joining = match words.last_key_value() {
            Some((&l, _)) if l == half.log_height + half.log_blowup => {
                let d = words.pop_last().expect("just looked").1;
                if d.geo != half {
                    return Err(shape("a DEEP codeword joins with another chunk size"));
                }
                Some(d)
            }
            _ => None,
        };
        let k = cur.geo.chunks();
        let name = format!("layer{}", level + 1);
        let mut next = Vec::with_capacity(half.cosets() * half.chunks());
        for at in 0..half.cosets() * half.chunks() {
            let (u, c) = (at / half.chunks(), at % half.chunks());
            let (lo, hi) = (
                open_chunk(spill, &cur, u * k + c)?,
                open_chunk(spill, &cur, u * k + c + k / 2)?,
            );
            let b = cur.geo.chunk_rows();
            let lo_rows = rows(&lo, 0, b);
            let mut v =
                chunked::fold_chunk(&cur.geo, level, beta, u, c, &lo_rows, &rows(&hi, 0, b));
            if let Some(d) = &joining {
                chunked::join_chunk(&mut v, &rows(&open_chunk(spill, d, at)?, 0, b), beta);
            }
            next.push(write_chunk(spill, "fri", &name, at, &v)?);
        }
        layers.push((cur, tree));
        cur = DiskWord {
            geo: half,
            chunks: next,
        };
        level += 1;
    }
    let last = read_word(spill, &cur)?;
    let rest = words
        .values()
        .map(|w| Ok((w.geo.log_height + w.geo.log_blowup, read_word(spill, w)?)))
        .collect::<Result<BTreeMap<_, _>, Error>>()?;
    let memory = chunked::finish_in_memory(&last, rest, level, t, log_blowup);
    roots.extend(&memory.roots);
    Ok(DiskFri {
        layers,
        final_value: memory.final_value,
        memory,
        roots,
    })
}

impl DiskFri {
    /// Every layer's pairs at the query positions, batch-opened: the chunked layers' pairs read
    /// from their chunks and checked against their trees.
    pub fn open(
        &self,
        spill: &SpillDir,
        positions: &[usize],
    ) -> Result<Vec<FriLayerOpening>, Error> {
        let mut out = Vec::with_capacity(self.roots.len());
        for (l, (word, tree)) in self.layers.iter().enumerate() {
            let idx = protocol::fri_pair_indices(positions, l);
            let (half, k) = (chunked::half(&word.geo), word.geo.chunks());
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
            let opening = chunk_tree::open(&half, 4, tree, &idx, |u, c, i| {
                let lo = row(u * k + c, i)?;
                Ok(chunked::pair_rows(&lo, &row(u * k + c + k / 2, i)?))
            });
            match (opening, failed) {
                (_, Some(e)) => return Err(e),
                (Ok(o), None) => out.push(chunked::layer_opening(o)),
                (Err(msg), None) => return Err(shape_error(l, msg)),
            }
        }
        let shifted: Vec<usize> = positions.iter().map(|&q| q >> self.layers.len()).collect();
        out.extend(self.memory.open(&shifted));
        Ok(out)
    }
}

fn shape_error(layer: usize, msg: String) -> Error {
    Error::BadSegment {
        path: format!("FRI layer {layer}"),
        msg,
    }
}
