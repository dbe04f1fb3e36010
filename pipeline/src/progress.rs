//! Progress reporting for a run made of passes, each a graph of stages.
//!
//! On a terminal the display is one line per pass that has started and one overall bar:
//!
//! ```text
//!     main  done in 21 s, 64 chunks, 4.19M rows
//!      aux  ⠙  3s  12/64 chunks (18%)  execute 14 · aux 13 · commit 12 · collect 12
//!    total  [=========>                    ]  31%   25s elapsed · pass 2 of 8 · ETA 55s
//! ```
//!
//! A pass whose chunk count is not known yet (the first pass: the executor finds out how long
//! the program runs as it goes) shows a spinner with the rows done so far, their rate and its
//! elapsed time, never a bar with a made-up total. The overall bar weighs each pass by the share
//! of the run's time the driver expects it to take ([`Progress::plan`]); its ETA appears once a
//! pass with a known chunk count is under way. When stderr is not a terminal, the same facts
//! are written as periodic log lines (indicatif draws nothing there, and a CI log wants lines,
//! not redraws). A library user can take the events themselves ([`Progress::callback`]).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How to show progress (`--progress auto|always|never`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Lines redrawn in place when stderr is a terminal, periodic log lines otherwise.
    #[default]
    Auto,
    /// Redrawn lines on stderr even when it is not detected as a terminal (ANSI written as is).
    Always,
    /// No progress; notices (warnings) still go to stderr.
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

/// What a [`Progress::callback`] receives.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// A pass began: the `index`-th (from 0) of the plan's `passes`; `None` when the plan does
    /// not name it.
    PassStarted {
        pass: &'a str,
        index: Option<usize>,
        passes: usize,
    },
    /// A stage of `pass` finished more chunks.
    Advanced {
        pass: &'a str,
        stage: &'a str,
        chunks_done: u64,
        /// `None` while the pass's chunk count is unknown (the first pass).
        chunks_total: Option<u64>,
        rows_done: u64,
        run: RunEstimate,
    },
    /// A warning or note for the user (e.g. a spill dir on tmpfs, a leftover removed).
    Notice { message: &'a str },
    /// A pass ended; `failed` when the run stopped with an error during it.
    PassFinished {
        pass: &'a str,
        seconds: f64,
        failed: bool,
        run: RunEstimate,
    },
}

/// An event made under the locks and handed to the callback after they are released, so that
/// a callback may call back into the progress and never stalls the stages holding them.
enum Pending {
    Started {
        pass: String,
        index: Option<usize>,
        passes: usize,
    },
    Advanced {
        pass: String,
        stage: String,
        chunks_done: u64,
        chunks_total: Option<u64>,
        rows_done: u64,
        run: RunEstimate,
    },
    Notice(String),
    Finished {
        pass: String,
        seconds: f64,
        failed: bool,
        run: RunEstimate,
    },
}

impl Pending {
    fn event(&self) -> ProgressEvent<'_> {
        match self {
            Pending::Started {
                pass,
                index,
                passes,
            } => ProgressEvent::PassStarted {
                pass,
                index: *index,
                passes: *passes,
            },
            Pending::Advanced {
                pass,
                stage,
                chunks_done,
                chunks_total,
                rows_done,
                run,
            } => ProgressEvent::Advanced {
                pass,
                stage,
                chunks_done: *chunks_done,
                chunks_total: *chunks_total,
                rows_done: *rows_done,
                run: *run,
            },
            Pending::Notice(message) => ProgressEvent::Notice { message },
            Pending::Finished {
                pass,
                seconds,
                failed,
                run,
            } => ProgressEvent::PassFinished {
                pass,
                seconds: *seconds,
                failed: *failed,
                run: *run,
            },
        }
    }
}

/// How far the whole run is, by the plan's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunEstimate {
    /// Share of the run done, in [0, 1].
    pub fraction: f64,
    pub elapsed: Duration,
    /// Time left, once it can be told (a pass with a known chunk count has begun or ended).
    pub eta: Option<Duration>,
}

type LogSink = Arc<Mutex<dyn Write + Send>>;
type Callback = Arc<dyn Fn(&ProgressEvent<'_>) + Send + Sync>;

enum Output {
    Lines {
        multi: MultiProgress,
        overall: Option<ProgressBar>,
    },
    Log {
        sink: LogSink,
        every: Duration,
    },
    Callback(Callback),
    /// Nothing drawn; notices on stderr when `notices`.
    Off {
        notices: bool,
    },
}

struct StageState {
    name: String,
    total: Option<u64>,
    done: u64,
    rows: u64,
    start: Instant,
    last_log: Instant,
}

struct PassState {
    name: String,
    start: Instant,
    finished: Option<Duration>,
    failed: bool,
    stages: Vec<StageState>,
    line: Option<ProgressBar>,
}

impl PassState {
    /// Chunks done by the pass's last stage (its sink) and the pass's total, when known.
    fn chunks(&self) -> (u64, Option<u64>) {
        let last = self.stages.last();
        (last.map_or(0, |s| s.done), last.and_then(|s| s.total))
    }

    /// Share of the pass done; `None` while its chunk count is unknown.
    fn fraction(&self) -> Option<f64> {
        if self.finished.is_some() {
            return Some(1.0);
        }
        let mut sum = 0.0;
        for s in &self.stages {
            let total = s.total?;
            sum += if total == 0 {
                1.0
            } else {
                s.done.min(total) as f64 / total as f64
            };
        }
        (!self.stages.is_empty()).then(|| sum / self.stages.len() as f64)
    }

    fn rows(&self) -> u64 {
        self.stages.first().map_or(0, |s| s.rows)
    }

    /// The pass's line while it runs (after the spinner and the elapsed time).
    fn running_message(&self) -> String {
        let stages = self
            .stages
            .iter()
            .map(|s| format!("{} {}", s.name, s.done))
            .collect::<Vec<_>>()
            .join(" · ");
        if self.stages.is_empty() {
            return String::new();
        }
        match self.chunks() {
            (done, Some(total)) if total > 0 => format!(
                "{done}/{total} chunks ({:.0}%)  {stages}",
                100.0 * done as f64 / total as f64
            ),
            (_, Some(_)) => format!("no chunks  {stages}"),
            (_, None) => {
                let secs = self.start.elapsed().as_secs_f64().max(1e-9);
                format!(
                    "{} rows, {}  {stages}",
                    human_count(self.rows()),
                    human_rate(self.rows() as f64 / secs)
                )
            }
        }
    }

    fn finished_message(&self, took: Duration) -> String {
        let (done, _) = self.chunks();
        if self.failed {
            return format!("failed after {}", human_duration(took));
        }
        let mut s = format!("done in {}", human_duration(took));
        if !self.stages.is_empty() {
            s += &format!(", {done} chunks, {} rows", human_count(self.rows()));
        }
        s
    }
}

struct Board {
    /// Counts [`Progress::plan`] calls: stage handles of an earlier run are ignored.
    generation: u64,
    start: Instant,
    /// Pass names and their expected shares of the run's time.
    plan: Vec<(String, f64)>,
    passes: Vec<PassState>,
}

impl Board {
    fn pass_index(&self, name: &str) -> Option<usize> {
        self.passes.iter().position(|p| p.name == name)
    }

    fn weight(&self, name: &str) -> f64 {
        self.plan
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, w)| *w)
    }

    fn estimate(&self) -> RunEstimate {
        let elapsed = self.start.elapsed();
        let total: f64 = self.plan.iter().map(|(_, w)| w).sum();
        let mut done = 0.0;
        let mut known = false;
        for p in &self.passes {
            let weight = self.weight(&p.name);
            if let Some(f) = p.fraction() {
                done += weight * f;
                // Some planned work of known size is done: the rate can be told.
                known |= weight > 0.0 && f > 0.0;
            }
        }
        let fraction = if total > 0.0 {
            (done / total).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let eta = (known && fraction > 0.0 && fraction < 1.0)
            .then(|| {
                Duration::try_from_secs_f64(elapsed.as_secs_f64() * (1.0 - fraction) / fraction)
                    .ok()
            })
            .flatten();
        RunEstimate {
            fraction,
            elapsed,
            eta,
        }
    }

    fn pass_position(&self, name: &str) -> (Option<usize>, usize) {
        (
            self.plan.iter().position(|(n, _)| n == name),
            self.plan.len(),
        )
    }
}

struct Inner {
    output: Mutex<Output>,
    board: Mutex<Board>,
    /// Callback events in the order they were made (pushed under the board lock).
    queue: Mutex<VecDeque<Pending>>,
    /// Held by the one thread handing the queue to the callback.
    delivering: Mutex<()>,
}

/// The progress display of a run; cheap to clone, shared by all stages.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*lock(&self.inner.output) {
            Output::Lines { .. } => "lines",
            Output::Log { .. } => "log",
            Output::Callback(_) => "callback",
            Output::Off { .. } => "off",
        };
        write!(f, "Progress({kind})")
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const PASS_RUNNING: &str = "{prefix:>9.bold} {spinner} {elapsed:>4}  {wide_msg}";
const PASS_DONE: &str = "{prefix:>9.bold}  {wide_msg}";
const OVERALL: &str =
    "{prefix:>9.bold}  [{bar:30}] {percent:>3}%  {elapsed:>4} elapsed · {wide_msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("static template")
        .progress_chars("=> ")
}

impl Progress {
    fn with_output(output: Output) -> Progress {
        Progress {
            inner: Arc::new(Inner {
                output: Mutex::new(output),
                board: Mutex::new(Board {
                    generation: 0,
                    start: Instant::now(),
                    plan: Vec::new(),
                    passes: Vec::new(),
                }),
                queue: Mutex::new(VecDeque::new()),
                delivering: Mutex::new(()),
            }),
        }
    }

    pub fn new(mode: ProgressMode) -> Progress {
        match mode {
            ProgressMode::Never => Progress::with_output(Output::Off { notices: true }),
            ProgressMode::Auto if io::stderr().is_terminal() => {
                Progress::lines_on(ProgressDrawTarget::stderr())
            }
            ProgressMode::Auto => Progress::log_lines(io::stderr(), Duration::from_secs(10)),
            ProgressMode::Always => Progress::lines_on(ProgressDrawTarget::term_like_with_hz(
                Box::new(AnsiStderr),
                10,
            )),
        }
    }

    fn lines_on(target: ProgressDrawTarget) -> Progress {
        Progress::with_output(Output::Lines {
            multi: MultiProgress::with_draw_target(target),
            overall: None,
        })
    }

    /// Periodic log lines to `sink`, at most one per stage every `every` (plus start/end lines).
    pub fn log_lines(sink: impl Write + Send + 'static, every: Duration) -> Progress {
        Progress::with_output(Output::Log {
            sink: Arc::new(Mutex::new(sink)),
            every,
        })
    }

    /// Lines drawn on a custom terminal (e.g. `indicatif::InMemoryTerm` in tests).
    pub fn bars_on(term: Box<dyn TermLike>) -> Progress {
        Progress::lines_on(ProgressDrawTarget::term_like(term))
    }

    /// Every event handed to `f`, one at a time and in the order they happened (so the run
    /// fraction never goes down), on a stage's thread: usually the one that made the event,
    /// or one already busy handing events over. Nothing is drawn. `f` runs with no lock of the
    /// progress held (it may use this `Progress`), but stages wait for it: keep it short. A
    /// panic in `f` is a panic of that stage.
    pub fn callback(f: impl Fn(&ProgressEvent<'_>) + Send + Sync + 'static) -> Progress {
        Progress::with_output(Output::Callback(Arc::new(f)))
    }

    /// Nothing shown, not even notices (a library's default).
    pub fn hidden() -> Progress {
        Progress::with_output(Output::Off { notices: false })
    }

    /// Starts a run: the passes it will make, in order, with the share of its time each is
    /// expected to take (any positive scale; a negative, NaN or infinite weight counts as 0).
    /// The overall bar and the ETA follow these weights. A `Progress` may serve several runs
    /// one after another: each `plan` starts afresh.
    pub fn plan(&self, passes: &[(&str, f64)]) {
        let mut board = lock(&self.inner.board);
        board.plan = passes
            .iter()
            .map(|(n, w)| {
                (
                    n.to_string(),
                    if w.is_finite() && *w > 0.0 { *w } else { 0.0 },
                )
            })
            .collect();
        board.start = Instant::now();
        board.generation += 1;
        board.passes.clear();
        if let Output::Lines { overall, .. } = &mut *lock(&self.inner.output) {
            *overall = None;
        }
    }

    /// Queues `events` while `board` is still held (so that the queue keeps the order they
    /// were made in), releases it and hands the queue to the callback.
    fn release(&self, board: MutexGuard<'_, Board>, events: Vec<Pending>) {
        if !events.is_empty() {
            lock(&self.inner.queue).extend(events);
        }
        drop(board);
        self.deliver();
    }

    /// Hands the queued events to the callback in order, with no lock held but the delivery
    /// turn. A thread that finds another delivering leaves its events to that one, which looks
    /// at the queue again after giving up its turn; so a callback that calls back into the
    /// progress sees the events it causes right after it returns, not nested inside itself.
    fn deliver(&self) {
        if lock(&self.inner.queue).is_empty() {
            return;
        }
        let f = match &*lock(&self.inner.output) {
            Output::Callback(f) => Arc::clone(f),
            _ => return,
        };
        while !lock(&self.inner.queue).is_empty() {
            let turn = match self.inner.delivering.try_lock() {
                Ok(turn) => turn,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let next = lock(&self.inner.queue).pop_front();
                match next {
                    Some(e) => f(&e.event()),
                    None => break,
                }
            }
            drop(turn);
        }
    }

    /// A notice (a warning, a removed leftover) printed without garbling the lines: on stderr
    /// whatever the mode but [`Progress::hidden`], or as [`ProgressEvent::Notice`].
    pub fn println(&self, msg: &str) {
        let mut pending = None;
        match &*lock(&self.inner.output) {
            Output::Lines { multi, .. } => {
                let _ = multi.println(msg);
            }
            Output::Log { sink, .. } => {
                let _ = writeln!(lock(sink), "{msg}");
            }
            Output::Callback(_) => {
                pending = Some(Pending::Notice(msg.to_string()));
            }
            Output::Off { notices: true } => eprintln!("{msg}"),
            Output::Off { notices: false } => {}
        }
        if let Some(e) = pending {
            lock(&self.inner.queue).push_back(e);
        }
        self.deliver();
    }

    /// A pass begins (also implied by its first stage).
    pub fn begin_pass(&self, pass: &str) {
        let mut events = Vec::new();
        let mut board = lock(&self.inner.board);
        self.begin_locked(&mut board, pass, &mut events);
        self.release(board, events);
    }

    fn begin_locked(&self, board: &mut Board, pass: &str, events: &mut Vec<Pending>) -> usize {
        if let Some(i) = board.pass_index(pass) {
            return i;
        }
        let mut output = lock(&self.inner.output);
        let line = match &mut *output {
            Output::Lines { multi, overall } => {
                let overall = overall.get_or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(1000));
                    bar.set_style(style(OVERALL));
                    bar.set_prefix("total");
                    // Ticks keep the elapsed time moving through passes without stages.
                    bar.enable_steady_tick(Duration::from_millis(500));
                    bar
                });
                let line = multi.insert_before(overall, ProgressBar::new_spinner());
                line.set_style(style(PASS_RUNNING));
                line.set_prefix(pass.to_string());
                line.enable_steady_tick(Duration::from_millis(250));
                Some(line)
            }
            Output::Log { sink, .. } => {
                let _ = writeln!(lock(sink), "[progress] {pass}: started");
                None
            }
            Output::Callback(_) => {
                let (index, passes) = board.pass_position(pass);
                events.push(Pending::Started {
                    pass: pass.to_string(),
                    index,
                    passes,
                });
                None
            }
            Output::Off { .. } => None,
        };
        board.passes.push(PassState {
            name: pass.to_string(),
            start: Instant::now(),
            finished: None,
            failed: false,
            stages: Vec::new(),
            line,
        });
        drop(output);
        self.redraw(board, board.passes.len() - 1);
        board.passes.len() - 1
    }

    /// A pass ended: its line keeps its final state, the overall bar moves on.
    pub fn end_pass(&self, pass: &str) {
        self.finish_pass(pass, false);
    }

    /// The run stopped with an error during `pass`: its line and the overall bar say so.
    pub fn fail_pass(&self, pass: &str) {
        self.finish_pass(pass, true);
    }

    fn finish_pass(&self, pass: &str, failed: bool) {
        let mut events = Vec::new();
        let mut board = lock(&self.inner.board);
        let i = self.begin_locked(&mut board, pass, &mut events);
        if board.passes[i].finished.is_some() {
            return self.release(board, events);
        }
        let took = board.passes[i].start.elapsed();
        board.passes[i].finished = Some(took);
        board.passes[i].failed = failed;
        let run = board.estimate();
        match &*lock(&self.inner.output) {
            Output::Lines { .. } => {}
            Output::Log { sink, .. } => {
                let what = if failed { "failed after" } else { "done in" };
                let _ = writeln!(
                    lock(sink),
                    "[progress] {pass}: {what} {}; run {:.0}% done{}",
                    human_duration(took),
                    100.0 * run.fraction,
                    run.eta
                        .filter(|_| !failed)
                        .map(|e| format!(", ETA {}", human_duration(e)))
                        .unwrap_or_default()
                );
            }
            Output::Callback(_) => events.push(Pending::Finished {
                pass: pass.to_string(),
                seconds: took.as_secs_f64(),
                failed,
                run,
            }),
            Output::Off { .. } => {}
        }
        self.redraw(&board, i);
        self.release(board, events);
    }

    /// Redraws pass `i`'s line and the overall bar.
    fn redraw(&self, board: &Board, i: usize) {
        let output = lock(&self.inner.output);
        let Output::Lines { overall, .. } = &*output else {
            return;
        };
        let p = &board.passes[i];
        if let Some(line) = &p.line {
            match p.finished {
                Some(took) => {
                    line.set_style(style(PASS_DONE));
                    line.finish_with_message(p.finished_message(took));
                }
                None => line.set_message(p.running_message()),
            }
        }
        let Some(bar) = overall else {
            return;
        };
        let run = board.estimate();
        if p.failed {
            bar.abandon_with_message(format!("failed in pass {}", p.name));
            return;
        }
        let (index, passes) = board.pass_position(&p.name);
        if passes > 0 && index == Some(passes - 1) && p.finished.is_some() {
            bar.set_position(1000);
            bar.finish_with_message(format!("done in {}", human_duration(run.elapsed)));
            return;
        }
        bar.set_position((run.fraction * 1000.0).round() as u64);
        let mut msg = match index {
            Some(index) => format!("pass {} of {passes}", index + 1),
            None => p.name.clone(),
        };
        match run.eta {
            Some(eta) => msg += &format!(" · ETA {}", human_duration(eta)),
            None if passes > 1 => msg += " · ETA after pass 1",
            None => {}
        }
        bar.set_message(msg);
    }

    /// A progress handle for one stage of `pass`; `total` chunks if known.
    pub fn stage(&self, pass: &str, name: &str, total: Option<u64>) -> StageProgress {
        let mut events = Vec::new();
        let mut board = lock(&self.inner.board);
        let p = self.begin_locked(&mut board, pass, &mut events);
        let now = Instant::now();
        board.passes[p].stages.push(StageState {
            name: name.to_string(),
            total,
            done: 0,
            rows: 0,
            start: now,
            last_log: now,
        });
        let s = board.passes[p].stages.len() - 1;
        let generation = board.generation;
        self.release(board, events);
        StageProgress {
            progress: self.clone(),
            generation,
            pass: p,
            stage: s,
        }
    }

    fn update(&self, at: &StageProgress, f: impl FnOnce(&mut StageState), finished: bool) {
        let (pass, stage) = (at.pass, at.stage);
        let mut board = lock(&self.inner.board);
        if board.generation != at.generation {
            return; // a stage of an earlier run
        }
        f(&mut board.passes[pass].stages[stage]);
        let mut events = Vec::new();
        let mut logged = None;
        let draw = match &*lock(&self.inner.output) {
            Output::Lines { .. } => true,
            Output::Log { sink, every } => {
                let now = Instant::now();
                let p = &board.passes[pass];
                let s = &p.stages[stage];
                if finished || now - s.last_log >= *every {
                    let line = stage_log_line(&p.name, s, finished);
                    let _ = writeln!(lock(sink), "{line}");
                    logged = Some(now);
                }
                false
            }
            Output::Callback(_) => {
                let p = &board.passes[pass];
                let s = &p.stages[stage];
                events.push(Pending::Advanced {
                    pass: p.name.clone(),
                    stage: s.name.clone(),
                    chunks_done: s.done,
                    chunks_total: s.total,
                    rows_done: s.rows,
                    run: board.estimate(),
                });
                false
            }
            Output::Off { .. } => false,
        };
        if let Some(now) = logged {
            board.passes[pass].stages[stage].last_log = now;
        }
        if draw {
            self.redraw(&board, pass);
        }
        self.release(board, events);
    }
}

fn stage_log_line(pass: &str, s: &StageState, finished: bool) -> String {
    let elapsed = s.start.elapsed().as_secs_f64();
    let label = if pass.is_empty() {
        s.name.clone()
    } else {
        format!("{pass}/{}", s.name)
    };
    let mut line = format!("[progress] {label}: {}", s.done);
    match s.total {
        Some(total) if total > 0 => {
            line += &format!(
                "/{total} chunks ({:.0}%)",
                100.0 * s.done as f64 / total as f64
            )
        }
        _ => line += " chunks",
    }
    line += &format!(
        ", {} rows, {}",
        human_count(s.rows),
        human_rate(s.rows as f64 / elapsed.max(1e-9))
    );
    if finished {
        line += &format!(", done in {elapsed:.1}s");
    } else if let Some(total) = s.total
        && total > s.done
        && s.done > 0
    {
        let eta = elapsed / s.done as f64 * (total - s.done) as f64;
        line += &format!(", ETA {eta:.0}s");
    }
    line
}

fn human_rate(rows_per_sec: f64) -> String {
    match rows_per_sec {
        r if r >= 1e9 => format!("{:.2} Grows/s", r / 1e9),
        r if r >= 1e6 => format!("{:.2} Mrows/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} krows/s", r / 1e3),
        r => format!("{r:.0} rows/s"),
    }
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.0}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, s as u64 % 60)
    } else {
        format!("{}h{:02}m", (s / 3600.0) as u64, (s as u64 / 60) % 60)
    }
}

/// Progress of one stage; cheap to clone.
#[derive(Clone)]
pub struct StageProgress {
    progress: Progress,
    generation: u64,
    pass: usize,
    stage: usize,
}

impl StageProgress {
    /// Record `chunks` more chunks done, holding `rows` rows in total.
    pub fn advance(&self, chunks: u64, rows: u64) {
        self.progress.update(
            self,
            |s| {
                s.done += chunks;
                s.rows += rows;
            },
            false,
        );
    }

    /// Set the expected number of chunks once it is known.
    pub fn set_total(&self, total: u64) {
        self.progress.update(self, |s| s.total = Some(total), false);
    }

    pub fn done(&self) -> u64 {
        let board = lock(&self.progress.inner.board);
        if board.generation != self.generation {
            return 0;
        }
        board.passes[self.pass].stages[self.stage].done
    }

    /// The stage ended (its line is redrawn; in log mode a final line is written).
    pub fn finish(&self) {
        self.progress.update(self, |_| {}, true);
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
