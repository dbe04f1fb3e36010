//! The LDE and Merkle tree of one tall instance, out of core: the three steps of
//! [`stark::ntt`] over segments, with the tree's kept level ([`stark::chunk_tree`]) hashed as
//! the last step runs.
//!
//! The instance's `K` source chunks of `B` rows are segments, as are the `K` intermediate
//! blocks and the `L x K` LDE chunks (natural coset layout). Every step reads and writes whole
//! rows in order:
//!
//! ```text
//! step 1  slab by slab: the same S rows of each of the K source chunks -> cross inverse
//!         -> S rows of each of K intermediate segments; the source chunks are removed
//! step 2  block by block: one intermediate segment (B rows) in memory -> twiddle, one coset
//!         LDE -> block j1 of every coset, written where LDE chunk (u, j1) will be; the
//!         intermediate is removed
//! step 3  coset by coset, slab by slab, in place: the same S rows of the coset's K files
//!         -> cross forward -> written back, and S nodes of the kept tree level hashed; the
//!         coset's files are then checksummed and renamed into place as its LDE chunks
//! ```
//!
//! The quotient keeps its step-2 blocks as recorded segments instead ([`Blocks::Recorded`]),
//! which step 3 reads into new chunks, so that a resumed pass takes up both steps where a kill
//! left them; it costs one more write of the LDE and one coset twice on disk.
//!
//! With `S = B / K` steps 1 and 3 hold about one chunk's worth of values and step 2 one block
//! and its `L` outputs, whatever the instance's height. Every write goes through the file
//! (`pwrite`), never the mapping: a fault on a fresh page of a reserved file zero-fills it
//! first, and every store to a mapped page of a file faults once per 4 KiB page to mark it
//! dirty (that was 42% of a run's page faults when step 3 rewrote its slabs through the
//! mapping). Reads go through the mapping. Each value is written twice (intermediate,
//! LDE) and read three times; `stark-pipe bench lde` measures what that costs against the
//! in-RAM LDE.

use formats::{Layout, SegmentMeta};
use pipeline::{SegmentRef, SpillDir};
use stark::RowMajorMatrix;
use stark::chunk_tree::{self, ChunkTree, LevelBuilder};
use stark::field::PrimeField64;
use stark::ntt::{self, ChunkGeometry, Extension};
use stark::proof::TreeOpening;
use stark::prover::MatrixView;

use rayon::prelude::*;

use crate::error::Error;
use crate::store::{Matrix, as_field, write_matrix};

/// Where an instance's segments go: table name, pass, and the kind of the finished LDE chunks
/// (the intermediates are `<kind>-step1` and `<kind>-step2`).
#[derive(Clone, Copy, Debug)]
pub struct LdeName<'a> {
    pub table: &'a str,
    pub pass: &'a str,
    pub kind: &'a str,
}

/// An instance's LDE on disk and its tree.
#[derive(Clone, Debug)]
pub struct InstanceLde {
    pub geo: ChunkGeometry,
    pub width: usize,
    /// LDE chunk (coset `u`, chunk `c`) is `chunks[u * K + c]`: `B` rows, natural order.
    pub chunks: Vec<SegmentRef>,
    pub tree: ChunkTree,
}

impl InstanceLde {
    pub fn root(&self) -> stark::Digest {
        self.tree.root
    }

    /// LDE chunk (`u`, `c`), mapped.
    pub fn chunk(&self, spill: &SpillDir, u: usize, c: usize) -> Result<Matrix, Error> {
        let seg = &self.chunks[u * self.geo.chunks() + c];
        Matrix::open(spill, seg, self.width, self.geo.chunk_rows())
    }

    /// LDE chunk (`u`, `c`) with the next chunk's first row appended (the last chunk's next row
    /// is the first chunk's first: the coset wraps), as transition constraints read it.
    pub fn chunk_with_next(
        &self,
        spill: &SpillDir,
        u: usize,
        c: usize,
    ) -> Result<RowMajorMatrix<stark::F>, Error> {
        let next = self.chunk(spill, u, (c + 1) % self.geo.chunks())?;
        let this = self.chunk(spill, u, c)?;
        let mut values = Vec::with_capacity((self.geo.chunk_rows() + 1) * self.width);
        values.extend_from_slice(this.view().values);
        values.extend_from_slice(&next.view().values[..self.width]);
        Ok(RowMajorMatrix::new(values, self.width))
    }
}

/// Extends the `K` source chunks (`source[c]`, `B` rows of `width` each) by `ext` and commits
/// the result, writing every intermediate and output as a segment of `spill`. The source
/// chunks are consumed: step 1 removes them once read.
pub fn extend(
    spill: &SpillDir,
    name: LdeName<'_>,
    geo: ChunkGeometry,
    ext: &Extension,
    source: Vec<SegmentRef>,
    width: usize,
) -> Result<InstanceLde, Error> {
    if ext.targets.len() != geo.cosets() {
        return Err(Error::Config(format!(
            "{}: {} target cosets for a blowup of {}",
            name.table,
            ext.targets.len(),
            geo.cosets()
        )));
    }
    let step1 = format!("{}-step1", name.kind);
    let blocks = cross_inverse(
        spill,
        LdeName {
            kind: &step1,
            ..name
        },
        geo,
        source,
        width,
    )?;
    commit_blocks(spill, name, geo, width, Blocks::InPlace, |j1| {
        let block = read_block(spill, &blocks[j1], width, geo.chunk_rows())?;
        spill.remove_segment(&blocks[j1])?;
        Ok(ntt::local_extend(&geo, ext, j1, block))
    })
}

/// Step 1: the cross-chunk inverse of the `K` source chunks, slab by slab, into `K`
/// intermediate blocks (segments of kind `name.kind`, numbered by block). The source chunks
/// are removed once read (on an error they stay, for the run's cleanup).
pub fn cross_inverse(
    spill: &SpillDir,
    name: LdeName<'_>,
    geo: ChunkGeometry,
    source: Vec<SegmentRef>,
    width: usize,
) -> Result<Vec<SegmentRef>, Error> {
    let (k, b) = (geo.chunks(), geo.chunk_rows());
    if source.len() != k || width == 0 {
        return Err(Error::Config(format!(
            "{}: {} source chunks of {width} columns for an instance of {k} chunks",
            name.table,
            source.len()
        )));
    }
    let slab = slab_rows(&geo, width);
    let sources = source
        .iter()
        .map(|s| Matrix::open(spill, s, width, b))
        .collect::<Result<Vec<_>, _>>()?;
    let blocks = Writers::create(spill, name, name.kind, 0, k, b, width)?;
    for at in (0..b).step_by(slab) {
        let views: Vec<_> = sources
            .iter()
            .map(|m| rows_of(m.view(), at, slab))
            .collect();
        let parts = ntt::cross_inverse(&geo, &views);
        for j1 in 0..k {
            blocks.put(j1, at, parts.get(j1))?;
        }
    }
    let blocks = blocks.finish(spill)?;
    drop(sources);
    source.iter().try_for_each(|s| spill.remove_segment(s))?;
    Ok(blocks)
}

/// How steps 2b and 3 keep the blocks between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocks {
    /// Written where the LDE chunks will be, and transformed there in place: one write fewer,
    /// but nothing a kill leaves can be taken up again (main and aux LDEs).
    InPlace,
    /// Each a recorded segment (`<kind>-step2`, numbered like the LDE chunk `(u, j1)` it
    /// becomes), read by step 3 into the LDE chunks and removed once its coset is finished: a
    /// resumed pass takes up what a kill left (the quotient's pieces).
    Recorded,
}

/// Steps 2b and 3: `block(j1)` gives block `j1` evaluated on every coset (the `L` outputs of
/// [`ntt::local_extend`] or [`ntt::evaluate_block`]), kept as `blocks` says; then, coset by
/// coset and slab by slab, the cross-chunk forward of the coset's `K` blocks into its LDE
/// chunks, hashing the kept level. A coset's chunks are finished (checksummed, renamed,
/// recorded) when all its slabs are.
///
/// With [`Blocks::Recorded`], what a killed attempt recorded is taken up again (a resumed pass
/// keeps it, [`pipeline::SpillDir::recorded`]): a block is not evaluated again while its `L`
/// outputs are recorded or their cosets finished, and a finished coset is only read again for
/// its level.
pub fn commit_blocks(
    spill: &SpillDir,
    name: LdeName<'_>,
    geo: ChunkGeometry,
    width: usize,
    blocks: Blocks,
    mut block: impl FnMut(usize) -> Result<Vec<RowMajorMatrix<stark::F>>, Error>,
) -> Result<InstanceLde, Error> {
    let (k, b, cosets) = (geo.chunks(), geo.chunk_rows(), geo.cosets());
    let step2 = format!("{}-step2", name.kind);
    let meta = |kind: &str, u: usize, c: usize| {
        SegmentMeta::new(name.table, (u * k + c) as u64, name.pass, kind)
    };
    let recorded = |kind: &str, u: usize| -> Result<Vec<Option<SegmentRef>>, Error> {
        (0..k)
            .map(|c| match blocks {
                Blocks::InPlace => Ok(None),
                Blocks::Recorded => Ok(spill.recorded(&meta(kind, u, c))?),
            })
            .collect()
    };
    // Per coset: its chunks if finished, else its writers (in place) and step-2 blocks so far.
    let mut finished = Vec::with_capacity(cosets);
    let mut evaluated = Vec::with_capacity(cosets);
    let mut in_place = Vec::new();
    for u in 0..cosets {
        let done: Option<Vec<SegmentRef>> = recorded(name.kind, u)?.into_iter().collect();
        finished.push(done);
        evaluated.push(recorded(&step2, u)?);
        if blocks == Blocks::InPlace {
            in_place.push(Writers::create(spill, name, name.kind, u * k, k, b, width)?);
        }
    }
    #[allow(clippy::needless_range_loop)] // j1 numbers the block as well as indexing
    for j1 in 0..k {
        let missing: Vec<usize> = (0..cosets)
            .filter(|&u| finished[u].is_none() && evaluated[u][j1].is_none())
            .collect();
        if missing.is_empty() {
            continue;
        }
        let mut outputs = block(j1)?;
        if outputs.len() != cosets
            || outputs
                .iter()
                .any(|m| m.width != width || m.values.len() != b * width)
        {
            return Err(Error::Config(format!(
                "{}: block {j1} does not give {cosets} cosets of {b} x {width}",
                name.table,
            )));
        }
        for u in missing {
            match blocks {
                Blocks::InPlace => in_place[u].put(j1, 0, outputs[u].as_view())?,
                Blocks::Recorded => {
                    let seg = write_matrix(spill, &meta(&step2, u, j1), &mut outputs[u])?;
                    evaluated[u][j1] = Some(seg);
                }
            }
        }
    }
    let slab = slab_rows(&geo, width);
    let mut level = LevelBuilder::new(geo);
    let mut chunks = Vec::with_capacity(cosets * k);
    let mut in_place = in_place.into_iter();
    for (u, (done, blocks)) in finished.into_iter().zip(evaluated).enumerate() {
        let blocks: Vec<SegmentRef> = blocks.into_iter().flatten().collect();
        let coset = if let Some(mut out) = in_place.next() {
            for at in (0..b).step_by(slab) {
                let parts = ntt::cross_forward(&geo, &out.slabs(at, slab));
                for c in 0..k {
                    out.put(c, at, parts.get(c))?;
                }
                level.add_slab(u, at, &parts.views());
            }
            out.finish(spill)?
        } else if let Some(done) = done {
            let read = open_all(spill, &done, width, b)?;
            for at in (0..b).step_by(slab) {
                level.add_slab(u, at, &slabs_of(&read, at, slab));
            }
            done
        } else {
            let read = open_all(spill, &blocks, width, b)?;
            if read.len() != k {
                return Err(Error::Config(format!(
                    "{}: coset {u} has {} of its {k} blocks",
                    name.table,
                    read.len()
                )));
            }
            let out = Writers::create(spill, name, name.kind, u * k, k, b, width)?;
            for at in (0..b).step_by(slab) {
                let parts = ntt::cross_forward(&geo, &slabs_of(&read, at, slab));
                for c in 0..k {
                    out.put(c, at, parts.get(c))?;
                }
                level.add_slab(u, at, &parts.views());
            }
            out.finish(spill)?
        };
        chunks.extend(coset);
        blocks.iter().try_for_each(|s| spill.remove_segment(s))?;
    }
    let tree = level
        .finish()
        .map_err(|msg| Error::Config(format!("{}: {msg}", name.table)))?;
    Ok(InstanceLde {
        geo,
        width,
        chunks,
        tree,
    })
}

fn open_all(
    spill: &SpillDir,
    segments: &[SegmentRef],
    width: usize,
    rows: usize,
) -> Result<Vec<Matrix>, Error> {
    segments
        .iter()
        .map(|s| Matrix::open(spill, s, width, rows))
        .collect()
}

fn slabs_of(matrices: &[Matrix], at: usize, rows: usize) -> Vec<MatrixView<'_>> {
    matrices
        .iter()
        .map(|m| rows_of(m.view(), at, rows))
        .collect()
}

/// Rows of each chunk one slab of step 1 or 3 takes: the four-step's `B / K` (any count works:
/// the cross transform is row by row), lowered to a power of two (so that it divides `B`) for
/// which the K chunks' slab stays under 4 MiB.
/// Buffers that size come from the allocator's heap and are reused; above its mapping
/// threshold (8 MiB, [`pipeline::configure_allocator`]) every slab would be a fresh mapping
/// whose every page faults.
fn slab_rows(geo: &ChunkGeometry, width: usize) -> usize {
    const SLAB_BYTES: usize = 4 << 20;
    let per_row = geo.chunks() * width.max(1) * size_of::<stark::F>();
    let fits = (SLAB_BYTES / per_row).max(1);
    geo.slab_rows().min(1 << fits.ilog2())
}

/// A segment of `rows x width` read into memory.
pub fn read_block(
    spill: &SpillDir,
    seg: &SegmentRef,
    width: usize,
    rows: usize,
) -> Result<RowMajorMatrix<stark::F>, Error> {
    let m = Matrix::open(spill, seg, width, rows)?;
    Ok(RowMajorMatrix::new(m.view().values.to_vec(), width))
}

/// The batch opening of `rows` (sorted, distinct rows of the bit-reversed LDE, as
/// [`stark::protocol::query_rows`] gives them), read from the LDE chunks and checked against
/// the kept level.
pub fn open(spill: &SpillDir, lde: &InstanceLde, rows: &[usize]) -> Result<TreeOpening, Error> {
    let (k, b) = (lde.geo.chunks(), lde.geo.chunk_rows());
    let width = lde.width;
    // The opening reads, for each query row, the K leaves of its node at the kept level (one row
    // of each chunk of its coset). Every chunk they touch is mapped first and all their rows
    // are asked for at once.
    let mut wanted: Vec<Vec<usize>> = vec![Vec::new(); lde.chunks.len()];
    for &r in rows {
        let first = (r / k) * k;
        for leaf in first..first + k {
            let (u, c, i) = chunk_tree::position(&lde.geo, leaf);
            wanted[u * k + c].push(i);
        }
    }
    let mut mapped: Vec<Option<Matrix>> = Vec::with_capacity(lde.chunks.len());
    for (at, rows_of_chunk) in wanted.into_iter().enumerate() {
        if rows_of_chunk.is_empty() {
            mapped.push(None);
            continue;
        }
        let m = Matrix::open(spill, &lde.chunks[at], width, b)?;
        m.prefetch_scattered(rows_of_chunk.into_iter());
        mapped.push(Some(m));
    }
    let result = chunk_tree::open(&lde.geo, width, &lde.tree, rows, |u, c, i| {
        match mapped.get(u * k + c).and_then(Option::as_ref) {
            Some(m) => Ok(m.view().values[i * width..(i + 1) * width].to_vec()),
            None => Err(format!("chunk ({u}, {c}) read but not mapped")),
        }
    });
    result.map_err(|msg| Error::BadSegment {
        path: format!(
            "{} ({} LDE chunks)",
            spill.path().display(),
            lde.chunks.len()
        ),
        msg,
    })
}

/// Rows `at..at + rows` of a matrix.
fn rows_of(m: MatrixView<'_>, at: usize, rows: usize) -> MatrixView<'_> {
    MatrixView::new(&m.values[at * m.width..(at + rows) * m.width], m.width)
}

/// Segments of one step filled in place, a slab at a time.
struct Writers {
    writers: Vec<formats::MappedSegmentWriter>,
    width: usize,
}

impl Writers {
    /// `count` segments of `rows x width`, numbered from `first`.
    fn create(
        spill: &SpillDir,
        name: LdeName<'_>,
        kind: &str,
        first: usize,
        count: usize,
        rows: usize,
        width: usize,
    ) -> Result<Writers, Error> {
        let writers = (first..first + count)
            .map(|i| {
                let meta = SegmentMeta::new(name.table, i as u64, name.pass, kind);
                spill.create_mapped_segment(&meta, Layout::RowMajor, rows, width)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Writers { writers, width })
    }

    /// Writes `part` (canonical values) at row `at` of segment `i`, through the file.
    fn put(&self, i: usize, at: usize, part: MatrixView<'_>) -> Result<(), Error> {
        const PIECE: usize = 1 << 18;
        let start = at * self.width;
        part.values
            .par_chunks(PIECE)
            .enumerate()
            .try_for_each(|(p, src)| {
                let words: Vec<u64> = src.iter().map(|v| v.as_canonical_u64()).collect();
                self.writers[i].write_values(start + p * PIECE, &words)
            })?;
        Ok(())
    }

    /// Rows `at..at + rows` of every segment, as written so far.
    fn slabs(&mut self, at: usize, rows: usize) -> Vec<MatrixView<'_>> {
        let width = self.width;
        self.writers
            .iter_mut()
            .map(|w| {
                let values = w.values_mut().expect("writers are created row-major");
                MatrixView::new(as_field(&values[at * width..(at + rows) * width]), width)
            })
            .collect()
    }

    fn finish(self, spill: &SpillDir) -> Result<Vec<SegmentRef>, Error> {
        self.writers
            .into_iter()
            .map(|w| Ok(spill.record_segment(&w.finish()?)?))
            .collect()
    }
}
