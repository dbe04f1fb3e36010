//! Segment write/read throughput for one chunk-sized segment (default 2^20 rows x 32 u64
//! columns = 256 MiB), on the real disk.
//!
//!     cargo run --release -p formats --example segment_throughput -- [log2_rows] [columns] [dir]
//!
//! "cold" reads first drop the file's pages from the page cache (posix_fadvise DONTNEED), so
//! they measure the disk; "warm" reads measure mmap + page cache.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use formats::{Layout, MappedSegmentWriter, Segment, SegmentData, SegmentMeta, write_segment};

fn drop_cache(path: &Path) {
    let f = File::open(path).expect("open");
    // SAFETY: advisory syscall on an open descriptor.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

fn sum_all(cols: &[&[u64]]) -> u64 {
    cols.iter()
        .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
        .fold(0, u64::wrapping_add)
}

struct Row {
    what: &'static str,
    bytes: u64,
    secs: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let log_rows: u32 = args.get(1).map_or(20, |s| s.parse().expect("log2 rows"));
    let columns: usize = args.get(2).map_or(32, |s| s.parse().expect("columns"));
    let dir = args.get(3).map_or_else(std::env::temp_dir, PathBuf::from);
    let rows = 1usize << log_rows;
    let data: Vec<Vec<u64>> = (0..columns)
        .map(|c| {
            (0..rows as u64)
                .map(|r| r.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ c as u64)
                .collect()
        })
        .collect();
    let slices: Vec<&[u64]> = data.iter().map(|c| c.as_slice()).collect();
    let expect = sum_all(&slices);
    let flat: Vec<u64> = (0..rows)
        .flat_map(|r| data.iter().map(move |c| c[r]))
        .collect();
    let meta = SegmentMeta::new("bench", 0, "main", "trace");
    let path = dir.join(format!("segment-throughput-{}.arrow", std::process::id()));
    let payload = (rows * columns * 8) as u64;
    let mut table = Vec::new();
    let mut time = |what, bytes, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        table.push(Row {
            what,
            bytes,
            secs: t.elapsed().as_secs_f64(),
        });
    };

    let mut info = None;
    time("write columnar (stream+hash)", payload, &mut || {
        info = Some(write_segment(&path, &meta, SegmentData::Columns(&slices)).unwrap());
    });
    let info = info.unwrap();
    drop_cache(&path);
    time("read columnar, cold (mmap, sum all)", payload, &mut || {
        let seg = Segment::open(&path).unwrap();
        assert_eq!(sum_all(&seg.column_slices().unwrap()), expect);
    });
    time("read columnar, warm (mmap, sum all)", payload, &mut || {
        let seg = Segment::open(&path).unwrap();
        assert_eq!(sum_all(&seg.column_slices().unwrap()), expect);
    });
    time("open only (mmap + decode, no data)", 0, &mut || {
        let seg = Segment::open(&path).unwrap();
        assert_eq!(seg.rows(), rows);
    });
    time("verify checksum, warm (BLAKE3)", info.bytes, &mut || {
        Segment::open_verified(&path, &info.checksum).unwrap();
    });
    drop_cache(&path);
    time("verify checksum, cold (BLAKE3)", info.bytes, &mut || {
        Segment::open_verified(&path, &info.checksum).unwrap();
    });
    std::fs::remove_file(&path).unwrap();

    time("write columnar mapped (fill+hash)", payload, &mut || {
        let mut w =
            MappedSegmentWriter::create(&path, &meta, Layout::Columnar, rows, columns).unwrap();
        for (dst, src) in w.columns_mut().unwrap().into_iter().zip(&data) {
            dst.copy_from_slice(src);
        }
        w.finish().unwrap();
    });
    std::fs::remove_file(&path).unwrap();

    time("write row-major (stream+hash)", payload, &mut || {
        write_segment(
            &path,
            &meta,
            SegmentData::RowMajor {
                width: columns,
                values: &flat,
            },
        )
        .unwrap();
    });
    drop_cache(&path);
    time("read row-major, cold (mmap, sum all)", payload, &mut || {
        let seg = Segment::open(&path).unwrap();
        assert_eq!(sum_all(&[seg.row_major_values().unwrap()]), expect);
    });
    std::fs::remove_file(&path).unwrap();

    println!(
        "segment: 2^{log_rows} rows x {columns} u64 columns = {:.0} MiB payload, file {:.1} MiB, in {}",
        payload as f64 / (1 << 20) as f64,
        info.bytes as f64 / (1 << 20) as f64,
        dir.display()
    );
    println!("{:<42} {:>10} {:>9}", "operation", "seconds", "GB/s");
    for r in &table {
        let rate = if r.bytes == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", r.bytes as f64 / r.secs / 1e9)
        };
        println!("{:<42} {:>10.4} {:>9}", r.what, r.secs, rate);
    }
}
