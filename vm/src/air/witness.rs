//! The machine's table set ([`Rv32Air`]), the statement a proof binds ([`Statement`]), and the
//! witness builder ([`Witness`]) that turns the executor's trace chunks into table instances.
//!
//! The builder consumes one [`TraceChunk`] at a time: CPU and chip rows go to instances of at
//! most the instance rows, handed out whole or, for instances taller than memory, in blocks
//! ([`TraceBlock`]); what spans the whole run (program and
//! range multiplicities, the last value and timestamp of every register and memory word) stays in
//! memory bounded by the program's size, never by the run's length.

use std::sync::Arc;

use stark::air::{Air, BusTerm};
use stark::field::{F, PrimeCharacteristicRing};
use stark::{InstanceTrace, PublicInputs, RowMajorMatrix};

use super::image::{ImageLayout, ImageTable};
use super::program::{ProgramTable, register_fields};
use super::range::{self, RangeTable};
use super::{
    FINAL_TS, HALT_PC, LIMB, MAX_CYCLES, MAX_OUTPUT_BYTES, OUTPUT_CURSOR, WordAccess, add, bitwise,
    branch, bus, bytes, cpu, div, ecall, f, image, io, jump, lt, memory, mul, shift, table,
    timestamp, word,
};
use crate::machine::{Exit, IoEvent, TraceChunk, reg, syscall};
use crate::program::Program;
use crate::{Opcode, Step};

/// Every table of the machine, in proof order (see [`table`]).
pub struct Rv32Air {
    pub program: ProgramTable,
    pub image: ImageTable,
    layout: Arc<ImageLayout>,
}

impl Rv32Air {
    pub fn new(program: Arc<Program>) -> Rv32Air {
        let layout = Arc::new(ImageLayout::new(&program));
        Rv32Air {
            program: ProgramTable::new(program),
            image: ImageTable::new(Arc::clone(&layout)),
            layout,
        }
    }

    /// The tables, indexed by [`table`].
    pub fn tables(&self) -> Vec<&dyn Air> {
        vec![
            &self.program,
            &cpu::CpuTable,
            &self.image,
            &RangeTable,
            &bytes::ByteTable,
            &add::AddChip,
            &jump::JumpChip,
            &branch::BranchChip,
            &lt::LtChip,
            &bitwise::BitwiseChip,
            &shift::ShiftChip,
            &memory::MemoryChip,
            &ecall::EcallChip,
            &io::IoTable,
            &mul::MulChip,
            &div::DivChip,
            &word::WordChip,
        ]
    }
}

/// What a proof of an execution states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// BLAKE3 of the program image (entry and segments).
    pub program_digest: [u8; 32],
    pub entry: u32,
    pub exit_code: u32,
    /// Bytes written to fd 1.
    pub output: Vec<u8>,
    /// Instructions executed.
    pub cycles: u64,
}

impl Statement {
    /// The public inputs of the proof: the statement's digest and the bus terms it contributes.
    pub fn public_inputs(&self) -> PublicInputs {
        let mut h = blake3::Hasher::new();
        h.update(b"stark-pipe rv32im statement v1");
        h.update(&self.program_digest);
        h.update(&self.entry.to_le_bytes());
        h.update(&self.exit_code.to_le_bytes());
        h.update(&self.cycles.to_le_bytes());
        h.update(&(self.output.len() as u64).to_le_bytes());
        h.update(&self.output);
        let term = |bus, tuple: Vec<F>, multiplicity| BusTerm {
            bus,
            tuple,
            multiplicity,
        };
        let mut boundary = vec![
            term(bus::CHAIN, vec![f(self.entry as u64), F::ZERO], F::ONE),
            term(bus::CHAIN, vec![f(HALT_PC), f(self.cycles)], F::NEG_ONE),
            term(bus::EXIT, vec![f(self.exit_code as u64)], F::NEG_ONE),
            term(
                bus::MEMORY,
                vec![f(OUTPUT_CURSOR), F::ZERO, F::ZERO],
                F::ONE,
            ),
            term(
                bus::MEMORY,
                vec![f(OUTPUT_CURSOR), f(self.output.len() as u64), f(FINAL_TS)],
                F::NEG_ONE,
            ),
        ];
        for (k, &byte) in self.output.iter().enumerate() {
            boundary.push(term(
                bus::OUTPUT,
                vec![f(k as u64), f(byte as u64)],
                F::NEG_ONE,
            ));
        }
        PublicInputs {
            statement: *h.finalize().as_bytes(),
            boundary,
        }
    }
}

/// A byte string that is not a serialized statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed statement: {0}")]
pub struct StatementFormatError(String);

impl Statement {
    /// Little-endian serialization: program digest, entry, exit code, cycles, output length and
    /// bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(56 + self.output.len());
        out.extend_from_slice(&self.program_digest);
        out.extend_from_slice(&self.entry.to_le_bytes());
        out.extend_from_slice(&self.exit_code.to_le_bytes());
        out.extend_from_slice(&self.cycles.to_le_bytes());
        out.extend_from_slice(&(self.output.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.output);
        out
    }

    /// Parses [`Statement::to_bytes`] output, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Statement, StatementFormatError> {
        let err = |msg: String| Err(StatementFormatError(msg));
        if bytes.len() < 56 {
            return err("shorter than its header".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let len = u64_at(48);
        if len != (bytes.len() - 56) as u64 {
            return err("output length does not match".into());
        }
        let statement = Statement {
            program_digest: bytes[..32].try_into().expect("32 bytes"),
            entry: u32_at(32),
            exit_code: u32_at(36),
            cycles: u64_at(40),
            output: bytes[56..].to_vec(),
        };
        statement.check_bounds().map(|()| statement)
    }

    /// The bounds the AIR's soundness argument needs of a statement (see [`super`], "Bounds"):
    /// 1 <= cycles <= [`MAX_CYCLES`] and output length <= [`MAX_OUTPUT_BYTES`]. Field elements
    /// are taken mod p, so a larger count would alias a smaller one in the proof.
    pub fn check_bounds(&self) -> Result<(), StatementFormatError> {
        if self.cycles == 0 || self.cycles > MAX_CYCLES {
            return Err(StatementFormatError(format!(
                "cycle count {} outside 1..=2^{} (MAX_CYCLES)",
                self.cycles,
                MAX_CYCLES.trailing_zeros()
            )));
        }
        if self.output.len() as u64 > MAX_OUTPUT_BYTES {
            return Err(StatementFormatError(format!(
                "output of {} bytes above 2^{} (MAX_OUTPUT_BYTES)",
                self.output.len(),
                MAX_OUTPUT_BYTES.trailing_zeros()
            )));
        }
        Ok(())
    }
}

/// BLAKE3 of a program's entry point and segments: what a statement names the program by.
pub fn program_digest(program: &Program) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"stark-pipe rv32im program v1");
    h.update(&program.entry.to_le_bytes());
    h.update(&(program.segments.len() as u64).to_le_bytes());
    for s in &program.segments {
        h.update(&s.vaddr.to_le_bytes());
        h.update(&s.mem_size.to_le_bytes());
        h.update(&[s.executable as u8, s.writable as u8]);
        h.update(&(s.data.len() as u64).to_le_bytes());
        h.update(&s.data);
    }
    *h.finalize().as_bytes()
}

/// Why an execution cannot be turned into a witness.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("instruction {opcode} at pc {pc:#010x} (cycle {cycle}) is not proven yet by the AIR")]
    Unsupported {
        opcode: &'static str,
        pc: u32,
        cycle: u64,
    },
    #[error("system call {number} at pc {pc:#010x} (cycle {cycle}) is not proven yet by the AIR")]
    UnsupportedSyscall { number: u32, pc: u32, cycle: u64 },
    #[error("pc {pc:#010x} (cycle {cycle}) is not a program address")]
    NotInProgram { pc: u32, cycle: u64 },
    #[error(
        "the run is too long to prove: an address went 2^30 or more cycles without an access, or the run passed 2^36 cycles or 2^36 output bytes"
    )]
    TooLong,
    #[error("chunk {got} arrived where chunk {expected} was expected")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("the trace ended without the program exiting")]
    NoExit,
    #[error("chunk_rows must be a power of two >= 2, not {0}")]
    BadChunkRows(usize),
    #[error("instance rows ({instance_rows}) must be a multiple of the block rows ({block_rows})")]
    BadInstanceRows {
        instance_rows: usize,
        block_rows: usize,
    },
}

/// Rows `index * B ..` of instance `instance` of table `table`, B = the builder's block rows.
/// An instance's blocks come in order; `last` marks its final one, so its height is
/// `(index + 1) * B`, or the block's own height when it is the only block (an instance of at
/// most B rows is one block, padded to a power of two).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceBlock {
    pub table: usize,
    pub instance: u64,
    pub index: u64,
    pub trace: RowMajorMatrix<F>,
    pub last: bool,
}

/// The least height of the full half [`cut_rows`] cuts off a table's last instance. A cut saves
/// at least a quarter of the padded height in every pass, and costs another instance in the
/// proof: its opened rows and its own tree's siblings below the pass trees' join layer, about
/// 40-80 KB at the default security (rs_sha256: two cuts, +79 KB, 11% fewer cells). Below 2^17
/// rows saved, that is about a second of proving or less, not worth the bytes.
pub const CUT_MIN_ROWS: usize = 1 << 18;

/// Where a table's last instance of `rows` rows (at most the instance rows) is cut in two: when
/// its rows fill at most 3/4 of its padded height `H`, the first `H / 2` rows are a full instance
/// and the rest an instance padded to its own power of two, so that at most about a third of
/// what is committed is padding instead of up to a half (fib's ADD table: 3/4 of its rows
/// real). Only halves of at least [`CUT_MIN_ROWS`] rows are cut off; the rest is not cut again.
/// The rule depends on `rows` alone, so every prover (blocks or whole instances, any block rows)
/// makes the same instances.
pub fn cut_rows(rows: usize) -> Option<usize> {
    let height = rows.next_power_of_two();
    let half = height / 2;
    (half >= CUT_MIN_ROWS && rows * 4 <= height * 3).then_some(half)
}

/// A cut ([`cut_rows`]) made at the end of a run, after the first blocks of the instance it cut
/// had been handed out: instance `instance` of `table` ends with its block `blocks - 1`, and its
/// blocks `blocks..` handed out before [`Witness::finish_blocks`] are blocks `index - blocks` of
/// instance `instance + 1`. The blocks handed out from then on carry their new place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub table: usize,
    pub instance: u64,
    pub blocks: u64,
}

impl Cut {
    /// Moves a block handed out before the cut to its place after it (others are left alone).
    pub fn place(&self, b: &mut TraceBlock) {
        if (b.table, b.instance) != (self.table, self.instance) {
            return;
        }
        if b.index + 1 == self.blocks {
            b.last = true;
        } else if b.index >= self.blocks {
            (b.instance, b.index) = (b.instance + 1, b.index - self.blocks);
        }
    }
}

/// Rows of one table, cut into instances of at most `instance_rows` rows and handed out in
/// blocks of `block_rows`. A full block is held until the next row comes (or the table is
/// closed), because only then is it known whether it ends its instance.
struct Instances {
    table: usize,
    width: usize,
    block_rows: usize,
    instance_rows: usize,
    /// Rows of the open instance not yet handed out (at most one block).
    current: Vec<F>,
    /// Rows of the open instance, handed out or not.
    open_rows: usize,
    instance: u64,
    /// Blocks of the open instance handed out.
    index: u64,
    done: Vec<TraceBlock>,
    /// The cut of the last instance, when it came after some of its blocks were handed out.
    cut: Option<Cut>,
}

impl Instances {
    fn new(table: usize, width: usize, block_rows: usize, instance_rows: usize) -> Self {
        Instances {
            table,
            width,
            block_rows,
            instance_rows,
            current: Vec::new(),
            open_rows: 0,
            instance: 0,
            index: 0,
            done: Vec::new(),
            cut: None,
        }
    }

    fn block(&mut self, values: Vec<F>, last: bool) {
        self.done.push(TraceBlock {
            table: self.table,
            instance: self.instance,
            index: self.index,
            trace: RowMajorMatrix::new(values, self.width),
            last,
        });
        self.index += 1;
        if last {
            (self.instance, self.index, self.open_rows) = (self.instance + 1, 0, 0);
        }
    }

    fn push(&mut self, row: &[F]) {
        debug_assert_eq!(row.len(), self.width);
        if self.current.len() == self.width * self.block_rows {
            // The held block does not end its instance: a row follows it.
            let full = std::mem::take(&mut self.current);
            self.block(full, false);
            // A tall table: its next block is full size too, so it is allocated once (a
            // block that grows by doubling faults in its pages again at every step).
            self.current.reserve_exact(self.width * self.block_rows);
        }
        self.current.extend_from_slice(row);
        self.open_rows += 1;
        if self.open_rows == self.instance_rows {
            let full = std::mem::take(&mut self.current);
            self.block(full, true);
        }
    }

    /// Closes the open instance, padded with zero rows to a power of two (at least 2): its
    /// held rows, then zero blocks up to its height, which are only described
    /// ([`Padding`]: a run's last instance may need many). Nothing if it has no rows.
    fn close(&mut self) -> Option<Padding> {
        if self.open_rows == 0 {
            return None;
        }
        if let Some(half) = cut_rows(self.open_rows) {
            let rest = self.open_rows - half;
            if self.index == 0 {
                // Every row is still here: the full half leaves as an instance of one block.
                let tail = self.current.split_off(half * self.width);
                let head = std::mem::replace(&mut self.current, tail);
                self.block(head, true);
            } else {
                // The half is whole blocks (a block went out, so the rows exceed one block, and
                // both are powers of two), all handed out already, some of them perhaps still
                // in `done`, which are moved here; the rest are moved by the taker.
                let cut = Cut {
                    table: self.table,
                    instance: self.instance,
                    blocks: (half / self.block_rows) as u64,
                };
                self.done.iter_mut().for_each(|b| cut.place(b));
                (self.instance, self.index) = (self.instance + 1, self.index - cut.blocks);
                self.cut = Some(cut);
            }
            self.open_rows = rest;
        }
        let height = self.open_rows.next_power_of_two().max(2);
        let mut values = std::mem::take(&mut self.current);
        let rows = height.min(self.block_rows);
        values.resize(rows * self.width, F::ZERO);
        let blocks = (height / rows) as u64;
        self.block(values, blocks == self.index + 1);
        if self.open_rows == 0 {
            return None;
        }
        let padding = Padding {
            table: self.table,
            instance: self.instance,
            next: self.index,
            end: blocks,
            rows,
            width: self.width,
        };
        (self.instance, self.index, self.open_rows) = (self.instance + 1, 0, 0);
        Some(padding)
    }

    /// Every block not handed out, the trailing zero blocks described; a table that received no
    /// rows gets one all-padding instance of 2 rows.
    fn finish(mut self) -> (Vec<TraceBlock>, Option<Padding>, Option<Cut>) {
        let padding = self.close();
        if self.instance == 0 {
            self.open_rows = 2;
            self.current = vec![F::ZERO; 2 * self.width];
            self.close();
        }
        (self.done, padding, self.cut)
    }
}

/// The zero blocks `next..end` that end an instance, made one at a time as they are taken.
#[derive(Clone, Debug)]
struct Padding {
    table: usize,
    instance: u64,
    next: u64,
    end: u64,
    rows: usize,
    width: usize,
}

/// The blocks a finished run still hands out ([`Witness::finish_blocks`]), in proof order. The
/// zero blocks that pad a table's last instance to its height are made as they are taken, so
/// that padding a long run's tables (up to half of a tall instance) never sits in memory.
pub struct FinalBlocks {
    parts: std::collections::VecDeque<(std::vec::IntoIter<TraceBlock>, Option<Padding>)>,
    cuts: Vec<Cut>,
}

impl FinalBlocks {
    /// The cuts that move blocks handed out before (at most one per table): a taker applies
    /// them before it takes the blocks that follow.
    pub fn cuts(&self) -> &[Cut] {
        &self.cuts
    }
}

impl Iterator for FinalBlocks {
    type Item = TraceBlock;

    fn next(&mut self) -> Option<TraceBlock> {
        loop {
            let (blocks, padding) = self.parts.front_mut()?;
            if let Some(b) = blocks.next() {
                return Some(b);
            }
            if let Some(p) = padding
                && p.next < p.end
            {
                let block = TraceBlock {
                    table: p.table,
                    instance: p.instance,
                    index: p.next,
                    trace: RowMajorMatrix::new(vec![F::ZERO; p.rows * p.width], p.width),
                    last: p.next + 1 == p.end,
                };
                p.next += 1;
                return Some(block);
            }
            self.parts.pop_front();
        }
    }
}

/// Whole instances from blocks; the blocks of an unfinished instance wait in `assembling[table]`.
fn assemble(assembling: &mut [Vec<F>], blocks: Vec<TraceBlock>) -> Vec<InstanceTrace> {
    let mut out = Vec::new();
    for b in blocks {
        let rows = &mut assembling[b.table];
        rows.extend_from_slice(&b.trace.values);
        if b.last {
            out.push(InstanceTrace {
                table: b.table,
                trace: RowMajorMatrix::new(std::mem::take(rows), b.trace.width),
            });
        }
    }
    out
}

/// Cuts a whole matrix (a fixed table) into the blocks of one instance.
fn blocks_of(table: usize, m: RowMajorMatrix<F>, block_rows: usize) -> Vec<TraceBlock> {
    let width = m.width;
    let rows = m.values.len() / width;
    let per = rows.min(block_rows);
    let count = rows / per;
    m.values
        .chunks(per * width)
        .enumerate()
        .map(|(index, v)| TraceBlock {
            table,
            instance: 0,
            index: index as u64,
            trace: RowMajorMatrix::new(v.to_vec(), width),
            last: index + 1 == count,
        })
        .collect()
}

/// Builds every table's instances from an execution, one trace chunk at a time.
pub struct Witness {
    program: Arc<Program>,
    layout: Arc<ImageLayout>,
    next_chunk: u64,
    program_mult: Vec<u64>,
    range_mult: Vec<u64>,
    /// Lookups per byte-table row, for each BYTE operation (PAIR, AND, OR, XOR).
    byte_mult: [Vec<u64>; bytes::MAIN_WIDTH],
    /// Value and timestamp of the last access to each image row (registers first).
    last_value: Vec<u32>,
    last_ts: Vec<u64>,
    block_rows: usize,
    chips: Vec<Instances>,
    /// Per table, the blocks of an instance [`Witness::take_completed`] has not completed yet.
    assembling: Vec<Vec<F>>,
    exit: Option<Exit>,
    /// Timestamp of the last access to the output cursor.
    cursor_ts: u64,
    output: Vec<u8>,
}

impl Witness {
    /// A builder for `program`'s tables with instances of at most `chunk_rows` rows, each
    /// handed out whole (one block per instance).
    pub fn new(air: &Rv32Air, chunk_rows: usize) -> Result<Witness, WitnessError> {
        Witness::with_blocks(air, chunk_rows, chunk_rows)
    }

    /// A builder whose instances have at most `instance_rows` rows and come out in blocks of
    /// `block_rows` ([`Witness::take_blocks`]): how a prover gets a table taller than memory as
    /// one instance. The rows are those of [`Witness::new`]`(air, instance_rows)`.
    pub fn with_blocks(
        air: &Rv32Air,
        block_rows: usize,
        instance_rows: usize,
    ) -> Result<Witness, WitnessError> {
        for rows in [block_rows, instance_rows] {
            if rows < 2 || !rows.is_power_of_two() {
                return Err(WitnessError::BadChunkRows(rows));
            }
        }
        if instance_rows < block_rows {
            return Err(WitnessError::BadInstanceRows {
                instance_rows,
                block_rows,
            });
        }
        let layout = Arc::clone(&air.layout);
        let program = Arc::clone(air.program.program());
        let widths = [
            (table::CPU, cpu::WIDTH),
            (table::ADD, add::WIDTH),
            (table::JUMP, jump::WIDTH),
            (table::BRANCH, branch::WIDTH),
            (table::LT, lt::WIDTH),
            (table::BITWISE, bitwise::WIDTH),
            (table::SHIFT, shift::WIDTH),
            (table::MEMORY, memory::WIDTH),
            (table::ECALL, ecall::WIDTH),
            (table::IO, io::WIDTH),
            (table::MUL, mul::WIDTH),
            (table::DIV, div::WIDTH),
            (table::WORD, word::WIDTH),
        ];
        let mut chips: Vec<Instances> = (0..table::COUNT)
            .map(|t| Instances::new(t, 1, block_rows, instance_rows))
            .collect();
        for (t, width) in widths {
            chips[t] = Instances::new(t, width, block_rows, instance_rows);
        }
        Ok(Witness {
            program_mult: vec![0; program.code.len()],
            range_mult: vec![0; range::HEIGHT],
            byte_mult: std::array::from_fn(|_| vec![0; bytes::HEIGHT]),
            last_value: layout.init.clone(),
            last_ts: vec![0; layout.len()],
            program,
            layout,
            next_chunk: 0,
            block_rows,
            chips,
            assembling: vec![Vec::new(); table::COUNT],
            exit: None,
            cursor_ts: 0,
            output: Vec::new(),
        })
    }

    fn range16(&mut self, v: u64) -> Result<(), WitnessError> {
        *self
            .range_mult
            .get_mut(v as usize)
            .ok_or(WitnessError::TooLong)? += 1;
        Ok(())
    }

    fn pair(&mut self, a: u8, b: u8) {
        self.byte_mult[bytes::PAIR as usize][bytes::row_of(a, b)] += 1;
    }

    /// Records an access to image row `row` at `now`; returns the previous (value, timestamp).
    fn access(&mut self, row: usize, now: u64, value: u32) -> (u32, u64) {
        let before = std::mem::replace(&mut self.last_value[row], value);
        let prev = std::mem::replace(&mut self.last_ts[row], now);
        (before, prev)
    }

    /// Splits `now - prev - 1` into 16-bit limbs, counting their range lookups.
    fn gap_limbs(&mut self, now: u64, prev: u64) -> Result<(u64, u64), WitnessError> {
        let gap = now - prev - 1;
        let (lo, hi) = (gap % LIMB, gap / LIMB);
        self.range16(lo)?;
        self.range16(hi)?;
        Ok((lo, hi))
    }

    /// Consumes the next chunk of the run (chunks must come in order). Its CPU rows go to CPU
    /// instances like a chip's rows to the chip's: with chunks of the instance rows, as the
    /// provers run the executor, each chunk is one CPU instance.
    pub fn push_chunk(&mut self, chunk: &TraceChunk) -> Result<(), WitnessError> {
        if chunk.index != self.next_chunk {
            return Err(WitnessError::OutOfOrder {
                expected: self.next_chunk,
                got: chunk.index,
            });
        }
        self.next_chunk += 1;
        let mut io = chunk.io.iter().peekable();
        for (k, step) in chunk.steps.iter().enumerate() {
            let clk = chunk.start_cycle + k as u64;
            let event = io.next_if(|e| e.cycle == clk);
            self.push_step(clk, step, event)?;
        }
        if let Some(exit) = chunk.exit {
            self.exit = Some(exit);
        }
        Ok(())
    }

    fn push_step(
        &mut self,
        clk: u64,
        step: &Step,
        event: Option<&IoEvent>,
    ) -> Result<(), WitnessError> {
        let pc = step.pc;
        let row = ProgramTable::row_of(&self.program, pc)
            .ok_or(WitnessError::NotInProgram { pc, cycle: clk })?;
        let insn = self.program.code[row];
        self.program_mult[row] += 1;
        let (rd, rs1, rs2, writes_rd) = register_fields(&insn);
        let mut r = [F::ZERO; cpu::WIDTH];
        r[cpu::IS_REAL] = F::ONE;
        r[cpu::PC] = f(pc as u64);
        r[cpu::CLK] = f(clk);
        r[cpu::OPCODE] = f(insn.opcode as u64);
        r[cpu::RD] = f(rd as u64);
        r[cpu::RS1] = f(rs1 as u64);
        r[cpu::RS2] = f(rs2 as u64);
        r[cpu::IMM] = f(insn.imm as u64);
        r[cpu::WRITES_RD] = f(writes_rd as u64);
        r[cpu::RS1_VAL] = f(step.rs1_val as u64);
        r[cpu::RS2_VAL] = f(step.rs2_val as u64);
        r[cpu::RD_VAL] = f(step.rd_val as u64);
        let reads = [
            (rs1, step.rs1_val, 1, cpu::RS1_PREV_TS, cpu::RS1_LO),
            (rs2, step.rs2_val, 2, cpu::RS2_PREV_TS, cpu::RS2_LO),
        ];
        for (reg, value, slot, prev_col, lo_col) in reads {
            let now = timestamp(clk, slot);
            let (_, prev) = self.access(reg as usize, now, value);
            let (lo, hi) = self.gap_limbs(now, prev)?;
            r[prev_col] = f(prev);
            r[lo_col] = f(lo);
            r[lo_col + 1] = f(hi);
        }
        // The system call's own accesses (a1, a2 and the buffer) come at 4clk+3, before rd.
        let mut next_pc = step.next_pc as u64;
        self.push_chip(clk, step, &insn, event, &mut next_pc)?;
        if writes_rd {
            let now = timestamp(clk, 4);
            let (before, prev) = self.access(rd as usize, now, step.rd_val);
            let (lo, hi) = self.gap_limbs(now, prev)?;
            r[cpu::RD_PREV_TS] = f(prev);
            r[cpu::RD_PREV_VAL] = f(before as u64);
            r[cpu::RD_LO] = f(lo);
            r[cpu::RD_HI] = f(hi);
        }
        r[cpu::NEXT_PC] = f(next_pc);
        self.chips[table::CPU].push(&r);
        Ok(())
    }

    /// Adds the chip row(s) proving one instruction and counts their lookups.
    fn push_chip(
        &mut self,
        clk: u64,
        step: &Step,
        insn: &crate::Instruction,
        event: Option<&IoEvent>,
        next_pc: &mut u64,
    ) -> Result<(), WitnessError> {
        use Opcode::*;
        let (pc, a, b, imm, rd_val) = (step.pc, step.rs1_val, step.rs2_val, insn.imm, step.rd_val);
        let op = insn.opcode;
        match op {
            Add | Addi | Sub | Fence => {
                self.range16(rd_val as u64 & 0xffff)?;
                self.range16(rd_val as u64 >> 16)?;
                self.chips[table::ADD].push(&add::row(op, pc, clk, a, b, imm, rd_val));
            }
            Lui | Auipc | Jal | Jalr => {
                let row = jump::row(op, pc, clk, a, imm, rd_val, step.next_pc);
                self.range16(stark::field::canonical(row[jump::U_LO]))?;
                self.range16(stark::field::canonical(row[jump::U_HI]))?;
                self.chips[table::JUMP].push(&row);
            }
            Beq | Bne => {
                self.chips[table::BRANCH].push(&branch::row(op, pc, clk, a, b, imm, step.next_pc))
            }
            Slt | Sltu | Slti | Sltiu | Blt | Bge | Bltu | Bgeu => {
                let (row, checks) = lt::row(op, pc, clk, a, b, imm, rd_val, step.next_pc);
                for v in checks {
                    self.range16(v)?;
                }
                self.chips[table::LT].push(&row);
            }
            And | Or | Xor | Andi | Ori | Xori => {
                let x = b.wrapping_add(imm);
                let byte_op = bitwise::byte_op(op) as usize;
                for i in 0..4 {
                    let (p, q) = ((a >> (8 * i)) as u8, (x >> (8 * i)) as u8);
                    self.byte_mult[byte_op][bytes::row_of(p, q)] += 1;
                }
                self.chips[table::BITWISE].push(&bitwise::row(op, pc, clk, a, b, imm, rd_val));
            }
            Sll | Srl | Sra | Slli | Srli | Srai => {
                let (row, checks) = shift::row(op, pc, clk, a, b, imm, rd_val);
                self.byte_mult[bytes::POW as usize][shift::shamt(b, imm) as usize] += 1;
                for v in checks {
                    self.range16(v)?;
                }
                self.chips[table::SHIFT].push(&row);
            }
            Lb | Lh | Lw | Lbu | Lhu | Sb | Sh | Sw => {
                let row = self
                    .layout
                    .row_of(step.mem_addr)
                    .ok_or(WitnessError::NotInProgram { pc, cycle: clk })?;
                let (_, prev_ts) = self.access(row, timestamp(clk, 3), step.mem_after);
                let access = WordAccess {
                    before: step.mem_before,
                    after: step.mem_after,
                    prev_ts,
                    read_only: self.layout.is_read_only(row),
                };
                if matches!(op, Lw | Sw) {
                    let (cells, gap) = word::row(op, pc, clk, a, b, imm, rd_val, &access);
                    for v in gap {
                        self.range16(v)?;
                    }
                    self.chips[table::WORD].push(&cells);
                } else {
                    let (cells, lookups) = memory::row(op, pc, clk, a, b, imm, rd_val, &access);
                    for v in lookups.range16 {
                        self.range16(v)?;
                    }
                    let pairs = if matches!(op, Sb | Sh) { 5 } else { 3 };
                    for &(p, q) in &lookups.pairs[..pairs] {
                        self.pair(p, q);
                    }
                    self.chips[table::MEMORY].push(&cells);
                }
            }
            Ecall => self.push_ecall(clk, step, event, next_pc)?,
            Mul | Mulh | Mulhsu | Mulhu => {
                let (row, checks) = mul::row(op, pc, clk, a, b);
                for v in checks {
                    self.range16(v)?;
                }
                self.chips[table::MUL].push(&row);
            }
            Div | Divu | Rem | Remu => {
                let (row, checks) = div::row(op, pc, clk, a, b);
                for v in checks {
                    self.range16(v)?;
                }
                self.chips[table::DIV].push(&row);
            }
            Invalid => {
                return Err(WitnessError::Unsupported {
                    opcode: op.mnemonic(),
                    pc,
                    cycle: clk,
                });
            }
        }
        Ok(())
    }

    fn push_ecall(
        &mut self,
        clk: u64,
        step: &Step,
        event: Option<&IoEvent>,
        next_pc: &mut u64,
    ) -> Result<(), WitnessError> {
        let (pc, number, a0) = (step.pc, step.rs1_val, step.rs2_val);
        let now = timestamp(clk, 3);
        let mut inputs = ecall::EcallInputs {
            a1: 0,
            a2: 0,
            a1_prev_ts: 0,
            a2_prev_ts: 0,
            pos0: self.output.len() as u64,
            cursor_prev_ts: self.cursor_ts,
        };
        match number {
            syscall::EXIT | syscall::EXIT_GROUP => *next_pc = HALT_PC,
            syscall::READ | syscall::WRITE => {
                let (a1, a2) = (self.last_value[reg::A1], self.last_value[reg::A2]);
                inputs.a1 = a1;
                inputs.a2 = a2;
                inputs.a1_prev_ts = self.access(reg::A1, now, a1).1;
                inputs.a2_prev_ts = self.access(reg::A2, now, a2).1;
                let data = event.map_or(&[][..], |e| &e.data[..]);
                let kind = match (number, a0) {
                    (syscall::READ, _) => ecall::KIND_READ,
                    (_, 1) => ecall::KIND_OUT,
                    _ => ecall::KIND_ERR,
                };
                if kind == ecall::KIND_OUT {
                    self.cursor_ts = now;
                }
                self.push_io(clk, kind, a1, data)?;
            }
            _ => {
                return Err(WitnessError::UnsupportedSyscall {
                    number,
                    pc,
                    cycle: clk,
                });
            }
        }
        let (row, limbs) = ecall::row(number, pc, clk, a0, step.rd_val, *next_pc, &inputs);
        for v in limbs {
            self.range16(v)?;
        }
        self.chips[table::ECALL].push(&row);
        Ok(())
    }

    /// IO rows for `data` moved at buffer `addr` (one row per word touched).
    fn push_io(&mut self, clk: u64, kind: u64, addr: u32, data: &[u8]) -> Result<(), WitnessError> {
        let now = timestamp(clk, 3);
        let mut done = 0usize;
        while done < data.len() {
            let cursor = addr + done as u32;
            let word_addr = cursor & !3;
            let first = (cursor & 3) as usize;
            let last = (first + data.len() - done - 1).min(3);
            let image_row = self
                .layout
                .row_of(word_addr)
                .ok_or(WitnessError::NotInProgram {
                    pc: cursor,
                    cycle: clk,
                })?;
            let before = self.last_value[image_row];
            let mut bytes_after = before.to_le_bytes();
            if kind == ecall::KIND_READ {
                bytes_after[first..=last].copy_from_slice(&data[done..done + last - first + 1]);
            }
            let after = u32::from_le_bytes(bytes_after);
            let (_, prev_ts) = self.access(image_row, now, after);
            let row = io::IoRow {
                kind,
                clk,
                word_addr,
                first,
                last,
                remaining: (data.len() - done) as u64,
                pos: self.output.len() as u64,
                before,
                after,
                prev_ts,
                read_only: self.layout.is_read_only(image_row),
            };
            let (cells, limbs) = row.cells();
            for v in limbs {
                self.range16(v)?;
            }
            let (mb, nb) = (before.to_le_bytes(), after.to_le_bytes());
            self.pair(mb[0], mb[1]);
            self.pair(mb[2], mb[3]);
            self.pair(nb[0], nb[1]);
            self.pair(nb[2], nb[3]);
            if kind == ecall::KIND_OUT {
                self.output
                    .extend_from_slice(&data[done..done + last - first + 1]);
            }
            self.chips[table::IO].push(&cells);
            done += last - first + 1;
        }
        Ok(())
    }

    /// Hands out the blocks completed so far, in order within each instance, so that a
    /// streaming prover need not hold an instance, let alone every instance, until
    /// [`Witness::finish_blocks`], which then returns only the blocks not taken.
    pub fn take_blocks(&mut self) -> Vec<TraceBlock> {
        self.chips
            .iter_mut()
            .flat_map(|c| c.done.drain(..))
            .collect()
    }

    /// Hands out the instances completed so far, whole (full chip instances, and the CPU
    /// instances of the chunks pushed), in (table, chunk) order within each table. `finish`
    /// then returns only the instances not taken; the concatenation per table is the same as
    /// without this call.
    pub fn take_completed(&mut self) -> Vec<InstanceTrace> {
        let blocks = self.take_blocks();
        assemble(&mut self.assembling, blocks)
    }

    /// [`Witness::finish_blocks`] as whole instances.
    pub fn finish(mut self) -> Result<(Vec<InstanceTrace>, Statement), WitnessError> {
        let mut assembling = std::mem::take(&mut self.assembling);
        let widths: Vec<usize> = self.chips.iter().map(|c| c.width).collect();
        let block_rows = self.block_rows;
        let (blocks, statement) = self.finish_blocks()?;
        let mut out = Vec::new();
        for cut in blocks.cuts() {
            let (rows, width) = (&mut assembling[cut.table], widths[cut.table]);
            let tail = rows.split_off(cut.blocks as usize * block_rows * width);
            out.push(InstanceTrace {
                table: cut.table,
                trace: RowMajorMatrix::new(std::mem::replace(rows, tail), width),
            });
        }
        out.extend(assemble(&mut assembling, blocks.collect()));
        // The cut halves first among their table's instances, the tables in order.
        out.sort_by_key(|it| it.table);
        Ok((out, statement))
    }

    /// Closes every table: the blocks not yet taken, in proof order, and the statement the
    /// instances prove.
    pub fn finish_blocks(self) -> Result<(FinalBlocks, Statement), WitnessError> {
        let exit = self.exit.ok_or(WitnessError::NoExit)?;
        let statement = Statement {
            program_digest: program_digest(&self.program),
            entry: self.program.entry,
            exit_code: exit.code,
            output: self.output,
            cycles: exit.cycles,
        };
        statement
            .check_bounds()
            .map_err(|_| WitnessError::TooLong)?;
        let program_height = self.program.code.len().next_power_of_two().max(2);
        let mut program = vec![F::ZERO; program_height];
        for (row, &m) in self.program_mult.iter().enumerate() {
            program[row] = f(m);
        }
        let image_height = self.layout.len().next_power_of_two().max(2);
        let mut image = vec![F::ZERO; image_height * image::MAIN_WIDTH];
        for row in 0..self.layout.len() {
            if self.last_ts[row] > 0 {
                let cells = &mut image[row * image::MAIN_WIDTH..(row + 1) * image::MAIN_WIDTH];
                cells[image::USED] = F::ONE;
                cells[image::FINAL_VAL] = f(self.last_value[row] as u64);
                cells[image::FINAL_TS] = f(self.last_ts[row]);
            }
        }
        let range: Vec<F> = self.range_mult.iter().map(|&m| f(m)).collect();
        let mut byte_cells = vec![F::ZERO; bytes::HEIGHT * bytes::MAIN_WIDTH];
        for (op, mults) in self.byte_mult.iter().enumerate() {
            for (row, &m) in mults.iter().enumerate() {
                byte_cells[row * bytes::MAIN_WIDTH + op] = f(m);
            }
        }
        let block_rows = self.block_rows;
        let mut parts = std::collections::VecDeque::new();
        let mut cuts = Vec::new();
        for (t, chip) in self.chips.into_iter().enumerate() {
            let fixed = |m| (blocks_of(t, m, block_rows).into_iter(), None);
            parts.push_back(match t {
                table::PROGRAM => fixed(RowMajorMatrix::new(std::mem::take(&mut program), 1)),
                table::IMAGE => fixed(RowMajorMatrix::new(
                    std::mem::take(&mut image),
                    image::MAIN_WIDTH,
                )),
                table::RANGE16 => fixed(RowMajorMatrix::new(range.clone(), 1)),
                table::BYTES => fixed(RowMajorMatrix::new(
                    std::mem::take(&mut byte_cells),
                    bytes::MAIN_WIDTH,
                )),
                _ => {
                    let (blocks, padding, cut) = chip.finish();
                    cuts.extend(cut);
                    (blocks.into_iter(), padding)
                }
            });
        }
        Ok((FinalBlocks { parts, cuts }, statement))
    }
}
