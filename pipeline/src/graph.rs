//! The stage graph: named stages on their own threads, joined by bounded channels.
//!
//! A [`Graph`] is built from a source, any number of per-item or stateful stages, and a sink
//! that runs on the caller's thread. Nothing runs until [`Graph::run`]. The bounded channels are
//! the memory cap: a stage that gets ahead blocks in `emit` until the next one catches up, so at
//! most `capacity` items wait between two stages, plus the one each stage is working on.
//!
//! Order: every stage sees its input in the order the source emitted it (one thread per stage,
//! FIFO channels), so results do not depend on thread timing or channel capacity.
//!
//! Bound: with `k` stages (sink included) and channel capacity `c`, at most `(k - 1) * c + k`
//! items are alive at once (each channel full, each stage holding one item); the backpressure
//! test reaches exactly this bound.
//!
//! Failure handling: the first error or panic in any stage is recorded with the stage name and
//! the chunk it was working on, and a shared cancel signal wakes every stage blocked on a send or
//! a receive, so the whole graph stops within one item of work and every thread is joined.
//! A stage that sees its input end because of a cancellation does not run its end-of-stream
//! step, so a partial result never looks like a finished one.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use crate::progress::{Progress, StageProgress};

/// Errors raised by stage code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an item flowing through the graph says about itself: a label for error messages and
/// logs ("cpu#3"), and its row count for progress.
pub trait Chunk: Send + 'static {
    fn chunk_label(&self) -> String;
    fn chunk_rows(&self) -> u64 {
        0
    }
}

macro_rules! chunk_for_integers {
    ($($t:ty),*) => {$(
        impl Chunk for $t {
            fn chunk_label(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
chunk_for_integers!(u8, u16, u32, u64, usize, i32, i64);

impl<A: Chunk, B: Send + 'static> Chunk for (A, B) {
    fn chunk_label(&self) -> String {
        self.0.chunk_label()
    }
    fn chunk_rows(&self) -> u64 {
        self.0.chunk_rows()
    }
}

/// The graph is stopping because some stage failed; returned by [`Emitter::emit`]. Stage code
/// just propagates it with `?`; the runtime does not count it as a second failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pipeline cancelled")]
pub struct Cancelled;

/// An error that names the chunk it is about, for errors raised where the runtime cannot know
/// the chunk (in a source, or in a stage's end-of-stream step).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct ChunkError {
    pub chunk: String,
    #[source]
    pub source: BoxError,
}

impl ChunkError {
    pub fn new(chunk: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ChunkError {
            chunk: chunk.into(),
            source: source.into(),
        }
    }
}

fn at(chunk: &Option<String>) -> String {
    match chunk {
        Some(c) => format!(" at chunk {c}"),
        None => String::new(),
    }
}

/// Why a graph run failed: the first failure, naming the stage and chunk.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("stage `{stage}` failed{}: {source}", at(.chunk))]
    StageFailed {
        stage: String,
        chunk: Option<String>,
        #[source]
        source: BoxError,
    },
    #[error("stage `{stage}` panicked{}: {message}", at(.chunk))]
    StagePanicked {
        stage: String,
        chunk: Option<String>,
        message: String,
    },
    #[error("cannot start a thread for stage `{stage}`: {source}")]
    Spawn {
        stage: String,
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    pub fn stage(&self) -> &str {
        match self {
            PipelineError::StageFailed { stage, .. }
            | PipelineError::StagePanicked { stage, .. }
            | PipelineError::Spawn { stage, .. } => stage,
        }
    }

    pub fn chunk(&self) -> Option<&str> {
        match self {
            PipelineError::StageFailed { chunk, .. }
            | PipelineError::StagePanicked { chunk, .. } => chunk.as_deref(),
            PipelineError::Spawn { .. } => None,
        }
    }
}

/// State shared by all stages of one run: the first error and the cancel signal.
struct Shared {
    first_error: Mutex<Option<PipelineError>>,
    cancelled: AtomicBool,
    /// Dropped on the first failure: every `cancel_rx` then becomes ready, waking blocked stages.
    cancel_tx: Mutex<Option<Sender<()>>>,
    cancel_rx: Receiver<()>,
}

impl Shared {
    fn new() -> Arc<Shared> {
        let (tx, rx) = bounded(0);
        Arc::new(Shared {
            first_error: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            cancel_tx: Mutex::new(Some(tx)),
            cancel_rx: rx,
        })
    }

    /// Record a failure (the first one wins) and wake everybody. Called *before* the failing
    /// stage drops its channels, so a stage that sees a closed input can trust the flag.
    fn fail(&self, error: PipelineError) {
        {
            let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                *first = Some(error);
            }
        }
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn take_error(&self) -> Option<PipelineError> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Turn a stage's error into the recorded failure, unless it is just [`Cancelled`].
    fn fail_with(&self, stage: &str, chunk: Option<String>, err: BoxError) {
        if err.is::<Cancelled>() {
            return;
        }
        let (chunk, source) = match err.downcast::<ChunkError>() {
            Ok(ce) => (Some(ce.chunk), ce.source),
            Err(err) => (chunk, err),
        };
        self.fail(PipelineError::StageFailed {
            stage: stage.to_string(),
            chunk,
            source,
        });
    }

    fn fail_panic(&self, stage: &str, chunk: Option<String>, payload: Box<dyn Any + Send>) {
        self.fail(PipelineError::StagePanicked {
            stage: stage.to_string(),
            chunk,
            message: panic_message(&payload),
        });
    }
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Lets stage code that has no [`Emitter`] at hand (a `map` closure, a rayon loop) notice that
/// the graph is stopping and give up early.
#[derive(Clone)]
pub struct CancelToken(Arc<Shared>);

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// `Err(Cancelled)` once the graph is stopping, for use with `?`.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Per-stage counters, reported by [`Graph::run_with_stats`]: where a stage's time went tells
/// which stage is the bottleneck (busy) and which ones wait on it (blocked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageStats {
    pub name: String,
    pub items_in: u64,
    pub items_out: u64,
    /// Time in the stage's own code.
    pub busy: Duration,
    /// Time blocked waiting for input.
    pub waiting_for_input: Duration,
    /// Time blocked because the downstream channel was full (backpressure).
    pub waiting_for_output: Duration,
}

impl fmt::Display for StageStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {:>8} {:>8} {:>10.3} {:>10.3} {:>10.3}",
            self.name,
            self.items_in,
            self.items_out,
            self.busy.as_secs_f64(),
            self.waiting_for_input.as_secs_f64(),
            self.waiting_for_output.as_secs_f64()
        )
    }
}

/// The per-stage statistics as a table with a header.
pub fn stats_table(stats: &[StageStats]) -> String {
    let mut out = format!(
        "{:<14} {:>8} {:>8} {:>10} {:>10} {:>10}\n",
        "stage", "in", "out", "busy s", "wait in s", "wait out s"
    );
    for s in stats {
        out += &format!("{s}\n");
    }
    out
}

/// Where a stage sends its output. Blocks while the channel is full.
pub struct Emitter<T> {
    tx: Sender<T>,
    shared: Arc<Shared>,
    stage: Arc<str>,
    items_out: AtomicU64,
    blocked_nanos: AtomicU64,
    /// Set for sources, whose progress counts items emitted.
    progress: Option<StageProgress>,
}

impl<T: Chunk> Emitter<T> {
    /// Send one item downstream, waiting for room (this wait *is* the backpressure).
    /// Returns [`Cancelled`] if the graph is stopping; propagate it with `?`.
    pub fn emit(&self, item: T) -> Result<(), Cancelled> {
        if self.shared.is_cancelled() {
            return Err(Cancelled);
        }
        let rows = self.progress.as_ref().map(|_| item.chunk_rows());
        let start = Instant::now();
        let sent = match self.tx.try_send(item) {
            Ok(()) => true,
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
            Err(crossbeam_channel::TrySendError::Full(item)) => {
                let r = select! {
                    send(self.tx, item) -> r => r.is_ok(),
                    recv(self.shared.cancel_rx) -> _ => false,
                };
                self.blocked_nanos
                    .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                r
            }
        };
        if !sent {
            if !self.shared.is_cancelled() {
                // Downstream went away without a recorded failure: the output is unconnected.
                self.shared.fail(PipelineError::StageFailed {
                    stage: self.stage.to_string(),
                    chunk: None,
                    source: "downstream stage closed its input unexpectedly".into(),
                });
            }
            return Err(Cancelled);
        }
        self.items_out.fetch_add(1, Ordering::Relaxed);
        if let (Some(p), Some(rows)) = (&self.progress, rows) {
            p.advance(1, rows);
        }
        Ok(())
    }
}

impl<T> Emitter<T> {
    /// True once any stage has failed; long-running stage code may poll this.
    pub fn is_cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }

    fn blocked(&self) -> Duration {
        Duration::from_nanos(self.blocked_nanos.load(Ordering::Relaxed))
    }
}

/// A stage that keeps state across items and may emit any number of outputs per input and at
/// end of stream (e.g. an accumulator that emits a table once all chunks are seen).
pub trait Stage<In, Out>: Send + 'static {
    fn process(&mut self, item: In, out: &Emitter<Out>) -> Result<(), BoxError>;

    /// Called once after the input ended normally (never after a cancellation).
    fn finish(&mut self, out: &Emitter<Out>) -> Result<(), BoxError> {
        let _ = out;
        Ok(())
    }
}

/// The receiving end of a stage's output, to be connected to exactly one next stage.
#[must_use = "a stage output must be connected to a next stage or to the sink"]
pub struct Port<T> {
    rx: Receiver<T>,
}

type StageThread = Box<dyn FnOnce() -> StageStats + Send>;

/// Builder and runner of a stage graph. See the module docs.
pub struct Graph {
    capacity: usize,
    shared: Arc<Shared>,
    stages: Vec<(String, StageThread)>,
    progress: Option<(Progress, Option<u64>)>,
    /// Prefix of the progress labels (`<name>/<stage>`), e.g. the pass the graph runs.
    name: Option<String>,
}

impl Graph {
    /// A graph whose channels hold at most `capacity` items each (0 = rendezvous).
    pub fn new(capacity: usize) -> Graph {
        Graph {
            capacity,
            shared: Shared::new(),
            stages: Vec::new(),
            progress: None,
            name: None,
        }
    }

    /// Report the stages' progress as those of pass `name` (log lines `<name>/<stage>`; graphs
    /// run one after another reuse stage names).
    pub fn named(mut self, name: &str) -> Graph {
        self.name = Some(name.to_string());
        self
    }

    /// Report each stage's progress, each expecting `total_chunks` items.
    pub fn with_progress(mut self, progress: &Progress, total_chunks: Option<u64>) -> Graph {
        self.progress = Some((progress.clone(), total_chunks));
        self
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A token to poll for cancellation from inside stage code.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken(self.shared.clone())
    }

    fn stage_progress(&self, name: &str) -> Option<StageProgress> {
        self.progress
            .as_ref()
            .map(|(p, total)| p.stage(self.name.as_deref().unwrap_or(""), name, *total))
    }

    fn emitter<T>(&self, name: &str, progress: Option<StageProgress>) -> (Emitter<T>, Port<T>) {
        let (tx, rx) = bounded(self.capacity);
        let emitter = Emitter {
            tx,
            shared: self.shared.clone(),
            stage: name.into(),
            items_out: AtomicU64::new(0),
            blocked_nanos: AtomicU64::new(0),
            progress,
        };
        (emitter, Port { rx })
    }

    /// A stage with no input: `produce` emits items until it returns.
    pub fn source<T, E, F>(&mut self, name: &str, produce: F) -> Port<T>
    where
        T: Chunk,
        E: Into<BoxError>,
        F: FnOnce(&Emitter<T>) -> Result<(), E> + Send + 'static,
    {
        let (out, port) = self.emitter(name, self.stage_progress(name));
        let shared = self.shared.clone();
        let stage = name.to_string();
        let run = move || {
            let start = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| produce(&out))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => shared.fail_with(&stage, None, e.into()),
                Err(payload) => shared.fail_panic(&stage, None, payload),
            }
            if let Some(p) = &out.progress {
                p.finish();
            }
            StageStats {
                name: stage,
                items_in: 0,
                items_out: out.items_out.load(Ordering::Relaxed),
                busy: start.elapsed().saturating_sub(out.blocked()),
                waiting_for_input: Duration::ZERO,
                waiting_for_output: out.blocked(),
            }
        };
        self.stages.push((name.to_string(), Box::new(run)));
        port
    }

    /// A source that emits the items of an iterator.
    pub fn source_iter<T, I>(&mut self, name: &str, items: I) -> Port<T>
    where
        T: Chunk,
        I: IntoIterator<Item = T> + Send + 'static,
    {
        self.source(name, move |out| {
            for item in items {
                out.emit(item)?;
            }
            Ok::<_, Cancelled>(())
        })
    }

    /// A stage that turns each input item into one output item.
    pub fn map<In, Out, E, F>(&mut self, name: &str, input: Port<In>, mut f: F) -> Port<Out>
    where
        In: Chunk,
        Out: Chunk,
        E: Into<BoxError>,
        F: FnMut(In) -> Result<Out, E> + Send + 'static,
    {
        self.stage(
            name,
            input,
            MapStage(move |item: In, out: &Emitter<Out>| {
                let result = f(item).map_err(Into::into)?;
                out.emit(result)?;
                Ok(())
            }),
        )
    }

    /// A stateful stage (see [`Stage`]).
    pub fn stage<In, Out, S>(&mut self, name: &str, input: Port<In>, mut stage: S) -> Port<Out>
    where
        In: Chunk,
        Out: Chunk,
        S: Stage<In, Out>,
    {
        let (out, port) = self.emitter::<Out>(name, None);
        let progress = self.stage_progress(name);
        let shared = self.shared.clone();
        let name_owned = name.to_string();
        let run = move || {
            let stats = consume(
                &shared,
                &name_owned,
                input,
                progress.as_ref(),
                |item, label| match catch_unwind(AssertUnwindSafe(|| stage.process(item, &out))) {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        shared.fail_with(&name_owned, Some(label), e);
                        false
                    }
                    Err(payload) => {
                        shared.fail_panic(&name_owned, Some(label), payload);
                        false
                    }
                },
            );
            let mut stats = match stats {
                Some(stats) => stats,
                None => return stats_after_cancel(&name_owned, &out),
            };
            let t = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| stage.finish(&out))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => shared.fail_with(&name_owned, None, e),
                Err(payload) => shared.fail_panic(&name_owned, None, payload),
            }
            stats.busy += t.elapsed();
            stats.busy = stats.busy.saturating_sub(out.blocked());
            stats.items_out = out.items_out.load(Ordering::Relaxed);
            stats.waiting_for_output = out.blocked();
            stats
        };
        self.stages.push((name.to_string(), Box::new(run)));
        port
    }

    /// Run the graph; the sink folds every item of `input` into `init` on the calling thread.
    /// Returns the folded value, or the first failure of any stage.
    pub fn run<T, R, E, F>(
        self,
        name: &str,
        input: Port<T>,
        init: R,
        fold: F,
    ) -> Result<R, PipelineError>
    where
        T: Chunk,
        E: Into<BoxError>,
        F: FnMut(&mut R, T) -> Result<(), E>,
    {
        self.run_with_stats(name, input, init, fold).map(|(r, _)| r)
    }

    /// Run the graph and collect every item reaching the sink, in arrival order.
    pub fn collect<T: Chunk>(self, name: &str, input: Port<T>) -> Result<Vec<T>, PipelineError> {
        self.run(name, input, Vec::new(), |v, item| {
            v.push(item);
            Ok::<_, Cancelled>(())
        })
    }

    /// Like [`Graph::run`], also returning per-stage statistics in graph order (sink last).
    pub fn run_with_stats<T, R, E, F>(
        self,
        name: &str,
        input: Port<T>,
        init: R,
        mut fold: F,
    ) -> Result<(R, Vec<StageStats>), PipelineError>
    where
        T: Chunk,
        E: Into<BoxError>,
        F: FnMut(&mut R, T) -> Result<(), E>,
    {
        let shared = self.shared.clone();
        let sink_progress = self.stage_progress(name);
        let mut handles: Vec<(String, Option<JoinHandle<StageStats>>)> = Vec::new();
        for (stage, run) in self.stages {
            match std::thread::Builder::new()
                .name(format!("stage-{stage}"))
                .spawn(run)
            {
                Ok(h) => handles.push((stage, Some(h))),
                Err(source) => {
                    shared.fail(PipelineError::Spawn { stage, source });
                    break;
                }
            }
        }

        let mut acc = init;
        let sink_stats = if shared.is_cancelled() {
            drop(input);
            None
        } else {
            consume(
                &shared,
                name,
                input,
                sink_progress.as_ref(),
                |item, label| match catch_unwind(AssertUnwindSafe(|| fold(&mut acc, item))) {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        shared.fail_with(name, Some(label), e.into());
                        false
                    }
                    Err(payload) => {
                        shared.fail_panic(name, Some(label), payload);
                        false
                    }
                },
            )
        };

        let mut stats = Vec::new();
        for (stage, handle) in handles {
            match handle.expect("spawned").join() {
                Ok(s) => stats.push(s),
                // Stage code panics are caught per item; this is a panic in the runtime itself.
                Err(payload) => shared.fail_panic(&stage, None, payload),
            }
        }
        if let Some(err) = shared.take_error() {
            return Err(err);
        }
        stats.push(sink_stats.unwrap_or_default());
        Ok((acc, stats))
    }
}

/// Wraps a closure as a [`Stage`] without state of its own.
struct MapStage<F>(F);

impl<In, Out, F> Stage<In, Out> for MapStage<F>
where
    F: FnMut(In, &Emitter<Out>) -> Result<(), BoxError> + Send + 'static,
{
    fn process(&mut self, item: In, out: &Emitter<Out>) -> Result<(), BoxError> {
        (self.0)(item, out)
    }
}

/// Receive items until the input ends, calling `handle(item, label)` for each; `handle`
/// returns false to stop (after recording a failure). Returns `None` if the graph was
/// cancelled, `Some(stats)` if the input ended normally.
fn consume<T: Chunk>(
    shared: &Shared,
    name: &str,
    input: Port<T>,
    progress: Option<&StageProgress>,
    mut handle: impl FnMut(T, String) -> bool,
) -> Option<StageStats> {
    let mut stats = StageStats {
        name: name.to_string(),
        ..StageStats::default()
    };
    loop {
        let t = Instant::now();
        let next = match input.rx.try_recv() {
            Ok(item) => Some(item),
            Err(crossbeam_channel::TryRecvError::Disconnected) => None,
            Err(crossbeam_channel::TryRecvError::Empty) => select! {
                recv(input.rx) -> msg => msg.ok(),
                recv(shared.cancel_rx) -> _ => None,
            },
        };
        stats.waiting_for_input += t.elapsed();
        if shared.is_cancelled() {
            return None;
        }
        let Some(item) = next else {
            if let Some(p) = progress {
                p.finish();
            }
            return Some(stats);
        };
        stats.items_in += 1;
        let rows = item.chunk_rows();
        let label = item.chunk_label();
        let t = Instant::now();
        let keep_going = handle(item, label);
        stats.busy += t.elapsed();
        if !keep_going {
            return None;
        }
        if let Some(p) = progress {
            p.advance(1, rows);
        }
    }
}

fn stats_after_cancel<T>(name: &str, out: &Emitter<T>) -> StageStats {
    StageStats {
        name: name.to_string(),
        items_out: out.items_out.load(Ordering::Relaxed),
        waiting_for_output: out.blocked(),
        ..StageStats::default()
    }
}
