//! The progress display: what a terminal screen shows, what a log gets, what a callback sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::InMemoryTerm;
use pipeline::{BoxError, Graph, Progress, ProgressEvent, ProgressMode};

const PASSES: [(&str, f64); 3] = [("main", 0.5), ("aux", 0.3), ("check", 0.2)];

/// Runs a three-pass run on `progress`: `main` of unknown length, `aux` of 6 known chunks
/// over three stages, `check` without stages. `peek` sees the progress mid-run.
fn three_passes(progress: &Progress, peek: impl Fn(&str)) {
    progress.plan(&PASSES);
    progress.begin_pass("main");
    let mut g = Graph::new(1).named("main").with_progress(progress, None);
    let src = g.source_iter("execute", 0..5u64);
    g.run("collect", src, (), |_, _| {
        std::thread::sleep(Duration::from_millis(5));
        Ok::<_, BoxError>(())
    })
    .unwrap();
    peek("main");
    progress.end_pass("main");
    progress.begin_pass("aux");
    let mut g = Graph::new(1).named("aux").with_progress(progress, Some(6));
    let src = g.source_iter("execute", 0..6u64);
    let lde = g.map("lde", src, |x: u64| Ok::<_, BoxError>(x));
    g.run("commit", lde, (), |_, _| Ok::<_, BoxError>(()))
        .unwrap();
    peek("aux");
    progress.end_pass("aux");
    progress.begin_pass("check");
    progress.end_pass("check");
}

/// Non-empty lines of a screen.
fn lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn a_screen_shows_one_line_per_pass_and_an_overall_bar() {
    let term = InMemoryTerm::new(30, 100);
    let progress = Progress::bars_on(Box::new(term.clone()));
    let most = Mutex::new(0);
    three_passes(&progress, |pass| {
        let screen = term.contents();
        let shown = lines(&screen);
        let mut most = most.lock().unwrap();
        *most = shown.len().max(*most);
        assert!(
            shown.iter().any(|l| l.trim_start().starts_with(pass)),
            "{screen}"
        );
        assert!(!screen.contains("/0 "), "a total of 0 is shown:\n{screen}");
        assert!(
            shown.last().unwrap().trim_start().starts_with("total"),
            "{screen}"
        );
    });
    let screen = term.contents();
    let shown = lines(&screen);
    // 3 passes + the overall bar; never more than passes + 2.
    assert_eq!(shown.len(), 4, "{screen}");
    assert!(*most.lock().unwrap() <= PASSES.len() + 2);
    for pass in ["main", "aux", "check"] {
        let line = shown
            .iter()
            .find(|l| l.trim_start().starts_with(pass))
            .unwrap_or_else(|| panic!("no line for {pass}:\n{screen}"));
        assert!(line.contains("done in"), "{screen}");
    }
    assert!(
        screen.contains("5 chunks"),
        "main's chunks are counted:\n{screen}"
    );
    assert!(screen.contains("6 chunks"), "{screen}");
    assert!(
        shown[3].contains("100%") && shown[3].contains("done in"),
        "{screen}"
    );
    assert!(screen.lines().all(|l| l.chars().count() <= 100));
}

#[test]
fn an_unknown_total_shows_rows_not_a_bar() {
    let term = InMemoryTerm::new(30, 100);
    let progress = Progress::bars_on(Box::new(term.clone()));
    progress.plan(&PASSES);
    let stage = progress.stage("main", "execute", None);
    stage.advance(1, 1 << 20);
    stage.advance(1, 1 << 20);
    let screen = term.contents();
    let line = lines(&screen)[0].to_string();
    assert!(line.contains("2.10M rows"), "{screen}");
    assert!(line.contains("execute 2"), "{screen}");
    assert!(
        !line.contains("chunks"),
        "no total for a pass of unknown length: {line}"
    );
    assert!(screen.contains("ETA after pass 1"), "{screen}");
    // The total becomes known: the pass shows chunks out of it, the run an ETA.
    stage.set_total(4);
    let screen = term.contents();
    assert!(screen.contains("2/4 chunks (50%)"), "{screen}");
    assert!(screen.contains("ETA"), "{screen}");
    assert!(!screen.contains("after pass 1"), "{screen}");
}

#[test]
fn a_callback_sees_every_pass_and_a_growing_estimate() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let progress = Progress::callback(move |e| {
        let line = match e {
            ProgressEvent::PassStarted {
                pass,
                index,
                passes,
            } => {
                format!("start {pass} {}/{passes}", index.unwrap())
            }
            ProgressEvent::Advanced {
                pass,
                stage,
                chunks_done,
                chunks_total,
                run,
                ..
            } => format!(
                "advance {pass}/{stage} {chunks_done}/{chunks_total:?} {:.3}",
                run.fraction
            ),
            ProgressEvent::PassFinished { pass, run, .. } => {
                format!("end {pass} {:.3} {}", run.fraction, run.eta.is_some())
            }
            ProgressEvent::Notice { message } => format!("notice {message}"),
            _ => unreachable!("no other events"),
        };
        sink.lock().unwrap().push(line);
    });
    progress.println("spill dir on tmpfs");
    three_passes(&progress, |_| {});
    let events = events.lock().unwrap();
    assert_eq!(events[0], "notice spill dir on tmpfs");
    let starts: Vec<_> = events.iter().filter(|e| e.starts_with("start")).collect();
    assert_eq!(
        starts,
        ["start main 0/3", "start aux 1/3", "start check 2/3"]
    );
    assert!(
        events.contains(&"end main 0.500 true".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"advance main/execute 5/None 0.000".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"advance aux/commit 6/Some(6) 0.800".to_string()),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap(), "end check 1.000 false");
    let fractions: Vec<f64> = events
        .iter()
        .filter_map(|e| e.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{events:?}");
}

#[test]
fn log_lines_name_passes_and_the_run_eta() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    three_passes(&Progress::log_lines(buf.clone(), Duration::ZERO), |_| {});
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for line in [
        "[progress] main: started",
        "[progress] main/execute: 5 chunks",
        "[progress] aux/commit: 6/6 chunks (100%)",
        "[progress] main: done in",
        "run 50% done, ETA",
        "[progress] check: done in",
        "run 100% done",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
    assert!(!log.contains("/0 chunks"), "{log}");
}

#[test]
fn progress_mode_parses() {
    for (s, m) in [
        ("auto", ProgressMode::Auto),
        ("always", ProgressMode::Always),
        ("never", ProgressMode::Never),
    ] {
        assert_eq!(s.parse::<ProgressMode>().unwrap(), m);
        assert_eq!(m.to_string(), s);
    }
    assert!("sometimes".parse::<ProgressMode>().is_err());
    // Never draws nothing and costs nothing; it must still accept updates.
    let p = Progress::new(ProgressMode::Never);
    let s = p.stage("pass", "x", Some(1));
    s.advance(1, 10);
    s.finish();
    assert_eq!(s.done(), 1);
}

#[test]
fn a_failed_pass_says_so_and_a_progress_serves_the_next_run() {
    let term = InMemoryTerm::new(30, 100);
    let progress = Progress::bars_on(Box::new(term.clone()));
    progress.plan(&PASSES);
    let stale = progress.stage("main", "execute", None);
    stale.advance(1, 100);
    progress.fail_pass("main");
    let screen = term.contents();
    assert!(screen.contains("failed after"), "{screen}");
    assert!(screen.contains("failed in pass main"), "{screen}");
    // A second run on the same Progress starts afresh; the first run's handles are ignored.
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let progress = Progress::callback(move |e| {
        if let ProgressEvent::PassStarted { pass, .. } = e {
            seen.lock().unwrap().push(pass.to_string());
        }
    });
    for _ in 0..2 {
        progress.plan(&PASSES);
        let s = progress.stage("main", "execute", Some(2));
        s.advance(2, 10);
        progress.end_pass("main");
        assert_eq!(s.done(), 2);
        stale.advance(5, 5);
    }
    assert_eq!(*events.lock().unwrap(), ["main", "main"]);
    // Odd weights do not break the estimate.
    let p = Progress::callback(|e| {
        if let ProgressEvent::Advanced { run, .. } = e {
            assert!((0.0..=1.0).contains(&run.fraction), "{run:?}");
        }
    });
    p.plan(&[
        ("a", f64::NAN),
        ("b", f64::INFINITY),
        ("c", -1.0),
        ("d", 1e-300),
    ]);
    p.stage("d", "x", Some(1_000_000_000)).advance(1, 1);
}

#[test]
fn a_callback_may_call_back_into_the_progress() {
    let slot: Arc<Mutex<Option<Progress>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let progress = Progress::callback(move |e| {
        if let ProgressEvent::PassStarted { .. } = e
            && let Some(p) = inner.lock().unwrap().as_ref()
        {
            p.println(&format!("{p:?} saw a pass start"));
        }
    });
    *slot.lock().unwrap() = Some(progress.clone());
    three_passes(&progress, |_| {});
}
