//! Progress reporting: one bar per stage (chunks done / total, rows/s, ETA) on a terminal, or
//! plain periodic log lines when stderr is not a terminal (indicatif draws nothing there, and a
//! CI log wants lines, not redraws).

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How to show progress (`--progress auto|always|never`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, periodic log lines otherwise.
    #[default]
    Auto,
    /// Bars on stderr even when it is not detected as a terminal (ANSI written as is).
    Always,
    /// Nothing.
    Never,
}

impl FromStr for ProgressMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ProgressMode::Auto),
            "always" => Ok(ProgressMode::Always),
            "never" => Ok(ProgressMode::Never),
            other => Err(format!(
                "unknown progress mode `{other}` (auto, always, never)"
            )),
        }
    }
}

impl fmt::Display for ProgressMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgressMode::Auto => "auto",
            ProgressMode::Always => "always",
            ProgressMode::Never => "never",
        })
    }
}

type LogSink = Arc<Mutex<dyn Write + Send>>;

#[derive(Clone)]
enum Output {
    Bars(MultiProgress),
    Log { sink: LogSink, every: Duration },
    Off,
}

/// The progress display of a run; cheap to clone, shared by all stages.
#[derive(Clone)]
pub struct Progress {
    output: Output,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.output {
            Output::Bars(_) => "bars",
            Output::Log { .. } => "log",
            Output::Off => "off",
        };
        write!(f, "Progress({kind})")
    }
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        let output = match mode {
            ProgressMode::Never => Output::Off,
            ProgressMode::Auto if io::stderr().is_terminal() => {
                Output::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            ProgressMode::Auto => Output::Log {
                sink: Arc::new(Mutex::new(io::stderr())),
                every: Duration::from_secs(10),
            },
            ProgressMode::Always => Output::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::term_like_with_hz(Box::new(AnsiStderr), 10),
            )),
        };
        Progress { output }
    }

    /// Periodic log lines to `sink`, at most one per stage every `every` (plus start/end lines).
    pub fn log_lines(sink: impl Write + Send + 'static, every: Duration) -> Progress {
        Progress {
            output: Output::Log {
                sink: Arc::new(Mutex::new(sink)),
                every,
            },
        }
    }

    /// Bars drawn on a custom terminal (e.g. `indicatif::InMemoryTerm` in tests).
    pub fn bars_on(term: Box<dyn TermLike>) -> Progress {
        Progress {
            output: Output::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::term_like(term),
            )),
        }
    }

    pub fn hidden() -> Progress {
        Progress {
            output: Output::Off,
        }
    }

    /// Print a message without garbling the bars.
    pub fn println(&self, msg: &str) {
        match &self.output {
            Output::Bars(m) => {
                let _ = m.println(msg);
            }
            Output::Log { sink, .. } => {
                let _ = writeln!(sink.lock().unwrap_or_else(|e| e.into_inner()), "{msg}");
            }
            Output::Off => {}
        }
    }

    /// A progress handle for one stage; `total` chunks if known.
    pub fn stage(&self, name: &str, total: Option<u64>) -> StageProgress {
        let state = Arc::new(StageState {
            name: name.to_string(),
            total: AtomicU64::new(total.unwrap_or(0)),
            done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            start: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        });
        let view = match &self.output {
            Output::Bars(multi) => {
                let bar = multi.add(ProgressBar::new(total.unwrap_or(0)));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>18.bold} [{bar:30}] {pos}/{len} chunks  {msg}  ETA {eta}",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(name.to_string());
                View::Bar(bar)
            }
            Output::Log { sink, every } => View::Log {
                sink: sink.clone(),
                every: *every,
            },
            Output::Off => View::Off,
        };
        StageProgress { state, view }
    }
}

struct StageState {
    name: String,
    total: AtomicU64,
    done: AtomicU64,
    rows: AtomicU64,
    start: Instant,
    last_log: Mutex<Instant>,
}

impl StageState {
    fn rows_per_sec(&self) -> f64 {
        self.rows.load(Ordering::Relaxed) as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    fn line(&self, finished: bool) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut s = format!("[progress] {}: {done}", self.name);
        if total > 0 {
            s += &format!(
                "/{total} chunks ({:.0}%)",
                100.0 * done as f64 / total as f64
            );
        } else {
            s += " chunks";
        }
        s += &format!(", {}", human_rate(self.rows_per_sec()));
        if finished {
            s += &format!(", done in {elapsed:.1}s");
        } else if total > done && done > 0 {
            let eta = elapsed / done as f64 * (total - done) as f64;
            s += &format!(", ETA {eta:.0}s");
        }
        s
    }
}

fn human_rate(rows_per_sec: f64) -> String {
    match rows_per_sec {
        r if r >= 1e9 => format!("{:.2} Grows/s", r / 1e9),
        r if r >= 1e6 => format!("{:.2} Mrows/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} krows/s", r / 1e3),
        r => format!("{r:.0} rows/s"),
    }
}

#[derive(Clone)]
enum View {
    Bar(ProgressBar),
    Log { sink: LogSink, every: Duration },
    Off,
}

/// Progress of one stage; cheap to clone.
#[derive(Clone)]
pub struct StageProgress {
    state: Arc<StageState>,
    view: View,
}

impl StageProgress {
    /// Record `chunks` more chunks done, holding `rows` rows in total.
    pub fn advance(&self, chunks: u64, rows: u64) {
        let s = &self.state;
        s.done.fetch_add(chunks, Ordering::Relaxed);
        s.rows.fetch_add(rows, Ordering::Relaxed);
        match &self.view {
            View::Bar(bar) => {
                bar.inc(chunks);
                bar.set_message(human_rate(s.rows_per_sec()));
            }
            View::Log { sink, every } => {
                let mut last = s.last_log.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    let _ = writeln!(
                        sink.lock().unwrap_or_else(|e| e.into_inner()),
                        "{}",
                        s.line(false)
                    );
                }
            }
            View::Off => {}
        }
    }

    /// Set the expected number of chunks once it is known.
    pub fn set_total(&self, total: u64) {
        self.state.total.store(total, Ordering::Relaxed);
        if let View::Bar(bar) = &self.view {
            bar.set_length(total);
        }
    }

    pub fn done(&self) -> u64 {
        self.state.done.load(Ordering::Relaxed)
    }

    /// The stage ended: leave the bar drawn at its final state, or log a final line.
    pub fn finish(&self) {
        match &self.view {
            View::Bar(bar) => bar.finish(),
            View::Log { sink, .. } => {
                let _ = writeln!(
                    sink.lock().unwrap_or_else(|e| e.into_inner()),
                    "{}",
                    self.state.line(true)
                );
            }
            View::Off => {}
        }
    }
}

/// Stderr as a terminal whether or not it is one, for [`ProgressMode::Always`].
#[derive(Debug)]
struct AnsiStderr;

impl AnsiStderr {
    fn put(&self, s: &str) -> io::Result<()> {
        io::stderr().write_all(s.as_bytes())
    }
}

impl TermLike for AnsiStderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100)
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}A"))
        } else {
            Ok(())
        }
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}B"))
        } else {
            Ok(())
        }
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}C"))
        } else {
            Ok(())
        }
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}D"))
        } else {
            Ok(())
        }
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
