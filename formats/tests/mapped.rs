mod common;

use std::fs;
use std::process::Command;

use common::{TestDir, values};
use formats::{
    Layout, MappedSegmentWriter, Segment, SegmentData, SegmentMeta, checksum_file, write_segment,
};

fn meta() -> SegmentMeta {
    SegmentMeta::new("cpu", 9, "main", "lde")
}

#[test]
fn mapped_columnar_write_is_byte_identical_to_streamed_write() {
    let dir = TestDir::new("mapped-col");
    for rows in [0usize, 1, 1000, 4096] {
        let cols: Vec<Vec<u64>> = (0..5).map(|c| values(rows, c)).collect();
        let slices: Vec<&[u64]> = cols.iter().map(|c| c.as_slice()).collect();
        let streamed = write_segment(
            dir.join("streamed.arrow"),
            &meta(),
            SegmentData::Columns(&slices),
        )
        .unwrap();

        let mut w = MappedSegmentWriter::create(
            dir.join("mapped.arrow"),
            &meta(),
            Layout::Columnar,
            rows,
            5,
        )
        .unwrap();
        for (dst, src) in w.columns_mut().unwrap().into_iter().zip(&cols) {
            dst.copy_from_slice(src);
        }
        let mapped = w.finish().unwrap();
        assert_eq!(mapped.checksum, streamed.checksum, "rows {rows}");
        assert_eq!(mapped.bytes, streamed.bytes);
        assert_eq!(
            fs::read(dir.join("mapped.arrow")).unwrap(),
            fs::read(dir.join("streamed.arrow")).unwrap()
        );
        assert_eq!(
            checksum_file(dir.join("mapped.arrow")).unwrap(),
            mapped.checksum
        );
        let seg = Segment::open(dir.join("mapped.arrow")).unwrap();
        assert_eq!(seg.column(4).unwrap(), cols[4].as_slice());
    }
}

#[test]
fn mapped_row_major_write_filled_by_rayon() {
    use rayon::prelude::*;
    let dir = TestDir::new("mapped-rows");
    let (rows, width) = (1 << 12, 6);
    let mut w =
        MappedSegmentWriter::create(dir.join("m.arrow"), &meta(), Layout::RowMajor, rows, width)
            .unwrap();
    w.values_mut()
        .unwrap()
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(r, row)| {
            row.iter_mut()
                .enumerate()
                .for_each(|(c, v)| *v = (r * width + c) as u64)
        });
    assert!(w.columns_mut().is_err());
    let info = w.finish().unwrap();
    assert_eq!(
        (info.rows, info.columns, info.layout),
        (rows as u64, 6, Layout::RowMajor)
    );
    let seg = Segment::open_verified(dir.join("m.arrow"), &info.checksum).unwrap();
    let expect: Vec<u64> = (0..(rows * width) as u64).collect();
    assert_eq!(seg.row_major_values().unwrap(), expect.as_slice());
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1, "temp files left");
}

/// Values written through the file land where the mapping shows them, and the finished file
/// is the streamed writer's; a write past the values is an error.
#[test]
fn mapped_row_major_write_through_the_file() {
    let dir = TestDir::new("mapped-pwrite");
    let (rows, width) = (1000, 3);
    let all = values(rows * width, 7);
    let streamed = write_segment(
        dir.join("streamed.arrow"),
        &meta(),
        SegmentData::RowMajor {
            width,
            values: &all,
        },
    )
    .unwrap();
    let mut w =
        MappedSegmentWriter::create(dir.join("m.arrow"), &meta(), Layout::RowMajor, rows, width)
            .unwrap();
    let half = all.len() / 2;
    w.write_values(half, &all[half..]).unwrap();
    w.write_values(0, &all[..half]).unwrap();
    assert_eq!(w.values_mut().unwrap(), all.as_slice());
    assert!(w.write_values(all.len() - 1, &[1, 2]).is_err());
    let info = w.finish().unwrap();
    assert_eq!(info.checksum, streamed.checksum);

    let mut columnar =
        MappedSegmentWriter::create(dir.join("c.arrow"), &meta(), Layout::Columnar, 10, 2).unwrap();
    assert!(columnar.write_values(0, &[1]).is_err());
    assert!(columnar.columns_mut().is_ok());
}

#[test]
fn dropped_mapped_writer_leaves_nothing() {
    let dir = TestDir::new("mapped-drop");
    let w = MappedSegmentWriter::create(dir.join("m.arrow"), &meta(), Layout::Columnar, 100, 2)
        .unwrap();
    drop(w);
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 0);
}

struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn mapped_write_on_a_full_disk_fails_at_create_not_with_sigbus() {
    let dir = TestDir::new("mapped-enospc");
    let mnt = dir.join("small");
    fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED mapped_write_on_a_full_disk: cannot mount a 1 MiB tmpfs (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let err =
        MappedSegmentWriter::create(mnt.join("big.arrow"), &meta(), Layout::Columnar, 1 << 16, 4)
            .err()
            .expect("2 MiB cannot fit in 1 MiB");
    assert!(
        err.is_no_space() && err.to_string().contains("big.arrow"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 0, "partial file left");
}
