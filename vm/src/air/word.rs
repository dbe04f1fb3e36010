//! The WORD chip: loads and stores of whole words (LW, SW).
//!
//! Word accesses are most of what compiled programs load and store (stack slots, pointers,
//! struct fields), and they need none of the [`super::memory`] chip's byte columns: a word moves
//! between a register and memory as it is. Each row accesses one aligned word through the memory
//! argument at timestamp 4clk+3.
//!
//! # Columns (main)
//! Opcode flags `f_lw, f_sw`; `pc, clk, a` (rs1 value), `rs2_val, imm, rd_val`; `word_addr`;
//! `carry`; `prev_ts, t_lo, t_hi` (previous access and the 16-bit limbs of the gap);
//! `before, after` (the word before and after the access); `ro` (the word is on a read-only
//! page).
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real = f_lw + f_sw`); `carry, ro` boolean.
//! - address: `word_addr + 2^32 carry = a + imm`.
//! - permissions: `f_sw ro = 0`: a store addresses the untagged word, which a read-only page
//!   does not have (see [`super::image`]).
//! - `rd_val = f_lw before` (a store's rd_val is 0, as the CPU row has it).
//! - `after = before + f_sw (rs2_val - before)`: a load leaves the word, a store replaces it.
//! - on real rows `4clk + 3 - prev_ts - 1 = t_lo + 2^16 t_hi`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, rs2_val, imm, rd_val, pc + 4)`.
//! - MEMORY: receive `(addr, before, prev_ts)`, send `(addr, after, 4clk+3)` with
//!   `addr = word_addr + READ_ONLY_TAG ro`.
//! - RANGE16: `t_lo, t_hi`.
//!
//! # Why no alignment, address or value checks
//! - *Alignment and range.* Only 4-aligned addresses of the image have an initial memory token
//!   (registers and the output cursor sit at 2^40 and above, read-only words at 2^42 and above).
//!   `a + imm` is below 2^33, so with either value of `carry` a misaligned, wrapped-wrongly or
//!   out-of-image address names no token and its receive cannot balance. This is the memory
//!   chip's argument; the e-columns there exist to select bytes, not to align.
//! - *Values.* `before` is the value of a memory token and `rs2_val` a register's, both u32 by
//!   the induction of [`super`] ("Values"), so `rd_val` and `after` are u32 without a range
//!   check of their own.

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{
    AluTuple, LIMB, READ_ONLY_TAG, WordAccess, bus, c, chip_row, f, opcode_flags, timestamp,
};
use crate::Opcode;

pub const F_LW: usize = 0;
pub const F_SW: usize = 1;
pub const PC: usize = 2;
pub const CLK: usize = 3;
pub const A: usize = 4;
pub const RS2_VAL: usize = 5;
pub const IMM: usize = 6;
pub const RD_VAL: usize = 7;
pub const WORD_ADDR: usize = 8;
pub const CARRY: usize = 9;
pub const PREV_TS: usize = 10;
pub const T_LO: usize = 11;
pub const T_HI: usize = 12;
pub const BEFORE: usize = 13;
pub const AFTER: usize = 14;
pub const RO: usize = 15;
pub const WIDTH: usize = 16;

const FLAGS: [(usize, Opcode); 2] = [(F_LW, Opcode::Lw), (F_SW, Opcode::Sw)];

/// The WORD chip.
pub struct WordChip;

impl Air for WordChip {
    fn name(&self) -> &str {
        "word"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let (lw, sw) = (m(b, F_LW), m(b, F_SW));
        let (pc, clk, a, rs2_val, imm, rd_val) = (
            m(b, PC),
            m(b, CLK),
            m(b, A),
            m(b, RS2_VAL),
            m(b, IMM),
            m(b, RD_VAL),
        );
        let (word_addr, carry, ro) = (m(b, WORD_ADDR), m(b, CARRY), m(b, RO));
        let (before, after) = (m(b, BEFORE), m(b, AFTER));
        b.assert_zero(carry.bool_check());
        b.assert_zero(ro.bool_check());
        b.assert_zero(word_addr.clone() + carry * c(1 << 32) - a.clone() - imm.clone());
        b.assert_zero(sw.clone() * ro.clone());
        b.assert_zero(rd_val.clone() - lw * before.clone());
        b.assert_zero(after.clone() - before.clone() - sw * (rs2_val.clone() - before.clone()));

        let (prev_ts, t_lo, t_hi) = (m(b, PREV_TS), m(b, T_LO), m(b, T_HI));
        let now = clk.clone() * c(4) + c(3);
        b.assert_zero(
            is_real.clone()
                * (now.clone() - prev_ts.clone() - c(1) - t_lo.clone() - t_hi.clone() * c(LIMB)),
        );
        let addr = word_addr + ro * c(READ_ONLY_TAG);
        b.receive(
            bus::MEMORY,
            &[addr.clone(), before, prev_ts],
            is_real.clone(),
        );
        b.send(bus::MEMORY, &[addr, after, now], is_real.clone());
        b.send(bus::RANGE16, &[t_lo], is_real.clone());
        b.send(bus::RANGE16, &[t_hi], is_real.clone());
        let next_pc = pc.clone() + c(4);
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val: a,
            rs2_val,
            imm,
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The chip row for one LW or SW, and the two 16-bit limbs of its time gap (sent to RANGE16).
#[allow(clippy::too_many_arguments)]
pub fn row(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    rs2_val: u32,
    imm: u32,
    rd_val: u32,
    access: &WordAccess,
) -> ([F; WIDTH], [u64; 2]) {
    let sum = a as u64 + imm as u64;
    let gap = timestamp(clk, 3) - access.prev_ts - 1;
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[A] = f(a as u64);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    r[RD_VAL] = f(rd_val as u64);
    r[WORD_ADDR] = f(sum & 0xffff_ffff);
    r[CARRY] = f(sum >> 32);
    r[PREV_TS] = f(access.prev_ts);
    r[T_LO] = f(gap & 0xffff);
    r[T_HI] = f(gap >> 16);
    r[BEFORE] = f(access.before as u64);
    r[AFTER] = f(access.after as u64);
    r[RO] = f(access.read_only as u64);
    (r, [gap & 0xffff, gap >> 16])
}
