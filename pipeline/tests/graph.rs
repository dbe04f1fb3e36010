use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline::{BoxError, Chunk, ChunkError, Emitter, Graph, PipelineError, Progress, Stage};

/// Keeps a running sum, emits (index, sum) per item and the total at end of stream.
struct RunningSum {
    sum: u64,
    finished: Arc<AtomicBool>,
}

impl Stage<u64, (u64, u64)> for RunningSum {
    fn process(&mut self, item: u64, out: &Emitter<(u64, u64)>) -> Result<(), BoxError> {
        self.sum += item;
        out.emit((item, self.sum))?;
        Ok(())
    }
    fn finish(&mut self, out: &Emitter<(u64, u64)>) -> Result<(), BoxError> {
        self.finished.store(true, Ordering::SeqCst);
        out.emit((u64::MAX, self.sum))?;
        Ok(())
    }
}

#[test]
fn items_flow_in_order_through_several_stages() {
    for capacity in [0, 1, 8] {
        let mut g = Graph::new(capacity);
        let src = g.source_iter("source", 0..500u64);
        let plus = g.map("plus-one", src, |x: u64| Ok::<_, BoxError>(x + 1));
        let finished = Arc::new(AtomicBool::new(false));
        let sums = g.stage(
            "running-sum",
            plus,
            RunningSum {
                sum: 0,
                finished: finished.clone(),
            },
        );
        // CPU work inside a stage uses rayon.
        let squared = g.map("rayon-square", sums, |(i, s): (u64, u64)| {
            use rayon::prelude::*;
            let check: u64 = (0..64u64).into_par_iter().map(|k| k + 1).sum();
            assert_eq!(check, 64 * 65 / 2);
            Ok::<_, BoxError>((i, s))
        });
        let out = g.collect("sink", squared).unwrap();
        assert_eq!(out.len(), 501, "capacity {capacity}");
        let mut sum = 0;
        for (k, &(i, s)) in out[..500].iter().enumerate() {
            sum += k as u64 + 1;
            assert_eq!((i, s), (k as u64 + 1, sum));
        }
        assert_eq!(out[500], (u64::MAX, sum), "end-of-stream item comes last");
        assert!(finished.load(Ordering::SeqCst));
    }
}

/// An item that counts how many of its kind are alive.
struct Tracked {
    index: u64,
    alive: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(index: u64, alive: &Arc<AtomicUsize>, max_alive: &Arc<AtomicUsize>) -> Tracked {
        let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
        max_alive.fetch_max(now, Ordering::SeqCst);
        Tracked {
            index,
            alive: alive.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Chunk for Tracked {
    fn chunk_label(&self) -> String {
        self.index.to_string()
    }
}

#[test]
fn backpressure_bounds_items_in_flight() {
    for capacity in [1usize, 4] {
        let alive = Arc::new(AtomicUsize::new(0));
        let max_alive = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new(capacity);
        let (a, m) = (alive.clone(), max_alive.clone());
        // A fast source: without backpressure all 300 items would be alive at once.
        let src = g.source("source", move |out| {
            for i in 0..300 {
                out.emit(Tracked::new(i, &a, &m))?;
            }
            Ok::<_, BoxError>(())
        });
        let s1 = g.map("pass-1", src, Ok::<_, BoxError>);
        let s2 = g.map("pass-2", s1, Ok::<_, BoxError>);
        // A slow sink.
        let count = g
            .run("slow-sink", s2, 0u64, |n, item: Tracked| {
                assert_eq!(item.index, *n);
                *n += 1;
                std::thread::sleep(Duration::from_micros(300));
                Ok::<_, BoxError>(())
            })
            .unwrap();
        assert_eq!(count, 300);
        // 3 channels of `capacity` items, plus at most one item held by each of the 4 stages.
        let bound = 3 * capacity + 4;
        let max = max_alive.load(Ordering::SeqCst);
        println!("capacity {capacity}: max items alive {max} (bound {bound})");
        assert!(
            max <= bound,
            "capacity {capacity}: {max} items alive, bound {bound}"
        );
        assert!(
            max > capacity,
            "backpressure test did not fill the channels ({max})"
        );
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn error_in_a_middle_stage_stops_everything_and_names_stage_and_chunk() {
    let started = Instant::now();
    let finished = Arc::new(AtomicBool::new(false));
    let mut g = Graph::new(2);
    // An endless source: only cancellation can stop it.
    let src = g.source("source", |out| {
        let mut i = 0u64;
        loop {
            out.emit(i)?;
            i += 1;
        }
        #[allow(unreachable_code)]
        Ok::<_, BoxError>(())
    });
    let lde = g.map("lde", src, |x: u64| {
        if x == 17 {
            Err(format!("cannot extend chunk {x}"))
        } else {
            Ok(x)
        }
    });
    let sums = g.stage(
        "running-sum",
        lde,
        RunningSum {
            sum: 0,
            finished: finished.clone(),
        },
    );
    let err = g
        .run("sink", sums, (), |_, _: (u64, u64)| {
            std::thread::sleep(Duration::from_millis(1));
            Ok::<_, BoxError>(())
        })
        .unwrap_err();
    assert_eq!(err.stage(), "lde");
    assert_eq!(err.chunk(), Some("17"));
    assert!(matches!(err, PipelineError::StageFailed { .. }));
    assert_eq!(
        err.to_string(),
        "stage `lde` failed at chunk 17: cannot extend chunk 17"
    );
    assert!(
        !finished.load(Ordering::SeqCst),
        "end-of-stream step ran after a failure"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_stage_blocked_on_a_full_channel_is_woken_by_a_failure_downstream() {
    // The source blocks on a full channel to a stage that never reads again; the sink fails.
    let mut g = Graph::new(1);
    let src = g.source_iter("source", 0..1_000_000u64);
    let stuck = g.map("slow", src, |x: u64| {
        if x == 3 {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok::<_, BoxError>(x)
    });
    let started = Instant::now();
    let err = g
        .run("sink", stuck, (), |_, x: u64| {
            if x == 2 { Err("sink full") } else { Ok(()) }
        })
        .unwrap_err();
    assert_eq!((err.stage(), err.chunk()), ("sink", Some("2")));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_panicking_stage_is_reported_as_an_error() {
    let mut g = Graph::new(1);
    let src = g.source_iter("source", 0..100u64);
    let bad = g.map("quotient", src, |x: u64| {
        if x == 5 {
            panic!("index out of bounds in chunk {x}");
        }
        Ok::<_, BoxError>(x)
    });
    let err = g.collect("sink", bad).unwrap_err();
    match &err {
        PipelineError::StagePanicked {
            stage,
            chunk,
            message,
        } => {
            assert_eq!(stage, "quotient");
            assert_eq!(chunk.as_deref(), Some("5"));
            assert!(message.contains("index out of bounds in chunk 5"));
        }
        other => panic!("expected a panic error, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("stage `quotient` panicked at chunk 5")
    );
}

#[test]
fn source_errors_can_name_their_chunk() {
    let mut g = Graph::new(4);
    let src = g.source("execute", |out| {
        for i in 0..10u64 {
            if i == 7 {
                return Err(ChunkError::new("cpu#7", "illegal instruction at pc 0x1000").into());
            }
            out.emit(i)?;
        }
        Ok::<_, BoxError>(())
    });
    let err = g.collect("sink", src).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stage `execute` failed at chunk cpu#7: illegal instruction at pc 0x1000"
    );

    // A panic in the sink itself is also caught.
    let mut g = Graph::new(4);
    let src = g.source_iter("source", 0..10u64);
    let err = g
        .run("sink", src, (), |_, x: u64| {
            assert!(x < 3, "sink saw {x}");
            Ok::<_, BoxError>(())
        })
        .unwrap_err();
    assert_eq!((err.stage(), err.chunk()), ("sink", Some("3")));
}

#[test]
fn stats_and_progress_log_lines() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let progress = Progress::log_lines(buf.clone(), Duration::ZERO);
    let mut g = Graph::new(2).with_progress(&progress, Some(20));
    let src = g.source_iter("execute", 0..20u64);
    let m = g.map("tracegen", src, |x: u64| Ok::<_, BoxError>(x * 2));
    let (sum, stats) = g
        .run_with_stats("commit", m, 0u64, |acc, x: u64| {
            *acc += x;
            Ok::<_, BoxError>(())
        })
        .unwrap();
    assert_eq!(sum, 380);
    let table = pipeline::graph::stats_table(&stats);
    assert!(
        table.starts_with("stage") && table.contains("tracegen"),
        "{table}"
    );
    let names: Vec<_> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["execute", "tracegen", "commit"]);
    assert_eq!(
        (
            stats[0].items_out,
            stats[1].items_in,
            stats[1].items_out,
            stats[2].items_in
        ),
        (20, 20, 20, 20)
    );
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for stage in ["execute", "tracegen", "commit"] {
        assert!(
            log.contains(&format!("[progress] {stage}: 20/20 chunks (100%)")),
            "{log}"
        );
    }
    assert!(log.contains("ETA"), "{log}");
    assert!(log.contains("done in"), "{log}");

    // A named graph labels its stages `<name>/<stage>`.
    let mut g = Graph::new(0).named("aux").with_progress(&progress, Some(3));
    let src = g.source_iter("execute", 0..3u64);
    g.collect("collect", src).unwrap();
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("[progress] aux/execute: 3/3 chunks (100%)"),
        "{log}"
    );
    assert!(
        log.contains("[progress] aux/collect: 3/3 chunks (100%)"),
        "{log}"
    );
}

#[test]
fn long_running_stage_code_can_poll_for_cancellation() {
    let mut g = Graph::new(1);
    let token = g.cancel_token();
    let src = g.source("execute", |out| {
        out.emit(0u64)?;
        out.emit(1u64)?;
        std::thread::sleep(Duration::from_millis(20));
        Err::<(), BoxError>("out of input".into())
    });
    let started = Instant::now();
    let slow = g.map("lde", src, move |x: u64| {
        // A long computation that checks the token between blocks of work.
        while started.elapsed() < Duration::from_secs(30) {
            token.check()?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok::<_, BoxError>(x)
    });
    let err = g.collect("sink", slow).unwrap_err();
    assert_eq!(err.to_string(), "stage `execute` failed: out of input");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_unconnected_output_is_an_error_not_a_hang() {
    let mut g = Graph::new(1);
    let dangling = g.source_iter("orphan", 0..100u64);
    drop(dangling);
    let src = g.source_iter("source", 0..100u64);
    let err = g.collect("sink", src).unwrap_err();
    assert_eq!(err.stage(), "orphan");
    assert!(
        err.to_string().contains("closed its input unexpectedly"),
        "{err}"
    );
}
