//! The RV32IM machine as AIR tables, and the witness builder that fills them from the executor's
//! trace chunks.
//!
//! # How the tables fit together
//!
//! Every executed instruction is one row of the [`cpu`] table. The CPU row fetches the
//! instruction from the [`program`] table (which the verifier recomputes from the ELF), reads
//! rs1 and rs2 and writes rd through the timestamped memory argument, and hands the operation to
//! exactly one *chip* over the ALU bus; each chip proves the semantics of a family of opcodes:
//! [`add`] (ADD, ADDI, SUB, FENCE), [`jump`] (LUI, AUIPC, JAL, JALR), [`branch`] (BEQ, BNE),
//! [`lt`] (SLT(I)(U), BLT(U), BGE(U)), [`bitwise`] (AND, OR, XOR and immediates), [`shift`]
//! (SLL, SRL, SRA and immediates), [`mul`] (MUL, MULH, MULHSU, MULHU), [`div`] (DIV, DIVU,
//! REM, REMU), [`word`] (LW, SW), [`memory`] (byte and halfword loads and stores) and
//! [`ecall`] (exit, read,
//! write; the bytes a call moves are rows of the [`io`] table). Fixed tables answer lookups:
//! [`range`] (16-bit values) and [`bytes`] (byte pairs, AND, OR, XOR). The [`image`] table opens
//! and closes the memory argument for every register and every word of the program's memory.
//!
//! # Buses (all LogUp, see the stark crate)
//!
//! | bus | tuple | senders | receivers |
//! |-----|-------|---------|-----------|
//! | [`bus::PROGRAM`] | (pc, opcode, rd, rs1, rs2, imm, writes_rd) | program (multiplicity = times executed) | cpu |
//! | [`bus::CHAIN`] | (pc, clk) | cpu (next_pc, clk+1); public (entry, 0) | cpu; public (HALT_PC, cycles) |
//! | [`bus::MEMORY`] | (address, value, timestamp) | image (init, 0); every access (new value, now) | every access (old value, then); image (final) |
//! | [`bus::RANGE16`] | (v) | any limb that must be < 2^16 | range |
//! | [`bus::ALU`] | (opcode, pc, clk, rs1_val, rs2_val, imm, rd_val, next_pc) | cpu | the chip of the opcode |
//! | [`bus::BYTE`] | (op, a, b, c) | chips (byte pairs, bitwise results) | bytes |
//! | [`bus::EXIT`] | (exit code) | ecall (exit) | public (the statement's exit code) |
//! | [`bus::IO`] | (clk, kind, cursor, remaining, pos) | ecall (start), io rows | io rows, ecall (end) |
//! | [`bus::OUTPUT`] | (position, byte) | io rows of writes to fd 1 | public (the statement's output) |
//!
//! **Control flow.** The CHAIN bus replaces transition constraints between CPU rows: each row
//! receives its (pc, clk) token and sends (next_pc, clk + 1). The verifier adds one token
//! (entry, 0) and removes one (HALT_PC, cycles); HALT_PC = 2^40 is no program address, only the
//! exit ECALL produces it. Because clk grows by one along every path, the tokens form one path
//! from entry to exit through every CPU row: any row order, any chunking (including padding rows
//! with `is_real = 0`), and chunk boundaries need nothing special.
//!
//! **Registers and memory.** One address space: register r is address 2^40 + r, a memory word is
//! its (4-aligned) byte address; the output cursor is 2^40 + 32. An access at timestamp t receives (addr, old, t_old) and sends
//! (addr, new, t) with t_old < t range checked (two 16-bit limbs of t - t_old - 1). The image table
//! sends (addr, init, 0) and receives (addr, final, t_final) once for each row it marks as used
//! (its multiplicity is boolean), so each address has one initial token and one linear history:
//! every read returns the last write. An address outside the image has no initial token and
//! cannot be accessed. Instruction at clk accesses rs1 at 4clk+1, rs2 at 4clk+2, memory at 4clk+3
//! and rd at 4clk+4.
//!
//! **Bounds the arguments rely on** (each enforced by the verifier, [`verify_execution`]):
//! 1. *Bus counts.* Every multiplicity outside the fixed lookup tables (program, range16, bytes)
//!    is boolean by its table's constraints, and the verifier caps the total rows of a proof at
//!    [`stark::params::MAX_TOTAL_ROWS`] = 2^40, each with at most [`stark::air::MAX_INTERACTIONS`]
//!    bus terms: fewer than 2^48 < p terms in all, so a tuple's sends and receives balancing in
//!    the field balance as integers. A fixed table's multiplicities are free field elements, but
//!    its tuples are the verifier's own (preprocessed or constant), so a tuple outside the table is
//!    matched only by boolean terms, whose count is below p: it cannot be looked up.
//! 2. *Clock.* The statement's cycle count is at least 1 and at most [`MAX_CYCLES`] = 2^36
//!    (refused when decoded and by the verifier), and at most the CPU table's total height. The
//!    CHAIN tokens then form one path of exactly `cycles` rows from (entry, 0) to (HALT_PC,
//!    cycles): a closed loop of k rows would need k = 0 mod p, and the total rows are below p. So
//!    every CPU row's clk is an integer in [0, cycles), every chip row's clk is a CPU row's (the
//!    ALU bus), every IO row's is its ECALL's (the IO chain, whose `start` grows by >= 1 byte per
//!    row, so it cannot close a loop either), and every access timestamp `4 clk + slot` is an
//!    integer in [1, 2^38 + 4], below [`FINAL_TS`] = 2^40.
//! 3. *Time order.* Each access consumes a token (addr, v, t_old) some other interaction sent, so
//!    t_old is 0, FINAL_TS or another access's timestamp, all below 2^41. The range check
//!    `t_now - t_old - 1 = lo + 2^16 hi < 2^32` in the field then holds as integers (both sides
//!    are far below p - 2^41), so t_old < t_now: each address's tokens form one chain from its
//!    image row's initial token to its final token in strictly increasing time, and every read
//!    returns the last write. Two accesses to one address at one timestamp are impossible.
//! 4. *Gaps.* An address untouched for 2^30 cycles or more cannot be proven (its gap would not
//!    fit in two 16-bit limbs); the witness builder reports such a run as too long.
//!
//! **Values.** Registers and memory hold u32 values as field elements. They are u32 by induction:
//! initial values are bytes of the ELF or zero, every chip but [`word`] range checks the rd value
//! it produces, and [`word`] moves values between registers and memory unchanged (its rd value
//! is a memory word, the word it stores a register's). x0 is never written (the program table's writes_rd is 0 for rd = x0), so it reads 0.

pub mod add;
pub mod bitwise;
pub mod branch;
pub mod bytes;
pub mod cpu;
pub mod div;
pub mod ecall;
pub mod image;
pub mod io;
pub mod jump;
pub mod lt;
pub mod memory;
pub mod mul;
pub mod product;
pub mod program;
pub mod range;
pub mod shift;
pub mod witness;
pub mod word;

use stark::air::{AirBuilder, Expr};
use stark::field::{F, PrimeCharacteristicRing};

/// Bus identifiers.
pub mod bus {
    pub const PROGRAM: u32 = 1;
    pub const CHAIN: u32 = 2;
    pub const MEMORY: u32 = 3;
    pub const RANGE16: u32 = 4;
    pub const ALU: u32 = 5;
    pub const EXIT: u32 = 6;
    pub const BYTE: u32 = 7;
    pub const IO: u32 = 8;
    pub const OUTPUT: u32 = 9;
}

/// Address of register r in the memory argument's address space. Far above every address a
/// load, store or system-call buffer can form (all below 2^33, even before wrapping), so no
/// memory access can reach a register.
pub const REG_BASE: u64 = 1 << 40;
/// Address of the output cursor (bytes written to fd 1 so far), a memory cell next to the
/// registers: writes to fd 1 read and advance it in time order, and the exit call hands its
/// final value to the statement.
pub const OUTPUT_CURSOR: u64 = REG_BASE + 32;
/// The timestamp of the output cursor's final token, sent by the exit call: above every
/// instruction's timestamps.
pub const FINAL_TS: u64 = 1 << 40;
/// The most instructions a statement may claim: keeps every access timestamp (at most
/// 4 * MAX_CYCLES + 4) below [`FINAL_TS`] and far below p (see "Bounds" above).
pub const MAX_CYCLES: u64 = 1 << 36;
/// The most output bytes a statement may claim: every output position is then far below p.
pub const MAX_OUTPUT_BYTES: u64 = 1 << 36;
/// The pc token the exit ECALL passes on: no program address (nor pc + 4 of any), so nothing
/// can follow it.
pub const HALT_PC: u64 = 1 << 40;
/// Added to the address of every word of a read-only page in the memory argument (see
/// [`image`]): above registers (2^40 + r) and padding (2^41), and unreachable from a store's
/// address (below 2^33).
pub const READ_ONLY_TAG: u64 = 1 << 42;
/// 2^16, the limb base of range checks.
pub const LIMB: u64 = 1 << 16;

/// Timestamp of access `slot` (1: rs1, 2: rs2, 3: memory, 4: rd) of the instruction at `clk`.
pub fn timestamp(clk: u64, slot: u64) -> u64 {
    4 * clk + slot
}

/// What the memory argument says about one load or store of an aligned word, as the witness
/// builder found it: the word before and after, the timestamp of its previous access, and
/// whether it is on a read-only page. Both memory chips ([`word`], [`memory`]) build rows from
/// it.
#[derive(Clone, Copy, Debug)]
pub struct WordAccess {
    pub before: u32,
    pub after: u32,
    pub prev_ts: u64,
    pub read_only: bool,
}

/// A field element from a small integer.
pub fn f(x: u64) -> F {
    F::from_u64(x)
}

/// An expression constant.
pub fn c(x: u64) -> Expr {
    Expr::from_u64(x)
}

/// Index of each table in the machine's table list (the canonical proof order).
pub mod table {
    pub const PROGRAM: usize = 0;
    pub const CPU: usize = 1;
    pub const IMAGE: usize = 2;
    pub const RANGE16: usize = 3;
    pub const BYTES: usize = 4;
    pub const ADD: usize = 5;
    pub const JUMP: usize = 6;
    pub const BRANCH: usize = 7;
    pub const LT: usize = 8;
    pub const BITWISE: usize = 9;
    pub const SHIFT: usize = 10;
    pub const MEMORY: usize = 11;
    pub const ECALL: usize = 12;
    pub const IO: usize = 13;
    pub const MUL: usize = 14;
    pub const DIV: usize = 15;
    pub const WORD: usize = 16;
    pub const COUNT: usize = 17;
}

pub use witness::{
    CUT_MIN_ROWS, Cut, FinalBlocks, Rv32Air, Statement, StatementFormatError, TraceBlock, Witness,
    WitnessError, cut_rows, program_digest,
};

mod verify;
pub use verify::{ExecutionError, ExecutionVerifier, verify_execution};

/// What a chip receives from the CPU on the ALU bus, as expressions over the chip's row.
pub struct AluTuple {
    pub opcode: Expr,
    pub pc: Expr,
    pub clk: Expr,
    pub rs1_val: Expr,
    pub rs2_val: Expr,
    pub imm: Expr,
    pub rd_val: Expr,
    pub next_pc: Expr,
}

impl AluTuple {
    /// Receives the tuple on the ALU bus with multiplicity `is_real`.
    pub fn receive(self, b: &mut stark::air::AirBuilder, is_real: Expr) {
        let values = [
            self.opcode,
            self.pc,
            self.clk,
            self.rs1_val,
            self.rs2_val,
            self.imm,
            self.rd_val,
            self.next_pc,
        ];
        b.receive(bus::ALU, &values, is_real);
    }
}

/// `sum(flag_i)` and `sum(flag_i * opcode_i)` over a chip's opcode flag columns, after asserting
/// each flag and their sum boolean: a real row selects exactly one opcode.
pub fn opcode_flags(
    b: &mut stark::air::AirBuilder,
    flags: &[(usize, crate::Opcode)],
) -> (Expr, Expr) {
    let mut is_real = c(0);
    let mut opcode = c(0);
    for &(col, op) in flags {
        let flag = b.main(col);
        b.assert_zero(flag.bool_check());
        is_real = is_real + flag.clone();
        opcode = opcode + flag * c(op as u64);
    }
    b.assert_zero(is_real.bool_check());
    (is_real, opcode)
}

/// A 32-bit word held in three columns from `lo`: 16 + 15 + 1 bits (low limb, middle 15 bits,
/// top bit). Range checks the pieces and returns (value, high 16 bits, top bit).
pub(crate) fn split_word(b: &mut AirBuilder, lo: usize, is_real: &Expr) -> (Expr, Expr, Expr) {
    let (l, mid, top) = (b.main(lo), b.main(lo + 1), b.main(lo + 2));
    b.assert_zero(top.bool_check());
    b.send(bus::RANGE16, std::slice::from_ref(&l), is_real.clone());
    // Both mid and 2 mid below 2^16: mid < 2^15 as an integer. (2 mid alone would admit
    // mid = (v + p) / 2 for odd v, and a value >= 2^31 could then claim top = 0.)
    b.send(bus::RANGE16, std::slice::from_ref(&mid), is_real.clone());
    b.send(bus::RANGE16, &[mid.clone() * c(2)], is_real.clone());
    let hi = mid + top.clone() * c(1 << 15);
    (l.clone() + hi.clone() * c(LIMB), hi, top)
}

/// Writes a word's 16 + 15 + 1 bit split at `lo` (see [`split_word`]); returns the three
/// range-checked values.
pub(crate) fn put_word(r: &mut [F], lo: usize, v: u32) -> [u64; 3] {
    let (l, mid, top) = (
        (v & 0xffff) as u64,
        ((v >> 16) & 0x7fff) as u64,
        (v >> 31) as u64,
    );
    r[lo] = f(l);
    r[lo + 1] = f(mid);
    r[lo + 2] = f(top);
    [l, mid, 2 * mid]
}

/// A chip row with `op`'s flag column set and its pc and clk columns (`pc_col`, `pc_col + 1`)
/// filled: how every chip's row builder starts.
pub(crate) fn chip_row<const W: usize>(
    flags: &[(usize, crate::Opcode)],
    op: crate::Opcode,
    pc_col: usize,
    pc: u32,
    clk: u64,
) -> [F; W] {
    let col = flags
        .iter()
        .find(|(_, o)| *o == op)
        .unwrap_or_else(|| panic!("{} is not an opcode of this chip", op.mnemonic()))
        .0;
    let mut r = [F::ZERO; W];
    r[col] = F::ONE;
    r[pc_col] = f(pc as u64);
    r[pc_col + 1] = f(clk);
    r
}
