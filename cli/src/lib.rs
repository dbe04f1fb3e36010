//! stark-pipe as a library: prove that a RISC-V program ran to completion on an input and
//! wrote an output, and check such proofs.
//!
//! A program is a static RV32IM ELF that reads its private input from fd 0, writes its public
//! output to fd 1 and exits (the guest ABI in `docs/guests.md`). [`Prover`] executes it and
//! proves the run through the out-of-core pipeline (or in RAM); [`verify`] checks a [`Proof`]
//! against the program's ELF and returns what it proves.
//!
//! ```
//! use stark_pipe::{Program, Proof, Prover, verify};
//!
//! let elf = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/elf/fib_iterative.elf");
//! let program = Program::open(elf)?;
//! // fib_iterative reads n as one little-endian word and prints fib(n) mod 2^32.
//! let proof = Prover::new(program.clone()).input(30u32.to_le_bytes()).prove()?;
//! let verified = verify(&Proof::from_bytes(&proof.to_bytes())?, &program)?;
//! assert_eq!(verified.output, b"832040\n");
//! assert_eq!(verified.exit_code, 0);
//! assert!(verified.security_bits >= 100);
//! # Ok::<(), stark_pipe::Error>(())
//! ```
//!
//! By default every table is one instance (a few past [`Prover::instance_rows`]), built out of
//! core in blocks of the chunk rows, and the proof is the same bytes whatever the settings that
//! do not enter the statement (chunk rows, spill dir, in RAM or not): the instance rows and the
//! security parameters shape it, and the verifier accepts any it deems secure enough
//! ([`verify_with`]). A [`Prover::chunked`] run makes every chunk its own instance instead (a
//! proof that grows with the run, the same bytes for any store policy and channel capacity).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use formats::ProofFile;
use pipeline::{Keep, Metrics, SpillDir, SpillOptions};
use stark::{ProofParams, VerifierParams};
use vm::air::verify_execution;

pub use pipeline::{Progress, ProgressEvent, ProgressMode, RunEstimate, RunSummary};

pub use stages::{Store, TableWidth};
pub use vm::air::Statement;

/// Why proving or verifying failed. Each message names the file, pass, stage or chunk at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ELF cannot be read or is not a program stark-pipe can run.
    #[error("{0}")]
    Program(String),
    /// A setting is out of range (chunk rows, security parameters, memory budget).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The spill dir cannot be set up, or closed at the end of the run.
    #[error(transparent)]
    Spill(#[from] pipeline::SpillError),
    /// Executing or proving failed; with [`Prover::keep_spill`], the spill dir is kept (and
    /// `stark-pipe inspect` explains it).
    #[error("cannot prove {program}: {message}{}", kept_note(.spill_dir_kept))]
    Prove {
        program: String,
        message: String,
        spill_dir_kept: Option<PathBuf>,
    },
    /// A proof file cannot be read, parsed or written.
    #[error(transparent)]
    File(#[from] formats::FormatError),
    /// The bytes are a proof file whose statement or proof section does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The proof is well formed but does not prove anything about this program.
    #[error("{proof} is not a valid proof for {program}: {reason}")]
    Refused {
        proof: String,
        program: String,
        reason: vm::air::ExecutionError,
    },
}

fn kept_note(dir: &Option<PathBuf>) -> String {
    dir.as_ref()
        .map(|d| format!(" (spill dir kept: {})", d.display()))
        .unwrap_or_default()
}

/// A loaded program: its ELF image and decoded code.
#[derive(Clone)]
pub struct Program {
    inner: Arc<vm::Program>,
    name: String,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Program({})", self.name)
    }
}

impl Program {
    /// Loads the ELF at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Program, Error> {
        let path = path.as_ref();
        let inner = vm::Program::from_file(path).map_err(|e| {
            Error::Program(format!(
                "{} is not a program stark-pipe can run: {e}",
                path.display()
            ))
        })?;
        Ok(Program {
            inner: Arc::new(inner),
            name: path.display().to_string(),
        })
    }

    /// Loads an ELF from its bytes; `name` is used in messages.
    pub fn from_elf(bytes: &[u8], name: &str) -> Result<Program, Error> {
        let inner = vm::Program::from_elf(bytes).map_err(|e| {
            Error::Program(format!("{name} is not a program stark-pipe can run: {e}"))
        })?;
        Ok(Program {
            inner: Arc::new(inner),
            name: name.to_string(),
        })
    }

    /// The BLAKE3 digest of the program image that proofs name.
    pub fn digest(&self) -> [u8; 32] {
        vm::air::program_digest(&self.inner)
    }

    /// The path or name it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The executor's view, for the crates below this one.
    #[doc(hidden)]
    pub fn vm(&self) -> &Arc<vm::Program> {
        &self.inner
    }
}

/// How many rows each chunk holds.
#[derive(Clone, Copy, Debug)]
enum ChunkSize {
    Rows(usize),
    Budget(u64),
    Default,
}

/// Proves runs of one program. Every setting has a default; [`Prover::prove`] runs it.
pub struct Prover {
    program: Program,
    input: Vec<u8>,
    chunk: ChunkSize,
    store: Option<Store>,
    spill_dir: Option<PathBuf>,
    keep_spill: bool,
    spill_limit: Option<u64>,
    verify_segments: bool,
    channel_capacity: usize,
    params: ProofParams,
    max_cycles: u64,
    progress: Progress,
    in_memory: bool,
    instance_rows: Option<usize>,
    chunked: bool,
    resume: Option<PathBuf>,
    output: Option<PathBuf>,
}

/// Rows per block when neither rows nor a memory budget is given: the fastest and the lightest
/// of a single-instance run (fib_iterative, 1M instructions: 18.6 s at 236 MiB peak RssAnon;
/// 2^18 rows, 20.4 s at 397 MiB; 2^20 rows, 26.4 s at 810 MiB).
pub const DEFAULT_CHUNK_ROWS: usize = 1 << 17;

/// Rows per chunk of a [`Prover::chunked`] run when neither rows nor a memory budget is given:
/// its proof shrinks as its chunks grow (fib_iterative, 4M instructions: 1.76 MB at 2^20 rows,
/// 7.6 MB at 2^17).
pub const DEFAULT_CHUNKED_ROWS: usize = 1 << 20;

/// Where a chunked run's passes join its chunks' trees: 2^6 rows, 2^7 digests (4 KiB) kept
/// per chunk and pass.
pub const CHUNKED_LOG_JOIN_ROWS: u8 = 6;

/// The tallest instance the verifier accepts ([`VerifierParams::max_log_height`]; 2^26): the
/// default instance rows, so that only a table taller than that is split.
pub fn max_instance_rows() -> usize {
    1 << VerifierParams::default().max_log_height
}

impl Prover {
    pub fn new(program: Program) -> Prover {
        Prover {
            program,
            input: Vec::new(),
            chunk: ChunkSize::Default,
            store: None,
            spill_dir: None,
            keep_spill: false,
            spill_limit: None,
            verify_segments: false,
            channel_capacity: 0,
            params: ProofParams::default(),
            max_cycles: 1 << 40,
            progress: Progress::hidden(),
            in_memory: false,
            instance_rows: None,
            chunked: false,
            resume: None,
            output: None,
        }
    }

    /// The private input stream (fd 0). Default: empty.
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Prover {
        self.input = bytes.into();
        self
    }

    /// Rows per chunk (a power of two >= 2): memory grows with it. Default: 2^17
    /// ([`DEFAULT_CHUNK_ROWS`]; chunked, [`DEFAULT_CHUNKED_ROWS`]), lowered to fit a cgroup
    /// memory limit. A single-instance run's blocks have at least the square root of the
    /// instance rows (2^13 for 2^26: [`stages::instance::min_block_rows`]).
    pub fn chunk_rows(mut self, rows: usize) -> Prover {
        self.chunk = ChunkSize::Rows(rows);
        self
    }

    /// Memory to plan for, in bytes: picks the chunk rows (capped by a cgroup limit).
    pub fn mem_budget(mut self, bytes: u64) -> Prover {
        self.chunk = ChunkSize::Budget(bytes);
        self
    }

    /// What the first passes of a [`Prover::chunked`] run spill for the later ones instead of
    /// recomputing it (default [`Store::default`]). A single-instance run keeps every LDE.
    pub fn store(mut self, store: Store) -> Prover {
        self.store = Some(store);
        self
    }

    /// Where segments are spilled. Default: a fresh temp dir on disk (never tmpfs).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Prover {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Keep the spill dir after the run (see `stark-pipe inspect DIR`).
    pub fn keep_spill(mut self, keep: bool) -> Prover {
        self.keep_spill = keep;
        self
    }

    /// Most bytes the spill dir may hold.
    pub fn spill_limit(mut self, bytes: u64) -> Prover {
        self.spill_limit = Some(bytes);
        self
    }

    /// Hash every segment against its checksum when it is read back.
    pub fn verify_segments(mut self, yes: bool) -> Prover {
        self.verify_segments = yes;
        self
    }

    /// Chunks waiting between two stages of a [`Prover::chunked`] run (default 0: hand-over).
    pub fn channel_capacity(mut self, n: usize) -> Prover {
        self.channel_capacity = n;
        self
    }

    /// FRI queries and proof-of-work bits (defaults 84 and 16: 100 conjectured bits).
    pub fn security(mut self, queries: u16, pow_bits: u8) -> Prover {
        self.params.num_queries = queries;
        self.params.pow_bits = pow_bits;
        self
    }

    /// Fail after this many instructions (default 2^40).
    pub fn max_cycles(mut self, n: u64) -> Prover {
        self.max_cycles = n;
        self
    }

    /// Hand every progress event to `f`, notices (warnings) included (called on the pipeline's
    /// threads; it must not block for long). Replaces [`Prover::progress`].
    pub fn on_progress(mut self, f: impl Fn(&ProgressEvent<'_>) + Send + Sync + 'static) -> Prover {
        self.progress = Progress::callback(f);
        self
    }

    /// Report progress through `progress` (the command line passes `Progress::new(mode)`: lines
    /// or log lines on stderr). Default: nothing shown. Replaces [`Prover::on_progress`].
    pub fn progress(mut self, progress: Progress) -> Prover {
        self.progress = progress;
        self
    }

    /// Prove with every instance in RAM (the reference prover): the same proof bytes.
    pub fn in_memory(mut self, yes: bool) -> Prover {
        self.in_memory = yes;
        self
    }

    /// The most rows of one instance (a power of two; default [`max_instance_rows`]): every
    /// table is one instance, split into several only when it is taller, built out of core in
    /// blocks of the chunk rows, so the proof does not depend on the chunk rows.
    pub fn instance_rows(mut self, rows: usize) -> Prover {
        self.instance_rows = Some(rows);
        self
    }

    /// Make every chunk of every table its own instance (the chunked pipeline): faster on
    /// short runs, but the proof grows with the run and depends on the chunk rows; the only
    /// mode with [`Prover::store`] policies and [`Prover::channel_capacity`].
    pub fn chunked(mut self, yes: bool) -> Prover {
        self.chunked = yes;
        self
    }

    /// Continue the single-instance run that was killed (or failed) with its spill dir at `dir`
    /// instead of starting afresh: the program, input and settings must be the first run's
    /// (checked), the passes it finished are not done again, and the proof is the same bytes.
    /// Not with [`Prover::chunked`] or [`Prover::in_memory`].
    pub fn resume(mut self, dir: impl Into<PathBuf>) -> Prover {
        self.resume = Some(dir.into());
        self
    }

    /// Write the proof file to `path` (through a temporary name) as part of proving: before
    /// the spill dir is closed, so that a process killed at any moment leaves either the whole
    /// proof or a spill dir that [`Prover::resume`] continues. A failed write fails the run
    /// like any pass, its finished passes kept for a resume.
    pub fn output(mut self, path: impl Into<PathBuf>) -> Prover {
        self.output = Some(path.into());
        self
    }

    fn default_chunk_rows(&self) -> usize {
        if self.chunked {
            DEFAULT_CHUNKED_ROWS
        } else {
            DEFAULT_CHUNK_ROWS
        }
    }

    fn resolved_instance_rows(&self) -> usize {
        self.instance_rows.unwrap_or_else(max_instance_rows)
    }

    /// Where each pass joins its instances' trees (`log_join_rows`, see `stark::pass_tree`): a
    /// single-instance run at the smallest block its instance rows allow (2^13 for 2^26), the
    /// highest layer every chunk size keeps, so that the proof does not depend on the chunk
    /// rows; a chunked run at [`CHUNKED_LOG_JOIN_ROWS`], since it keeps each chunk's nodes there
    /// in memory until its pass ends.
    fn log_join_rows(&self) -> u8 {
        if self.chunked {
            CHUNKED_LOG_JOIN_ROWS
        } else {
            stages::instance::min_block_rows(self.resolved_instance_rows()).trailing_zeros() as u8
        }
    }

    /// The chunk rows this prover will use: a single-instance run's are at least
    /// [`stages::instance::min_block_rows`] of its instance rows.
    pub fn resolved_chunk_rows(&self) -> Result<usize, Error> {
        let rows = self.requested_chunk_rows()?;
        if self.chunked {
            return Ok(rows);
        }
        Ok(rows.max(stages::instance::min_block_rows(
            self.resolved_instance_rows(),
        )))
    }

    fn requested_chunk_rows(&self) -> Result<usize, Error> {
        match self.chunk {
            ChunkSize::Rows(rows) if rows >= 2 && rows.is_power_of_two() => Ok(rows),
            ChunkSize::Rows(rows) => Err(Error::Settings(format!(
                "chunk rows must be a power of two >= 2 (e.g. 2^20), not {rows}"
            ))),
            ChunkSize::Budget(bytes) => {
                let limit = pipeline::MemoryLimit::read();
                let bytes = match limit.cgroup {
                    Some(c) => bytes.min(c / 10 * 8),
                    None => bytes,
                };
                stages::budget::chunk_rows_for_budget(
                    self.program.vm(),
                    &self.params,
                    self.channel_capacity,
                    bytes,
                )
                .map_err(|e| Error::Settings(format!("memory budget: {e}")))
            }
            ChunkSize::Default => match pipeline::MemoryLimit::read().cgroup {
                Some(c) => stages::budget::chunk_rows_for_budget(
                    self.program.vm(),
                    &self.params,
                    self.channel_capacity,
                    c / 10 * 8,
                )
                .map(|rows| rows.min(self.default_chunk_rows()))
                .map_err(|e| Error::Settings(format!("cgroup memory limit: {e}"))),
                None => Ok(self.default_chunk_rows()),
            },
        }
    }

    /// Executes the program and proves the run. The proof is checked by the verifier before
    /// it is returned.
    pub fn prove(mut self) -> Result<Proof, Error> {
        self.params.log_join_rows = self.log_join_rows();
        self.params
            .validate()
            .map_err(|e| Error::Settings(format!("proof parameters: {e}")))?;
        let chunk_rows = self.resolved_chunk_rows()?;
        let instance_rows = self.resolved_instance_rows();
        if self.chunked {
            if self.instance_rows.is_some() {
                return Err(Error::Settings(
                    "a chunked run's instances are its chunks: give the chunk rows, not the \
                     instance rows"
                        .into(),
                ));
            }
        } else {
            check_instance_rows(instance_rows, chunk_rows)?;
            if self.store.is_some() || self.channel_capacity != 0 {
                return Err(Error::Settings(
                    "store policies and the channel capacity are settings of a chunked run \
                     (--chunked); a single-instance run keeps every LDE"
                        .into(),
                ));
            }
        }
        if self.resume.is_some() && (self.chunked || self.in_memory) {
            return Err(Error::Settings(
                "only single-instance runs resume; a chunked or in-memory run starts afresh".into(),
            ));
        }
        let program = Arc::clone(self.program.vm());
        let input: Arc<[u8]> = Arc::from(std::mem::take(&mut self.input));
        let failed = |message: String| Error::Prove {
            program: self.program.name.clone(),
            message,
            spill_dir_kept: None,
        };
        if self.in_memory {
            let metrics = Metrics::start(None);
            let timer = metrics.pass("in-memory");
            // One pass, shown as a spinner with its elapsed time.
            self.progress.plan(&[("in-memory", 1.0)]);
            self.progress.begin_pass("in-memory");
            let rows = if self.chunked {
                chunk_rows
            } else {
                instance_rows
            };
            let run = stages::prove_in_memory(program, input, rows, self.max_cycles, &self.params)
                .map_err(|e| {
                    self.progress.fail_pass("in-memory");
                    failed(e.to_string())
                })?;
            self.progress.end_pass("in-memory");
            timer.finish();
            let file = ProofFile {
                statement: run.statement.to_bytes(),
                proof: run.proof.to_bytes(),
            };
            if let Some(path) = &self.output {
                file.write(path)?;
            }
            let report = Report {
                summary: metrics.summary(),
                chunk_rows,
                instances: run.proof.instances.len(),
                ldes_kept: 0,
                widths: run.widths,
                spill_dir_kept: None,
            };
            return Ok(Proof {
                name: format!("the proof of {}", self.program.name),
                security_bits: security_bits(&run.proof),
                statement: run.statement,
                file,
                parsed: None,
                report: Some(report),
            });
        }
        if self.spill_dir.is_none() && self.resume.is_none() {
            remove_interrupted_spill_dirs(&self.progress);
        }
        let options = SpillOptions {
            dir: self.resume.clone().or_else(|| self.spill_dir.clone()),
            keep: if self.keep_spill {
                Keep::Always
            } else {
                Keep::Never
            },
            verify_segments: self.verify_segments,
            limit: self.spill_limit,
        };
        let spill = Arc::new(match self.resume {
            Some(_) => SpillDir::resume(&options)?,
            None => SpillDir::create(&options)?,
        });
        for w in spill.warnings() {
            self.progress.println(&format!("warning: {w}"));
        }
        let metrics = Metrics::start(Some(spill.bytes_counter()));
        if !self.chunked {
            let config = stages::instance::InstanceConfig {
                block_rows: chunk_rows,
                instance_rows,
                max_cycles: self.max_cycles,
                params: self.params,
                progress: self.progress.clone(),
            };
            let run = match stages::instance::prove(program, input, &config, &spill, &metrics) {
                Ok(run) => run,
                Err(e) => return Err(self.failed_with_spill(&spill, e.to_string())),
            };
            let file = ProofFile {
                statement: run.statement.to_bytes(),
                proof: run.proof.to_bytes(),
            };
            if let Err(e) = self.write_output(&file) {
                return Err(self.failed_with_spill(&spill, e.to_string()));
            }
            let kept = spill.finish()?;
            let report = Report {
                summary: metrics.summary(),
                chunk_rows,
                instances: run.proof.instances.len(),
                ldes_kept: run.proof.instances.len(),
                widths: run.widths,
                spill_dir_kept: kept,
            };
            return Ok(Proof {
                name: format!("the proof of {}", self.program.name),
                security_bits: security_bits(&run.proof),
                file,
                statement: run.statement,
                parsed: None,
                report: Some(report),
            });
        }
        let config = stages::PipelineConfig {
            chunk_rows,
            max_cycles: self.max_cycles,
            params: self.params,
            store: self.store.unwrap_or_default(),
            channel_capacity: self.channel_capacity,
            progress: self.progress.clone(),
        };
        let proven = stages::prove_pipeline(program, input, config, Arc::clone(&spill), &metrics)
            .map(|mut run| {
                let bits = security_bits(&run.proof);
                let proof = run.proof.to_bytes();
                // The openings, most of a long run's proof, are not needed once serialized.
                drop(std::mem::take(&mut run.proof.openings));
                drop(std::mem::take(&mut run.proof.fri_openings));
                (run, proof, bits)
            });
        let (run, proof, bits) = match proven {
            Ok(v) => v,
            Err(e) => return Err(self.failed_with_spill(&spill, e.to_string())),
        };
        let file = ProofFile {
            statement: run.statement.to_bytes(),
            proof,
        };
        if let Err(e) = self.write_output(&file) {
            return Err(self.failed_with_spill(&spill, e.to_string()));
        }
        let kept = spill.finish()?;
        let report = Report {
            summary: metrics.summary(),
            chunk_rows,
            instances: run.instances,
            ldes_kept: run.ldes_kept,
            widths: run.widths,
            spill_dir_kept: kept,
        };
        Ok(Proof {
            name: format!("the proof of {}", self.program.name),
            file,
            statement: run.statement,
            security_bits: bits,
            parsed: None,
            report: Some(report),
        })
    }
}

impl Prover {
    /// Writes the proof file where [`Prover::output`] asked (nothing if it did not).
    fn write_output(&self, file: &ProofFile) -> Result<(), formats::FormatError> {
        match &self.output {
            Some(path) => file.write(path),
            None => Ok(()),
        }
    }

    /// The error of a run that stopped with `message`, after the spill dir was marked failed
    /// (and kept or removed as asked).
    fn failed_with_spill(&self, spill: &SpillDir, message: String) -> Error {
        let mut err = Error::Prove {
            program: self.program.name.clone(),
            message,
            spill_dir_kept: None,
        };
        match spill.fail(&err) {
            Ok(kept) => {
                let last = spill
                    .resume_record()
                    .and_then(|r| r.checkpoints.last().map(|c| c.pass.clone()));
                if let Error::Prove {
                    spill_dir_kept,
                    message,
                    ..
                } = &mut err
                {
                    if let (Some(dir), Some(pass)) = (&kept, last) {
                        message.push_str(&format!(
                            "; the passes up to {pass} are kept: the same command with \
                             --resume {} continues from there",
                            dir.display()
                        ));
                    }
                    *spill_dir_kept = kept;
                }
            }
            Err(ce) => self
                .progress
                .println(&format!("warning: cannot clean up the spill dir: {ce}")),
        }
        err
    }
}

/// Instance rows a power of two that the verifier accepts, and no fewer than a chunk's rows.
fn check_instance_rows(rows: usize, chunk_rows: usize) -> Result<(), Error> {
    let max = max_instance_rows();
    if !rows.is_power_of_two() || rows < 2 || rows > max {
        return Err(Error::Settings(format!(
            "instance rows must be a power of two from 2 to 2^{} (the tallest instance the \
             verifier accepts), not {rows}",
            max.trailing_zeros()
        )));
    }
    if chunk_rows > rows {
        return Err(Error::Settings(format!(
            "chunk rows ({chunk_rows}) above the instance rows ({rows}): a chunk is a block of \
             an instance"
        )));
    }
    Ok(())
}

fn security_bits(proof: &stark::Proof) -> u32 {
    proof.params.conjectured_security_bits(proof.max_log_lde())
}

/// Removes the default-location spill dirs of chunked runs that were killed (their manifest
/// says in progress and their process is gone), so that interrupted runs do not fill the disk
/// over time. Dirs of failed runs are only there when kept on purpose and are left alone, and
/// so are those a single-instance run can resume (a note names them).
fn remove_interrupted_spill_dirs(progress: &Progress) {
    let (parent, _) = pipeline::spill::default_spill_parent();
    for stale in pipeline::find_stale_spill_dirs(&parent) {
        if stale.manifest.resume.is_some() {
            progress.println(&format!(
                "note: {} holds a stopped run ({}) that `run --resume {0}` continues; \
                 remove it (rm -r) if it will not be resumed",
                stale.path.display(),
                pipeline::metrics::human_bytes(stale.manifest.total_bytes())
            ));
            continue;
        }
        if stale.manifest.status != formats::RunStatus::InProgress {
            continue;
        }
        let msg = match std::fs::remove_dir_all(&stale.path) {
            Ok(()) => format!(
                "note: removed {} (left by interrupted run {})",
                stale.path.display(),
                stale.manifest.run_id
            ),
            Err(e) => format!(
                "warning: cannot remove {} (left by an interrupted run): {e}",
                stale.path.display()
            ),
        };
        progress.println(&msg);
    }
}

/// What the prover measured, for a proof it made.
#[derive(Debug)]
pub struct Report {
    /// Wall and CPU time, peak memory, spilled bytes and the most the spill dir held, per pass
    /// and for the run.
    pub summary: RunSummary,
    pub chunk_rows: usize,
    /// Instances over all tables.
    pub instances: usize,
    /// Instances whose LDEs were spilled rather than recomputed.
    pub ldes_kept: usize,
    /// Each table's instances, rows and committed columns.
    pub widths: Vec<TableWidth>,
    /// The spill dir, when it was kept.
    pub spill_dir_kept: Option<PathBuf>,
}

/// A proof of one execution: the statement it proves and the proof bytes.
pub struct Proof {
    /// Where it came from, for messages: its file, or the program it was made for.
    name: String,
    statement: Statement,
    file: ProofFile,
    security_bits: u32,
    /// The proof section, parsed, for a proof read from bytes (so that verifying does not
    /// parse it again); a proof just made has only its bytes.
    parsed: Option<stark::Proof>,
    report: Option<Report>,
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Proof({} cycles, exit code {}, {} bytes)",
            self.statement.cycles,
            self.statement.exit_code,
            self.size_bytes()
        )
    }
}

impl Proof {
    /// What the proof claims (checked only by [`verify`]).
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// Conjectured security of the proof's parameters, in bits.
    pub fn security_bits(&self) -> u32 {
        self.security_bits
    }

    /// The prover's figures; `None` for a proof read from bytes.
    pub fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }

    /// Size of the proof file.
    pub fn size_bytes(&self) -> u64 {
        self.file.size_bytes()
    }

    /// The proof file's bytes (the format of `docs/proof-format.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.to_bytes()
    }

    /// Parses a proof file's bytes (the statement and the proof's structure; [`verify`] checks
    /// the rest).
    pub fn from_bytes(bytes: &[u8]) -> Result<Proof, Error> {
        Proof::parse(
            ProofFile::from_bytes(bytes, Path::new("<proof bytes>"))?,
            "<proof bytes>",
        )
    }

    /// Reads a proof file.
    pub fn read(path: impl AsRef<Path>) -> Result<Proof, Error> {
        let path = path.as_ref();
        Proof::parse(ProofFile::read(path)?, &path.display().to_string())
    }

    fn parse(file: ProofFile, name: &str) -> Result<Proof, Error> {
        let bad = |section: &str, e: &dyn fmt::Display| {
            Error::Malformed(format!("{name}: bad {section} section: {e}"))
        };
        let statement = Statement::from_bytes(&file.statement).map_err(|e| bad("statement", &e))?;
        let proof = stark::Proof::from_bytes(&file.proof).map_err(|e| bad("proof", &e))?;
        Ok(Proof {
            name: name.to_string(),
            statement,
            security_bits: security_bits(&proof),
            file,
            parsed: Some(proof),
            report: None,
        })
    }

    /// Writes the proof file to `path` through a temporary name (no half-written file on
    /// failure).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        Ok(self.file.write(path.as_ref())?)
    }
}

/// What a valid proof proves about the program it was checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The bytes the program wrote to fd 1.
    pub output: Vec<u8>,
    /// The full 32-bit value passed to exit (a process's status is its low 8 bits).
    pub exit_code: u32,
    /// Instructions executed, the exiting ECALL included.
    pub cycles: u64,
    pub program_digest: [u8; 32],
    /// The entry point the proof names (the ELF's).
    pub entry: u32,
    /// Conjectured security of the proof's parameters.
    pub security_bits: u32,
}

/// Checks `proof` against `program` with the default verifier settings (at least 100
/// conjectured bits).
pub fn verify(proof: &Proof, program: &Program) -> Result<Verified, Error> {
    verify_with(proof, program, VerifierParams::default().min_security_bits)
}

/// [`verify`], refusing proofs below `min_security_bits` conjectured bits.
pub fn verify_with(
    proof: &Proof,
    program: &Program,
    min_security_bits: u32,
) -> Result<Verified, Error> {
    let parsed;
    let stark_proof = match &proof.parsed {
        Some(p) => p,
        None => {
            parsed = stark::Proof::from_bytes(&proof.file.proof)
                .map_err(|e| Error::Malformed(format!("{}: bad proof section: {e}", proof.name)))?;
            &parsed
        }
    };
    let params = VerifierParams {
        min_security_bits,
        ..VerifierParams::default()
    };
    let s = &proof.statement;
    let checked =
        verify_execution(Arc::clone(program.vm()), s, stark_proof, &params).map_err(|reason| {
            Error::Refused {
                proof: proof.name.clone(),
                program: program.name.clone(),
                reason,
            }
        })?;
    Ok(Verified {
        output: s.output.clone(),
        exit_code: s.exit_code,
        cycles: s.cycles,
        program_digest: s.program_digest,
        entry: s.entry,
        security_bits: checked.security_bits,
    })
}
