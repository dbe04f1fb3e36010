use std::io;
use std::sync::{Arc, Mutex};

use indicatif::TermLike;
use pipeline::{BoxError, Graph, Progress, ProgressMode};

/// A fake terminal that records what indicatif draws.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<String>>);

impl TermLike for Recorder {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        let mut out = self.0.lock().unwrap();
        out.push_str(s);
        out.push('\n');
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn one_bar_per_stage() {
    let term = Recorder::default();
    let progress = Progress::bars_on(Box::new(term.clone()));
    let mut g = Graph::new(1).with_progress(&progress, Some(6));
    let src = g.source_iter("execute", 0..6u64);
    let lde = g.map("lde", src, |x: u64| Ok::<_, BoxError>(x));
    g.run("commit", lde, (), |_, _| Ok::<_, BoxError>(()))
        .unwrap();
    let drawn = term.0.lock().unwrap().clone();
    for stage in ["execute", "lde", "commit"] {
        assert!(drawn.contains(stage), "no bar for {stage}:\n{drawn}");
    }
    assert!(drawn.contains("6/6 chunks"), "{drawn}");
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
    let s = p.stage("x", Some(1));
    s.advance(1, 10);
    s.finish();
    assert_eq!(s.done(), 1);
}
