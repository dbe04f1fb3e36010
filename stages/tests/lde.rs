//! The out-of-core LDE of one tall instance (`stages::lde`) against the in-memory one: every
//! value where the index map says, the same root and the same openings, intermediates removed,
//! carries folded in, and a chunk changed on disk refused when opened.
use formats::SegmentMeta;
use pipeline::{SegmentRef, SpillDir};
use stages::lde::{self, LdeName};
use stages::store::write_matrix;
use stark::field::PrimeCharacteristicRing;
use stark::ntt::{Carry, ChunkGeometry, Extension, carry_offsets};
use stark::prover::{commit_trace, open_rows};
use stark::{F, RowMajorMatrix};

mod common;

fn spill(name: &str) -> SpillDir {
    common::spill_dir(&format!("lde-{name}"))
}

fn matrix(rows: usize, width: usize, seed: u64) -> RowMajorMatrix<F> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let values = (0..rows * width)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            F::new(x)
        })
        .collect();
    RowMajorMatrix::new(values, width)
}

/// Writes the trace's chunks as the instance's source segments.
fn write_chunks(
    spill: &SpillDir,
    geo: &ChunkGeometry,
    trace: &RowMajorMatrix<F>,
) -> Vec<SegmentRef> {
    trace
        .values
        .chunks(geo.chunk_rows() * trace.width)
        .enumerate()
        .map(|(c, v)| {
            let meta = SegmentMeta::new("t", c as u64, "main", "trace");
            write_matrix(
                spill,
                &meta,
                &mut RowMajorMatrix::new(v.to_vec(), trace.width),
            )
            .unwrap()
        })
        .collect()
}

const NAME: LdeName<'static> = LdeName {
    table: "t",
    pass: "main",
    kind: "main-lde",
};

#[test]
fn the_out_of_core_lde_is_the_in_memory_one() {
    let width = 5;
    // K < B, K = B, K > B (slabs of one row), K = 1.
    for (n, b, l) in [(10, 6, 1), (8, 4, 1), (7, 2, 2), (6, 6, 1)] {
        let spill = spill(&format!("equal-{n}-{b}-{l}"));
        let geo = ChunkGeometry::new(n, b, l);
        let trace = matrix(1 << n, width, (n * 100 + b) as u64);
        let source = write_chunks(&spill, &geo, &trace);
        let out = lde::extend(&spill, NAME, geo, &Extension::lde(&geo), source, width).unwrap();
        let reference = commit_trace(trace, l);
        assert_eq!(out.root(), reference.root(), "n={n} b={b} l={l}");

        // Every LDE chunk holds the values the index map names.
        for (at, seg) in out.chunks.iter().enumerate() {
            let (u, c) = (at / geo.chunks(), at % geo.chunks());
            let m = stages::store::Matrix::open(&spill, seg, width, geo.chunk_rows()).unwrap();
            for i in 0..geo.chunk_rows() {
                let r = geo.lde_row(u, c, i);
                assert_eq!(
                    &m.view().values[i * width..(i + 1) * width],
                    &reference.lde.values[r * width..(r + 1) * width]
                );
            }
        }
        // Only the LDE chunks are left: the source and the steps' intermediates were removed.
        let held: Vec<String> = spill.manifest().segments.into_keys().collect();
        assert_eq!(held.len(), geo.cosets() * geo.chunks(), "{held:?}");
        assert!(
            held.iter().all(|f| f.ends_with(".main-lde.arrow")),
            "{held:?}"
        );

        let last = (1usize << (n + l)) - 1;
        let rows = [0, 1, 5, 17, last];
        assert_eq!(
            lde::open(&spill, &out, &rows).unwrap(),
            open_rows(reference.lde.as_view(), &reference.tree, &rows)
        );
        spill.finish().unwrap();
    }
}

/// A wide instance whose slabs of `B / K` rows would pass 4 MiB: steps 1 and 3 take fewer rows
/// of each chunk at a time (here 512 of 2048, the width not a power of two); the LDE, root and
/// openings are unchanged.
#[test]
fn wide_instances_take_shorter_slabs_and_give_the_same_lde() {
    let (n, b, l, width) = (15, 13, 1, 130);
    let spill = spill("wide");
    let geo = ChunkGeometry::new(n, b, l);
    assert!(geo.chunks() * geo.slab_rows() * width * 8 > 4 << 20);
    let trace = matrix(1 << n, width, 11);
    let source = write_chunks(&spill, &geo, &trace);
    let out = lde::extend(&spill, NAME, geo, &Extension::lde(&geo), source, width).unwrap();
    let reference = commit_trace(trace, l);
    assert_eq!(out.root(), reference.root());
    let rows = [0, 3, 4097, (1 << (n + l)) - 1];
    assert_eq!(
        lde::open(&spill, &out, &rows).unwrap(),
        open_rows(reference.lde.as_view(), &reference.tree, &rows)
    );
    spill.finish().unwrap();
}

/// A running-sum column carried from chunk to chunk: the LDE of the chunks as stored (each sum
/// from 0) plus the carries equals the LDE of the committed column.
#[test]
fn carries_give_the_lde_of_the_carried_column() {
    let (n, b, l, width) = (9, 5, 1, 3);
    let spill = spill("carry");
    let geo = ChunkGeometry::new(n, b, l);
    let stored = matrix(1 << n, width, 7);
    let carries = matrix(geo.chunks(), 1, 8);
    let mut committed = stored.clone();
    for (t, row) in committed.values.chunks_mut(width).enumerate() {
        row[2] += carries.values[t >> b];
    }
    let source = write_chunks(&spill, &geo, &stored);
    let ext = Extension {
        carry: Some(Carry {
            columns: vec![2],
            offsets: carry_offsets(&geo, carries),
        }),
        ..Extension::lde(&geo)
    };
    let out = lde::extend(&spill, NAME, geo, &ext, source, width).unwrap();
    assert_eq!(out.root(), commit_trace(committed, l).root());
    spill.finish().unwrap();
}

#[test]
fn a_chunk_changed_on_disk_is_refused_when_opened() {
    let (n, b, l, width) = (8, 5, 1, 4);
    let spill = spill("corrupt");
    let geo = ChunkGeometry::new(n, b, l);
    let trace = matrix(1 << n, width, 3);
    let source = write_chunks(&spill, &geo, &trace);
    let mut out = lde::extend(&spill, NAME, geo, &Extension::lde(&geo), source, width).unwrap();
    // Row 2 of the bit-reversed LDE lives in chunk (0, rev(2)); rewrite that chunk with one
    // value changed (a new, consistent segment file, so only the tree notices).
    let r = 2;
    let (u, c, i) = stark::chunk_tree::position(&geo, r);
    let at = u * geo.chunks() + c;
    let m = stages::store::Matrix::open(&spill, &out.chunks[at], width, geo.chunk_rows()).unwrap();
    let mut changed = RowMajorMatrix::new(m.view().values.to_vec(), width);
    drop(m);
    changed.values[i * width + 1] += F::ONE;
    let meta = SegmentMeta::new("t", at as u64, "main", "main-lde");
    out.chunks[at] = write_matrix(&spill, &meta, &mut changed).unwrap();
    let err = lde::open(&spill, &out, &[r]).unwrap_err().to_string();
    assert!(err.contains("do not hash to node"), "{err}");
    // A row under another node (the same chunk's next row) still opens.
    let other = geo.lde_row(u, c, (i + 1) % geo.chunk_rows());
    assert!(lde::open(&spill, &out, &[other]).is_ok());
    spill.finish().unwrap();
}

#[test]
fn mismatched_sources_are_an_error_not_a_panic() {
    let spill = spill("shape");
    let geo = ChunkGeometry::new(6, 4, 1);
    let trace = matrix(1 << 6, 2, 1);
    let source = write_chunks(&spill, &geo, &trace);
    let ext = Extension::lde(&geo);
    assert!(lde::extend(&spill, NAME, geo, &ext, source[..2].to_vec(), 2).is_err());
    // Wrong width: the segments do not hold the rows the geometry expects.
    assert!(lde::extend(&spill, NAME, geo, &ext, source.clone(), 3).is_err());
    // A refused source is left in place.
    assert!(source.iter().all(|s| s.path.exists()));
    spill.finish().unwrap();
}
