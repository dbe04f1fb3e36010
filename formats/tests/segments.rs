mod common;

use std::fs;
use std::process::Command;

use common::{TestDir, values};
use formats::{
    FormatError, Layout, Segment, SegmentData, SegmentMeta, checksum_file, verify_file,
    write_segment,
};

fn meta(chunk: u64) -> SegmentMeta {
    SegmentMeta::new("cpu", chunk, "main", "trace")
}

fn write_columns(
    dir: &TestDir,
    name: &str,
    rows: usize,
    cols: usize,
) -> (std::path::PathBuf, Vec<Vec<u64>>) {
    let data: Vec<Vec<u64>> = (0..cols).map(|c| values(rows, c as u64)).collect();
    let slices: Vec<&[u64]> = data.iter().map(|c| c.as_slice()).collect();
    let path = dir.join(name);
    write_segment(&path, &meta(3), SegmentData::Columns(&slices)).unwrap();
    (path, data)
}

#[test]
fn columnar_round_trip() {
    let dir = TestDir::new("columnar");
    let data: Vec<Vec<u64>> = (0..5).map(|c| values(1000, c)).collect();
    let slices: Vec<&[u64]> = data.iter().map(|c| c.as_slice()).collect();
    let path = dir.join("cpu-3.trace.arrow");
    let info = write_segment(&path, &meta(3), SegmentData::Columns(&slices)).unwrap();
    assert_eq!(
        (info.rows, info.columns, info.layout),
        (1000, 5, Layout::Columnar)
    );
    assert_eq!(info.bytes, fs::metadata(&path).unwrap().len());
    assert_eq!(info.checksum, checksum_file(&path).unwrap());

    let seg = Segment::open_verified(&path, &info.checksum).unwrap();
    assert_eq!(seg.meta(), &meta(3));
    assert_eq!(
        (seg.rows(), seg.columns(), seg.layout()),
        (1000, 5, Layout::Columnar)
    );
    for (c, col) in data.iter().enumerate() {
        assert_eq!(seg.column(c).unwrap(), col.as_slice());
    }
    assert!(seg.column(5).is_err());
    // Access hints are advisory: they never change what is read.
    seg.set_access(formats::Access::Random);
    seg.prefetch_rows(10..20);
    seg.prefetch_rows(990..5000);
    seg.prefetch_rows(7..7);
    assert_eq!(seg.column(2).unwrap(), data[2].as_slice());
    assert!(seg.row_major_values().is_err());
    // No temp files left behind.
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn row_major_round_trip() {
    let dir = TestDir::new("rowmajor");
    let width = 7;
    let flat = values(513 * width, 42);
    let path = dir.join("lde.arrow");
    let info = write_segment(
        &path,
        &meta(0),
        SegmentData::RowMajor {
            width,
            values: &flat,
        },
    )
    .unwrap();
    assert_eq!(
        (info.rows, info.columns, info.layout),
        (513, 7, Layout::RowMajor)
    );
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.row_major_values().unwrap(), flat.as_slice());
    assert_eq!(seg.row(512).unwrap(), &flat[512 * width..]);
    let line = seg.to_string();
    assert!(
        line.contains(
            "lde.arrow: pass main table cpu chunk 0 kind trace, 513 rows x 7 u64 (row-major)"
        ),
        "{line}"
    );
    seg.prefetch_rows(500..513);
    assert!(seg.row(513).is_err());
    assert!(seg.column(0).is_err());
}

#[test]
fn empty_and_ragged_inputs() {
    let dir = TestDir::new("edge");
    let empty: [&[u64]; 2] = [&[], &[]];
    write_segment(
        dir.join("empty.arrow"),
        &meta(0),
        SegmentData::Columns(&empty),
    )
    .unwrap();
    let seg = Segment::open(dir.join("empty.arrow")).unwrap();
    assert_eq!((seg.rows(), seg.columns()), (0, 2));
    assert_eq!(seg.column(1).unwrap(), &[] as &[u64]);

    let ragged: [&[u64]; 2] = [&[1, 2], &[3]];
    let err = write_segment(
        dir.join("ragged.arrow"),
        &meta(0),
        SegmentData::Columns(&ragged),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ragged.arrow"), "{err}");
    assert!(!dir.join("ragged.arrow").exists());
}

#[test]
fn reads_are_zero_copy_and_aligned() {
    let dir = TestDir::new("zerocopy");
    let (path, _) = write_columns(&dir, "z.arrow", 4096, 4);
    let seg = Segment::open(&path).unwrap();
    let map = seg.mapped_bytes().as_ptr_range();
    for c in 0..4 {
        let col = seg.column(c).unwrap();
        let p = col.as_ptr() as *const u8;
        assert!(map.contains(&p), "column {c} was copied out of the mapping");
        assert_eq!(p as usize % 64, 0, "column {c} not 64-byte aligned");
    }
    let width = 3;
    let flat = values(100 * width, 1);
    let path = dir.join("r.arrow");
    write_segment(
        &path,
        &meta(1),
        SegmentData::RowMajor {
            width,
            values: &flat,
        },
    )
    .unwrap();
    let seg = Segment::open(&path).unwrap();
    let p = seg.row_major_values().unwrap().as_ptr() as *const u8;
    assert!(seg.mapped_bytes().as_ptr_range().contains(&p));
}

#[test]
fn flipped_byte_is_detected_naming_the_file() {
    let dir = TestDir::new("flip");
    let (path, _) = write_columns(&dir, "cpu-3.trace.arrow", 1000, 3);
    let good = checksum_file(&path).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2; // inside the column data
    bytes[mid] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let err = Segment::open_verified(&path, &good).unwrap_err();
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("cpu-3.trace.arrow"), "{err}");
    let err = verify_file(&path, &good).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn any_single_byte_corruption_is_an_error_or_harmless_never_a_panic() {
    let dir = TestDir::new("fuzz");
    let (path, data) = write_columns(&dir, "f.arrow", 16, 2);
    let original = fs::read(&path).unwrap();
    let bad = dir.join("bad.arrow");
    let mut errors = 0;
    for i in 0..original.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[i] ^= flip;
            fs::write(&bad, &bytes).unwrap();
            match Segment::open(&bad) {
                Err(e) => {
                    assert!(e.to_string().contains("bad.arrow"), "{e}");
                    // Our own checks, not the last-resort panic guard, caught it.
                    assert!(!e.to_string().contains("decoder rejected"), "{e}");
                    errors += 1;
                }
                // Flips in padding or in the values decode fine (the checksum catches those).
                Ok(seg) => {
                    let _ = seg
                        .column_slices()
                        .map(|c| c.iter().map(|v| v.len()).sum::<usize>());
                }
            }
        }
    }
    assert!(errors > 0);
    assert_eq!(
        Segment::open(&path).unwrap().column(1).unwrap(),
        data[1].as_slice()
    );
}

#[test]
fn truncated_file_is_an_error_not_a_panic() {
    let dir = TestDir::new("trunc");
    let (path, _) = write_columns(&dir, "t.arrow", 1000, 2);
    let full = fs::read(&path).unwrap();
    for len in [
        0,
        1,
        6,
        17,
        100,
        full.len() / 2,
        full.len() - 11,
        full.len() - 1,
    ] {
        fs::write(&path, &full[..len]).unwrap();
        let err = Segment::open(&path).unwrap_err();
        assert!(
            matches!(err, FormatError::Corrupt { .. }),
            "len {len}: {err}"
        );
        assert!(err.to_string().contains("t.arrow"), "{err}");
    }
    let err = Segment::open(dir.join("absent.arrow")).unwrap_err();
    assert!(err.to_string().contains("absent.arrow"), "{err}");
}

#[test]
fn pyarrow_reads_our_segments() {
    let have_pyarrow = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_pyarrow {
        eprintln!(
            "SKIPPED pyarrow_reads_our_segments: python3 -c 'import pyarrow' failed (pyarrow not installed)"
        );
        return;
    }
    let dir = TestDir::new("pyarrow");
    let (path, data) = write_columns(&dir, "py.arrow", 300, 3);
    let width = 4;
    let flat = values(10 * width, 9);
    let rpath = dir.join("rows.arrow");
    write_segment(
        &rpath,
        &meta(1),
        SegmentData::RowMajor {
            width,
            values: &flat,
        },
    )
    .unwrap();
    let script = r#"
import sys, pyarrow as pa
t = pa.ipc.open_file(sys.argv[1]).read_all()
print(t.schema.metadata[b"stark_pipe.table"].decode(), t.num_rows, t.num_columns, sum(t.column(2).to_pylist()) % (1 << 64))
r = pa.ipc.open_file(sys.argv[2]).read_all()
print(r.column(0).to_pylist()[9][3])
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .arg(&rpath)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum = data[2].iter().fold(0u64, |a, &b| a.wrapping_add(b));
    let expect = format!("cpu 300 3 {sum}\n{}\n", flat[9 * width + 3]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
}

#[test]
fn random_multi_byte_corruption_never_panics() {
    let dir = TestDir::new("fuzz-multi");
    let width = 3;
    let flat = values(64 * width, 3);
    let rows = dir.join("r.arrow");
    write_segment(
        &rows,
        &meta(0),
        SegmentData::RowMajor {
            width,
            values: &flat,
        },
    )
    .unwrap();
    let (cols, _) = write_columns(&dir, "c.arrow", 64, 3);
    let trials: usize = std::env::var("FUZZ_TRIALS").map_or(1500, |v| v.parse().unwrap());
    let bad = dir.join("bad.arrow");
    for (path, seed) in [(rows, 77), (cols, 78)] {
        let original = fs::read(&path).unwrap();
        let noise = values(trials * 9, seed);
        let mut errors = 0;
        for trial in noise.chunks(9) {
            let mut bytes = original.clone();
            let flips = 1 + (trial[0] % 8) as usize;
            for &r in &trial[1..=flips] {
                let at = (r % bytes.len() as u64) as usize;
                bytes[at] = (r >> 32) as u8;
            }
            fs::write(&bad, &bytes).unwrap();
            match Segment::open(&bad) {
                Err(e) => {
                    assert!(e.to_string().contains("bad.arrow"), "{e}");
                    // Our own checks, not the last-resort panic guard, caught it.
                    assert!(!e.to_string().contains("decoder rejected"), "{e}");
                    errors += 1;
                }
                Ok(seg) => {
                    let _ = seg.row_major_values().map(|v| v.len());
                    let _ = seg.column_slices().map(|v| v.len());
                }
            }
        }
        println!(
            "{}: {errors} of {trials} corrupted copies rejected, the rest decode (changes in values/padding)",
            path.display()
        );
        assert!(errors > 0);
    }
}
