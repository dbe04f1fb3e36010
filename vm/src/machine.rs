//! The RV32IM executor.
//!
//! One hart, 32 registers, a pc and [`Memory`]; instructions are fetched from the program's
//! pre-decoded executable segments (stores into a text segment change data, never code, so the
//! executed instructions are exactly the ones the program table holds). Each instruction is one
//! cycle.
//!
//! Two modes share one interpreter loop, specialised at compile time:
//! - plain ([`Machine::run`]): as fast as it goes, optionally counting the instruction mix;
//! - tracing ([`Machine::trace_chunk`]): fills a reusable [`TraceChunk`] with one [`Step`] per
//!   instruction, at most a chunk at a time, and captures the chunk's [`Checkpoint`] on the way, so
//!   that [`Machine::resume`] can regenerate exactly the same steps later.
//!
//! System calls follow the Linux RISC-V ABI subset, so a fixture runs unchanged under
//! `qemu-riscv32`: `read` (63) from fd 0 (the private input), `write` (64) to fd 1 (public output)
//! and fd 2 (diagnostics), `exit` (93) and `exit_group` (94).

use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::decode::{DecodeError, Instruction, Opcode};
use crate::memory::{Memory, MemoryFault};
use crate::program::Program;

/// Linux system call numbers the machine implements.
pub mod syscall {
    pub const READ: u32 = 63;
    pub const WRITE: u32 = 64;
    pub const EXIT: u32 = 93;
    pub const EXIT_GROUP: u32 = 94;
}

/// Register numbers of the ABI names the system calls (and the stack diagnosis) use.
pub mod reg {
    pub const SP: usize = 2;
    pub const A0: usize = 10;
    pub const A1: usize = 11;
    pub const A2: usize = 12;
    pub const A7: usize = 17;
}

/// How far below its segment a stack pointer (and an access near it) may be for a missing
/// access to be called a stack overflow: the runtimes' guard gap (`docs/guests.md`).
pub const STACK_SLACK: u32 = 64 * 1024;

/// Kind of a misaligned access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Load,
    Store,
}

/// An execution error; every variant names the pc of the instruction at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error("illegal instruction {word:#010x} at pc {pc:#010x}: {reason}")]
    IllegalInstruction {
        pc: u32,
        word: u32,
        reason: DecodeError,
    },
    #[error("pc {pc:#010x} is outside the program's executable segments")]
    FetchOutOfProgram { pc: u32 },
    #[error("misaligned jump at pc {pc:#010x} to {target:#010x} (targets must be 4-byte aligned)")]
    MisalignedJump { pc: u32, target: u32 },
    #[error("misaligned {} of {width} bytes at pc {pc:#010x}, address {addr:#010x}", match kind { AccessKind::Load => "load", AccessKind::Store => "store" })]
    Misaligned {
        pc: u32,
        addr: u32,
        width: u32,
        kind: AccessKind,
    },
    #[error(
        "unknown system call {number} (a7) at pc {pc:#010x}; supported: read 63, write 64, exit 93, exit_group 94"
    )]
    UnknownSyscall { pc: u32, number: u32 },
    #[error(
        "system call {name} at pc {pc:#010x} on file descriptor {fd}; only {allowed} is supported"
    )]
    BadFileDescriptor {
        pc: u32,
        name: &'static str,
        fd: u32,
        allowed: &'static str,
    },
    #[error(
        "system call {name} at pc {pc:#010x}: buffer {addr:#010x}+{len:#x} runs past the 32-bit address space"
    )]
    BadBuffer {
        pc: u32,
        name: &'static str,
        addr: u32,
        len: u32,
    },
    #[error("cycle limit of {limit} reached at pc {pc:#010x} without the program exiting")]
    CycleLimit { limit: u64, pc: u32 },
    #[error(
        "access to address {addr:#010x} at pc {pc:#010x}, outside the program's segments (a segmentation fault under Linux)"
    )]
    Unmapped { pc: u32, addr: u32 },
    #[error(
        "stack overflow at pc {pc:#010x}: access to address {addr:#010x} with sp = {sp:#010x}, below the writable segment that starts at {stack:#010x} (a segmentation fault under Linux; give the program a larger stack)"
    )]
    StackOverflow {
        pc: u32,
        addr: u32,
        sp: u32,
        stack: u32,
    },
    #[error(
        "store to address {addr:#010x} at pc {pc:#010x}, in a read-only segment (a segmentation fault under Linux)"
    )]
    ReadOnly { pc: u32, addr: u32 },
    #[error(
        "re-execution from a checkpoint touched address {addr:#010x} (pc {pc:#010x}), whose page the checkpoint does not hold"
    )]
    CheckpointDiverged { pc: u32, addr: u32 },
    #[error("the program has already exited")]
    Halted,
}

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The full 32-bit a0 of the exit call (a process's status is its low 8 bits).
    pub code: u32,
    /// Instructions executed, the exiting ECALL included.
    pub cycles: u64,
}

/// What one executed instruction did: the record trace generation consumes.
///
/// Fields an instruction does not use are zero. For loads and stores `mem_addr` is the aligned
/// word address and `mem_before`/`mem_after` the whole word before and after (equal for loads).
/// For ECALL, `rs1_val` is a7 (the call number), `rs2_val` the incoming a0 and `rd_val` the a0 it
/// leaves (the call's result; unchanged for exit); the bytes it moved are an [`IoEvent`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Step {
    pub pc: u32,
    pub next_pc: u32,
    pub rs1_val: u32,
    pub rs2_val: u32,
    /// The result the instruction computed for rd, even when rd is x0 (which discards it); 0 for
    /// instructions without rd (branches, stores, FENCE).
    pub rd_val: u32,
    pub mem_addr: u32,
    pub mem_before: u32,
    pub mem_after: u32,
}

/// Bytes a `read` or `write` system call moved between memory and a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoEvent {
    /// Cycle of the ECALL.
    pub cycle: u64,
    pub fd: u32,
    /// Address of the buffer in memory.
    pub addr: u32,
    /// The bytes moved (for `read`, what was stored; for `write`, what was loaded).
    pub data: Vec<u8>,
}

/// One chunk of an execution trace, reused from chunk to chunk so that tracing allocates nothing
/// per step once warmed up.
#[derive(Clone, Debug, Default)]
pub struct TraceChunk {
    /// Index of the chunk in the run (0-based).
    pub index: u64,
    /// Cycle of `steps[0]`.
    pub start_cycle: u64,
    pub steps: Vec<Step>,
    pub io: Vec<IoEvent>,
    /// State at the start of the chunk plus the pages it touched: enough to re-execute it.
    pub checkpoint: Checkpoint,
    /// Set when the program exited within this chunk (its ECALL is the last step).
    pub exit: Option<Exit>,
}

/// Per-opcode execution counts (the instruction mix).
#[derive(Clone, Debug)]
pub struct InstructionMix {
    pub counts: [u64; Opcode::COUNT],
}

impl Default for InstructionMix {
    fn default() -> Self {
        InstructionMix {
            counts: [0; Opcode::COUNT],
        }
    }
}

/// The machine state.
pub struct Machine {
    program: Arc<Program>,
    pub regs: [u32; 32],
    pub pc: u32,
    pub cycle: u64,
    pub memory: Memory,
    input: Arc<[u8]>,
    input_pos: usize,
    /// Bytes written to fd 1: the public output.
    pub stdout: Vec<u8>,
    /// Bytes written to fd 2: diagnostics, part of no statement.
    pub stderr: Vec<u8>,
    max_cycles: u64,
    exit: Option<Exit>,
    chunks_traced: u64,
    /// Built from a checkpoint: a missing page means divergence, not a segmentation fault.
    resumed: bool,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("pc", &format_args!("{:#010x}", self.pc))
            .field("cycle", &self.cycle)
            .field("regs", &self.regs)
            .field("exit", &self.exit)
            .field("pages", &self.memory.allocated_pages())
            .finish_non_exhaustive()
    }
}

/// Where a run of the interpreter loop stopped without error.
enum Stop {
    Exited,
    Budget,
}

impl Machine {
    /// A machine at the program's entry with its image loaded and the given input stream.
    pub fn new(program: Arc<Program>, input: Arc<[u8]>) -> Machine {
        let mut memory = Memory::new();
        for page in program.pages() {
            memory.map(page);
        }
        for seg in &program.segments {
            memory
                .write_bytes(seg.vaddr, &seg.data)
                .expect("segment pages were just mapped");
        }
        let pc = program.entry;
        Machine {
            program,
            regs: [0; 32],
            pc,
            cycle: 0,
            memory,
            input,
            input_pos: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            max_cycles: u64::MAX,
            exit: None,
            chunks_traced: 0,
            resumed: false,
        }
    }

    /// A machine in the state a checkpoint recorded, holding only the checkpoint's pages: it can
    /// re-execute that chunk (and reports [`VmError::CheckpointDiverged`] if it strays outside).
    pub fn resume(program: Arc<Program>, checkpoint: &Checkpoint, input: Arc<[u8]>) -> Machine {
        let memory = Memory::from_pages(
            &program.pages(),
            checkpoint.pages.iter().map(|(n, p)| (*n, &**p)),
        );
        Machine {
            program,
            regs: checkpoint.regs,
            pc: checkpoint.pc,
            cycle: checkpoint.cycle,
            memory,
            input,
            input_pos: checkpoint.input_pos as usize,
            stdout: Vec::new(),
            stderr: Vec::new(),
            max_cycles: u64::MAX,
            exit: None,
            chunks_traced: checkpoint.chunk_index,
            resumed: true,
        }
    }

    /// Stops runaway programs: executing more than `limit` instructions is an error.
    pub fn set_max_cycles(&mut self, limit: u64) {
        self.max_cycles = limit;
    }

    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// How the program exited, once it has.
    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    /// Runs to completion in plain mode.
    pub fn run(&mut self) -> Result<Exit, VmError> {
        self.run_loop::<false, false>(u64::MAX, &mut Sink::none())?;
        Ok(self.exit.expect("run_loop returns Exited only after exit"))
    }

    /// Runs to completion in plain mode, counting executions per opcode.
    pub fn run_with_mix(&mut self, mix: &mut InstructionMix) -> Result<Exit, VmError> {
        let mut sink = Sink {
            chunk: None,
            mix: Some(mix),
        };
        self.run_loop::<false, true>(u64::MAX, &mut sink)?;
        Ok(self.exit.expect("run_loop returns Exited only after exit"))
    }

    /// Executes up to `max_steps` instructions in tracing mode, replacing `chunk`'s contents with
    /// their steps, I/O events and checkpoint. Returns `Ok(true)` when the program exited inside
    /// this chunk. Calling it again after the exit is [`VmError::Halted`].
    pub fn trace_chunk(
        &mut self,
        max_steps: usize,
        chunk: &mut TraceChunk,
    ) -> Result<bool, VmError> {
        if self.exit.is_some() {
            return Err(VmError::Halted);
        }
        chunk.index = self.chunks_traced;
        chunk.start_cycle = self.cycle;
        chunk.steps.clear();
        // Reserve up front (capped: the chunk may end early) so that pushes never reallocate.
        chunk.steps.reserve(max_steps.min(1 << 22));
        chunk.io.clear();
        chunk.exit = None;
        chunk.checkpoint.chunk_index = self.chunks_traced;
        chunk.checkpoint.pc = self.pc;
        chunk.checkpoint.regs = self.regs;
        chunk.checkpoint.cycle = self.cycle;
        chunk.checkpoint.input_pos = self.input_pos as u64;
        // Epochs start at 1 (0 marks "never captured"); u32 wraps after 4G chunks, far past use.
        self.memory
            .begin_capture((self.chunks_traced as u32).wrapping_add(1).max(1));
        let result = {
            let mut sink = Sink {
                chunk: Some(&mut *chunk),
                mix: None,
            };
            self.run_loop::<true, false>(max_steps as u64, &mut sink)
        };
        self.memory.take_captured(&mut chunk.checkpoint.pages);
        self.chunks_traced += 1;
        match result? {
            Stop::Exited => {
                chunk.exit = self.exit;
                Ok(true)
            }
            Stop::Budget => Ok(false),
        }
    }

    /// Position in the input stream (bytes consumed so far).
    pub fn input_pos(&self) -> usize {
        self.input_pos
    }

    // `addr & (width - 1)` is the alignment test for every width, including 1.
    #[allow(clippy::bad_bit_mask)]
    #[inline(always)]
    fn run_loop<const TRACE: bool, const MIX: bool>(
        &mut self,
        budget: u64,
        sink: &mut Sink<'_>,
    ) -> Result<Stop, VmError> {
        use Opcode::*;
        if self.exit.is_some() {
            return Err(VmError::Halted);
        }
        let program = Arc::clone(&self.program);
        let code = &program.code[..];
        let code_base = program.code_base;
        let stop_at = self.cycle.saturating_add(budget).min(self.max_cycles);
        let mut pc = self.pc;
        let mut cycle = self.cycle;
        let result = loop {
            if cycle >= stop_at {
                break if cycle >= self.max_cycles {
                    Err(VmError::CycleLimit {
                        limit: self.max_cycles,
                        pc,
                    })
                } else {
                    Ok(Stop::Budget)
                };
            }
            let offset = pc.wrapping_sub(code_base);
            let Some(&insn) = code.get((offset >> 2) as usize) else {
                break Err(VmError::FetchOutOfProgram { pc });
            };
            let Instruction {
                opcode,
                rd,
                rs1,
                rs2,
                imm,
            } = insn;
            if MIX && let Some(mix) = sink.mix.as_deref_mut() {
                mix.counts[opcode as usize] += 1;
            }
            let a = self.regs[rs1 as usize];
            let b = self.regs[rs2 as usize];
            let mut next_pc = pc.wrapping_add(4);
            let mut rd_val: u32 = 0;
            let mut writes_rd = true;
            let mut mem = (0u32, 0u32, 0u32);
            macro_rules! fault {
                ($e:expr) => {{
                    break Err($e);
                }};
            }
            macro_rules! mem_try {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(f) => fault!(self.fault(pc, f)),
                    }
                };
            }
            macro_rules! load {
                ($width:expr, $extract:expr) => {{
                    let addr = a.wrapping_add(imm);
                    if addr & ($width - 1) != 0 {
                        fault!(VmError::Misaligned {
                            pc,
                            addr,
                            width: $width,
                            kind: AccessKind::Load
                        });
                    }
                    let word = mem_try!(self.memory.load_word::<TRACE>(addr));
                    mem = (addr & !3, word, word);
                    let shifted = word >> ((addr & 3) * 8);
                    $extract(shifted)
                }};
            }
            macro_rules! store {
                ($width:expr, $mask:expr) => {{
                    writes_rd = false;
                    let addr = a.wrapping_add(imm);
                    if addr & ($width - 1) != 0 {
                        fault!(VmError::Misaligned {
                            pc,
                            addr,
                            width: $width,
                            kind: AccessKind::Store
                        });
                    }
                    let shift = (addr & 3) * 8;
                    let mask: u32 = $mask << shift;
                    let old = mem_try!(self.memory.load_word::<TRACE>(addr));
                    let new = (old & !mask) | ((b << shift) & mask);
                    mem_try!(self.memory.store_word::<TRACE>(addr, new));
                    mem = (addr & !3, old, new);
                }};
            }
            macro_rules! branch {
                ($cond:expr) => {{
                    writes_rd = false;
                    if $cond {
                        next_pc = pc.wrapping_add(imm);
                        if next_pc & 3 != 0 {
                            fault!(VmError::MisalignedJump {
                                pc,
                                target: next_pc
                            });
                        }
                    }
                }};
            }
            match opcode {
                Lui => rd_val = imm,
                Auipc => rd_val = pc.wrapping_add(imm),
                Jal | Jalr => {
                    let target = if opcode == Jal {
                        pc.wrapping_add(imm)
                    } else {
                        a.wrapping_add(imm) & !1
                    };
                    if target & 3 != 0 {
                        fault!(VmError::MisalignedJump { pc, target });
                    }
                    rd_val = next_pc;
                    next_pc = target;
                }
                Beq => branch!(a == b),
                Bne => branch!(a != b),
                Blt => branch!((a as i32) < (b as i32)),
                Bge => branch!((a as i32) >= (b as i32)),
                Bltu => branch!(a < b),
                Bgeu => branch!(a >= b),
                Lb => rd_val = load!(1, |w: u32| w as u8 as i8 as i32 as u32),
                Lh => rd_val = load!(2, |w: u32| w as u16 as i16 as i32 as u32),
                Lw => rd_val = load!(4, |w: u32| w),
                Lbu => rd_val = load!(1, |w: u32| w & 0xff),
                Lhu => rd_val = load!(2, |w: u32| w & 0xffff),
                Sb => store!(1, 0xffu32),
                Sh => store!(2, 0xffffu32),
                Sw => store!(4, 0xffff_ffffu32),
                Addi => rd_val = a.wrapping_add(imm),
                Slti => rd_val = ((a as i32) < (imm as i32)) as u32,
                Sltiu => rd_val = (a < imm) as u32,
                Xori => rd_val = a ^ imm,
                Ori => rd_val = a | imm,
                Andi => rd_val = a & imm,
                Slli => rd_val = a << imm,
                Srli => rd_val = a >> imm,
                Srai => rd_val = ((a as i32) >> imm) as u32,
                Add => rd_val = a.wrapping_add(b),
                Sub => rd_val = a.wrapping_sub(b),
                Sll => rd_val = a << (b & 31),
                Slt => rd_val = ((a as i32) < (b as i32)) as u32,
                Sltu => rd_val = (a < b) as u32,
                Xor => rd_val = a ^ b,
                Srl => rd_val = a >> (b & 31),
                Sra => rd_val = ((a as i32) >> (b & 31)) as u32,
                Or => rd_val = a | b,
                And => rd_val = a & b,
                Fence => writes_rd = false,
                Mul => rd_val = a.wrapping_mul(b),
                Mulh => rd_val = ((a as i32 as i64 * b as i32 as i64) >> 32) as u32,
                Mulhsu => rd_val = ((a as i32 as i64 * b as u64 as i64) >> 32) as u32,
                Mulhu => rd_val = ((a as u64 * b as u64) >> 32) as u32,
                Div => rd_val = div_signed(a, b),
                Divu => rd_val = a.checked_div(b).unwrap_or(u32::MAX),
                Rem => rd_val = rem_signed(a, b),
                Remu => rd_val = if b == 0 { a } else { a % b },
                Ecall => {
                    let number = self.regs[reg::A7];
                    let a0 = self.regs[reg::A0];
                    match self.ecall::<TRACE>(pc, cycle, sink) {
                        Ok(()) => {}
                        Err(e) => fault!(e),
                    }
                    if TRACE && let Some(chunk) = sink.chunk.as_deref_mut() {
                        chunk.steps.push(Step {
                            pc,
                            next_pc,
                            rs1_val: number,
                            rs2_val: a0,
                            rd_val: self.regs[reg::A0],
                            ..Step::default()
                        });
                    }
                    cycle += 1;
                    if self.exit.is_some() {
                        pc = next_pc;
                        break Ok(Stop::Exited);
                    }
                    pc = next_pc;
                    continue;
                }
                Invalid => {
                    let idx = (offset >> 2) as usize;
                    let word = program.words[idx];
                    if !program.fetchable[idx] {
                        fault!(VmError::FetchOutOfProgram { pc });
                    }
                    let reason = Instruction::decode(word)
                        .err()
                        .unwrap_or(DecodeError::Unknown);
                    fault!(VmError::IllegalInstruction { pc, word, reason });
                }
            }
            if writes_rd {
                self.regs[rd as usize] = rd_val;
                self.regs[0] = 0;
            }
            if TRACE && let Some(chunk) = sink.chunk.as_deref_mut() {
                chunk.steps.push(Step {
                    pc,
                    next_pc,
                    rs1_val: a,
                    rs2_val: b,
                    rd_val: if writes_rd { rd_val } else { 0 },
                    mem_addr: mem.0,
                    mem_before: mem.1,
                    mem_after: mem.2,
                });
            }
            pc = next_pc;
            cycle += 1;
        };
        self.pc = pc;
        self.cycle = cycle;
        result
    }

    /// The start of the writable segment a missing `addr` is a stack overflow out of, if it is
    /// one: sp has left that segment downwards (by at most [`STACK_SLACK`]) and the access is near
    /// sp, below the segment. A wild pointer far from sp stays an unmapped access.
    fn stack_below(&self, addr: u32) -> Option<u32> {
        let sp = self.regs[reg::SP];
        let stack = self
            .program
            .segments
            .iter()
            .filter(|s| s.writable && s.vaddr > addr)
            .map(|s| s.vaddr)
            .min()?;
        let sp_left = sp != 0 && sp < stack && stack - sp <= STACK_SLACK;
        (sp_left && addr.abs_diff(sp) <= STACK_SLACK).then_some(stack)
    }

    /// The error for a refused access.
    fn fault(&self, pc: u32, fault: MemoryFault) -> VmError {
        match fault {
            MemoryFault::Missing { addr } if self.resumed => {
                VmError::CheckpointDiverged { pc, addr }
            }
            MemoryFault::Missing { addr } => match self.stack_below(addr) {
                Some(stack) => VmError::StackOverflow {
                    pc,
                    addr,
                    sp: self.regs[reg::SP],
                    stack,
                },
                None => VmError::Unmapped { pc, addr },
            },
            MemoryFault::ReadOnly { addr } => VmError::ReadOnly { pc, addr },
        }
    }

    /// Performs the system call selected by a7. On exit it sets `self.exit` (cycles are filled in
    /// by the caller).
    fn ecall<const TRACE: bool>(
        &mut self,
        pc: u32,
        cycle: u64,
        sink: &mut Sink<'_>,
    ) -> Result<(), VmError> {
        let number = self.regs[reg::A7];
        let (a0, a1, a2) = (self.regs[reg::A0], self.regs[reg::A1], self.regs[reg::A2]);
        match number {
            syscall::EXIT | syscall::EXIT_GROUP => {
                self.exit = Some(Exit {
                    code: a0,
                    cycles: cycle + 1,
                });
            }
            syscall::WRITE => {
                if a0 != 1 && a0 != 2 {
                    return Err(VmError::BadFileDescriptor {
                        pc,
                        name: "write",
                        fd: a0,
                        allowed: "fd 1 (output) or 2 (diagnostics)",
                    });
                }
                if a1.checked_add(a2).is_none() {
                    return Err(VmError::BadBuffer {
                        pc,
                        name: "write",
                        addr: a1,
                        len: a2,
                    });
                }
                let mut data = Vec::with_capacity(a2 as usize);
                for k in 0..a2 {
                    let addr = a1 + k;
                    let byte = self
                        .memory
                        .load_byte::<TRACE>(addr)
                        .map_err(|f| self.fault(pc, f))?;
                    data.push(byte);
                }
                if a0 == 1 {
                    self.stdout.extend_from_slice(&data);
                } else {
                    self.stderr.extend_from_slice(&data);
                }
                self.regs[reg::A0] = a2;
                if TRACE && let Some(chunk) = sink.chunk.as_deref_mut() {
                    chunk.io.push(IoEvent {
                        cycle,
                        fd: a0,
                        addr: a1,
                        data,
                    });
                }
            }
            syscall::READ => {
                if a0 != 0 {
                    return Err(VmError::BadFileDescriptor {
                        pc,
                        name: "read",
                        fd: a0,
                        allowed: "fd 0 (input)",
                    });
                }
                if a1.checked_add(a2).is_none() {
                    return Err(VmError::BadBuffer {
                        pc,
                        name: "read",
                        addr: a1,
                        len: a2,
                    });
                }
                let remaining = &self.input[self.input_pos.min(self.input.len())..];
                let n = remaining.len().min(a2 as usize);
                let data = remaining[..n].to_vec();
                for (k, &byte) in data.iter().enumerate() {
                    let addr = a1 + k as u32;
                    self.memory
                        .store_byte::<TRACE>(addr, byte)
                        .map_err(|f| self.fault(pc, f))?;
                }
                self.input_pos += n;
                self.regs[reg::A0] = n as u32;
                if TRACE && let Some(chunk) = sink.chunk.as_deref_mut() {
                    chunk.io.push(IoEvent {
                        cycle,
                        fd: 0,
                        addr: a1,
                        data,
                    });
                }
            }
            _ => return Err(VmError::UnknownSyscall { pc, number }),
        }
        Ok(())
    }
}

/// Where the interpreter loop puts what it observes.
struct Sink<'a> {
    chunk: Option<&'a mut TraceChunk>,
    mix: Option<&'a mut InstructionMix>,
}

impl Sink<'_> {
    fn none() -> Self {
        Sink {
            chunk: None,
            mix: None,
        }
    }
}

/// DIV as the spec defines it: x / 0 = -1, INT_MIN / -1 = INT_MIN.
pub fn div_signed(a: u32, b: u32) -> u32 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        u32::MAX
    } else {
        a.wrapping_div(b) as u32
    }
}

/// REM as the spec defines it: x % 0 = x, INT_MIN % -1 = 0.
pub fn rem_signed(a: u32, b: u32) -> u32 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        a as u32
    } else {
        a.wrapping_rem(b) as u32
    }
}
