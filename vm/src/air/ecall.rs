//! The ECALL chip: the system calls exit, exit_group, read and write.
//!
//! The CPU reads a7 as rs1 and a0 as rs2 and writes a0 as rd (see the program table); this chip
//! reads a1 (buffer) and a2 (length) itself, at timestamp 4clk+3, and hands the byte transfer to
//! the [`super::io`] table through an IO chain: it sends the start token
//! `(clk, kind, a1, count, pos0)` and receives the end token `(clk, kind, a1 + count, 0, pos_end)`,
//! which only a complete run of IO rows over the buffer can turn one into the other.
//!
//! # Columns (main)
//! Call flags `f_exit, f_exit_group, f_read, f_write`; `w_out, w_err` (write to fd 1 / fd 2);
//! `pc, clk, a0, a1, a2, rd_val, next_pc`; `a1_prev_ts, a2_prev_ts, a1_lo, a1_hi, a2_lo, a2_hi`
//! (register accesses); `r_lo, r_hi` (limbs of a2 - rd_val for read); `pos0, pos_end` (the output
//! cursor before and after a write to fd 1); `cur_prev_ts, cur_lo, cur_hi` (its access).
//!
//! # Constraints
//! - call flags and `w_out, w_err` boolean, at most one call (`is_real`); `w_out + w_err = f_write`.
//! - file descriptors: `f_read a0 = 0`, `f_write a0 = w_out + 2 w_err`.
//! - results: exit leaves a0 (`rd_val = a0`), write returns a2, read returns `rd_val <= a2`
//!   (`a2 - rd_val = r_lo + 2^16 r_hi`); any count up to a2 is consistent with some private input.
//! - `next_pc = (f_exit + f_exit_group) HALT_PC + (f_read + f_write)(pc + 4)`.
//! - register gaps: `io (4clk + 3 - prev - 1 - lo - 2^16 hi) = 0` for a1 and a2, `io = f_read + f_write`.
//! - `pos_end = pos0 + w_out rd_val`; `w_out (4clk + 3 - cur_prev_ts - 1 - cur_lo - 2^16 cur_hi) = 0`.
//!
//! # Bus interactions
//! - ALU (`is_real`): receive `(ECALL, pc, clk, a7, a0, 0, rd_val, next_pc)` with
//!   `a7 = 93 f_exit + 94 f_exit_group + 63 f_read + 64 f_write`.
//! - EXIT (`f_exit + f_exit_group`): send `(a0)`.
//! - MEMORY (`io`): a1 and a2 read at 4clk+3 (receive old, send same value with the new timestamp).
//! - RANGE16 (`is_real`): the six limbs.
//! - IO (`io`): send `(clk, kind, a1, rd_val, pos0)`, receive `(clk, kind, a1 + rd_val, 0, pos_end)`
//!   with `kind = w_out + 2 w_err` (0 for read).
//! - MEMORY, the output cursor (address [`OUTPUT_CURSOR`]): receive `(cursor, pos0, cur_prev_ts)`
//!   with `w_out + f_exit + f_exit_group`; a write to fd 1 sends `(cursor, pos_end, 4clk+3)`, the
//!   exit sends `(cursor, pos0, FINAL_TS)`, which the statement's output length consumes. The
//!   cursor is a timestamped memory cell, so writes take their output positions in time order.

use stark::air::{Air, AirBuilder};
use stark::field::{F, PrimeCharacteristicRing};

use super::{AluTuple, FINAL_TS, HALT_PC, LIMB, OUTPUT_CURSOR, REG_BASE, bus, c, f, timestamp};
use crate::Opcode;
use crate::machine::{reg, syscall};

pub const F_EXIT: usize = 0;
pub const F_EXIT_GROUP: usize = 1;
pub const F_READ: usize = 2;
pub const F_WRITE: usize = 3;
pub const W_OUT: usize = 4;
pub const W_ERR: usize = 5;
pub const PC: usize = 6;
pub const CLK: usize = 7;
pub const A0: usize = 8;
pub const A1: usize = 9;
pub const A2: usize = 10;
pub const RD_VAL: usize = 11;
pub const NEXT_PC: usize = 12;
pub const A1_PREV_TS: usize = 13;
pub const A2_PREV_TS: usize = 14;
pub const A1_LO: usize = 15;
pub const A1_HI: usize = 16;
pub const A2_LO: usize = 17;
pub const A2_HI: usize = 18;
pub const R_LO: usize = 19;
pub const R_HI: usize = 20;
pub const POS0: usize = 21;
pub const POS_END: usize = 22;
pub const CUR_PREV_TS: usize = 23;
pub const CUR_LO: usize = 24;
pub const CUR_HI: usize = 25;
pub const WIDTH: usize = 26;

/// Kinds of transfer on the IO chain.
pub const KIND_READ: u64 = 0;
pub const KIND_OUT: u64 = 1;
pub const KIND_ERR: u64 = 2;

/// The ECALL chip.
pub struct EcallChip;

impl Air for EcallChip {
    fn name(&self) -> &str {
        "ecall"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let m = |b: &mut AirBuilder, i| b.main(i);
        let (exit, exit_group, read, write) = (
            m(b, F_EXIT),
            m(b, F_EXIT_GROUP),
            m(b, F_READ),
            m(b, F_WRITE),
        );
        let (w_out, w_err) = (m(b, W_OUT), m(b, W_ERR));
        for flag in [&exit, &exit_group, &read, &write, &w_out, &w_err] {
            b.assert_zero(flag.bool_check());
        }
        let is_real = exit.clone() + exit_group.clone() + read.clone() + write.clone();
        b.assert_zero(is_real.bool_check());
        b.assert_zero(w_out.clone() + w_err.clone() - write.clone());
        let halts = exit.clone() + exit_group.clone();
        let io = read.clone() + write.clone();
        let (pc, clk, a0, a1, a2) = (m(b, PC), m(b, CLK), m(b, A0), m(b, A1), m(b, A2));
        let (rd_val, next_pc) = (m(b, RD_VAL), m(b, NEXT_PC));
        b.assert_zero(read.clone() * a0.clone());
        b.assert_zero(write.clone() * a0.clone() - w_out.clone() - w_err.clone() * c(2));
        b.assert_zero(halts.clone() * (rd_val.clone() - a0.clone()));
        b.assert_zero(write.clone() * (rd_val.clone() - a2.clone()));
        let (r_lo, r_hi) = (m(b, R_LO), m(b, R_HI));
        b.assert_zero(
            read.clone() * (a2.clone() - rd_val.clone() - r_lo.clone() - r_hi.clone() * c(LIMB)),
        );
        b.assert_zero(
            next_pc.clone() - halts.clone() * c(HALT_PC) - io.clone() * (pc.clone() + c(4)),
        );

        let now = clk.clone() * c(4) + c(3);
        let mut limbs = vec![r_lo, r_hi];
        for (value, reg, prev_col, lo_col) in [
            (a1.clone(), reg::A1, A1_PREV_TS, A1_LO),
            (a2.clone(), reg::A2, A2_PREV_TS, A2_LO),
        ] {
            let (prev, lo, hi) = (b.main(prev_col), b.main(lo_col), b.main(lo_col + 1));
            b.assert_zero(
                io.clone()
                    * (now.clone() - prev.clone() - c(1) - lo.clone() - hi.clone() * c(LIMB)),
            );
            let addr = c(REG_BASE + reg as u64);
            b.receive(
                bus::MEMORY,
                &[addr.clone(), value.clone(), prev],
                io.clone(),
            );
            b.send(bus::MEMORY, &[addr, value, now.clone()], io.clone());
            limbs.extend([lo, hi]);
        }
        for limb in limbs {
            b.send(bus::RANGE16, &[limb], is_real.clone());
        }

        let (pos0, pos_end) = (m(b, POS0), m(b, POS_END));
        b.assert_zero(pos_end.clone() - pos0.clone() - w_out.clone() * rd_val.clone());
        let kind = w_out.clone() + w_err * c(2);
        b.send(
            bus::IO,
            &[
                clk.clone(),
                kind.clone(),
                a1.clone(),
                rd_val.clone(),
                pos0.clone(),
            ],
            io.clone(),
        );
        b.receive(
            bus::IO,
            &[
                clk.clone(),
                kind,
                a1 + rd_val.clone(),
                c(0),
                pos_end.clone(),
            ],
            io,
        );
        let cursor = c(OUTPUT_CURSOR);
        let (cur_prev, cur_lo, cur_hi) = (m(b, CUR_PREV_TS), m(b, CUR_LO), m(b, CUR_HI));
        b.assert_zero(
            w_out.clone()
                * (now.clone()
                    - cur_prev.clone()
                    - c(1)
                    - cur_lo.clone()
                    - cur_hi.clone() * c(LIMB)),
        );
        b.send(bus::RANGE16, &[cur_lo], is_real.clone());
        b.send(bus::RANGE16, &[cur_hi], is_real.clone());
        b.receive(
            bus::MEMORY,
            &[cursor.clone(), pos0, cur_prev],
            w_out.clone() + halts.clone(),
        );
        b.send(
            bus::MEMORY,
            &[cursor.clone(), pos_end.clone(), now.clone()],
            w_out,
        );
        b.send(bus::MEMORY, &[cursor, pos_end, c(FINAL_TS)], halts.clone());
        b.send(bus::EXIT, std::slice::from_ref(&a0), halts);

        let a7 = exit * c(syscall::EXIT as u64)
            + exit_group * c(syscall::EXIT_GROUP as u64)
            + read * c(syscall::READ as u64)
            + write * c(syscall::WRITE as u64);
        AluTuple {
            opcode: is_real.clone() * c(Opcode::Ecall as u64),
            pc,
            clk,
            rs1_val: a7,
            rs2_val: a0,
            imm: c(0),
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// Register and output state an ECALL row needs beyond its step.
pub struct EcallInputs {
    pub a1: u32,
    pub a2: u32,
    /// Previous access timestamps of a1 and a2.
    pub a1_prev_ts: u64,
    pub a2_prev_ts: u64,
    /// Output bytes written before this call (the cursor's value).
    pub pos0: u64,
    /// Previous access of the output cursor.
    pub cursor_prev_ts: u64,
}

/// The chip row for one system call, and its 16-bit range-checked values.
pub fn row(
    number: u32,
    pc: u32,
    clk: u64,
    a0: u32,
    rd_val: u32,
    next_pc: u64,
    inputs: &EcallInputs,
) -> ([F; WIDTH], [u64; 8]) {
    let mut r = [F::ZERO; WIDTH];
    r[match number {
        syscall::EXIT => F_EXIT,
        syscall::EXIT_GROUP => F_EXIT_GROUP,
        syscall::READ => F_READ,
        _ => F_WRITE,
    }] = F::ONE;
    let io = matches!(number, syscall::READ | syscall::WRITE);
    let out = number == syscall::WRITE && a0 == 1;
    if number == syscall::WRITE {
        r[if out { W_OUT } else { W_ERR }] = F::ONE;
    }
    r[PC] = f(pc as u64);
    r[CLK] = f(clk);
    r[A0] = f(a0 as u64);
    r[RD_VAL] = f(rd_val as u64);
    r[NEXT_PC] = f(next_pc);
    let mut limbs = [0u64; 8];
    if number == syscall::READ {
        let spare = (inputs.a2 - rd_val) as u64;
        limbs[0] = spare & 0xffff;
        limbs[1] = spare >> 16;
    }
    if io {
        r[A1] = f(inputs.a1 as u64);
        r[A2] = f(inputs.a2 as u64);
        r[A1_PREV_TS] = f(inputs.a1_prev_ts);
        r[A2_PREV_TS] = f(inputs.a2_prev_ts);
        let now = timestamp(clk, 3);
        for (k, prev) in [inputs.a1_prev_ts, inputs.a2_prev_ts]
            .into_iter()
            .enumerate()
        {
            let gap = now - prev - 1;
            limbs[2 + 2 * k] = gap & 0xffff;
            limbs[3 + 2 * k] = gap >> 16;
        }
    }
    let halts = matches!(number, syscall::EXIT | syscall::EXIT_GROUP);
    // Every call carries the cursor's value in its IO tokens (its IO rows' `pos`), whether or
    // not it moves the cursor: a read or a write to fd 2 after some output must match rows
    // whose `pos` is that output's length.
    r[POS0] = f(inputs.pos0);
    r[POS_END] = f(inputs.pos0 + if out { rd_val as u64 } else { 0 });
    if out || halts {
        r[CUR_PREV_TS] = f(inputs.cursor_prev_ts);
    }
    if out {
        let gap = timestamp(clk, 3) - inputs.cursor_prev_ts - 1;
        limbs[6] = gap & 0xffff;
        limbs[7] = gap >> 16;
        r[CUR_LO] = f(limbs[6]);
        r[CUR_HI] = f(limbs[7]);
    }
    r[R_LO] = f(limbs[0]);
    r[R_HI] = f(limbs[1]);
    r[A1_LO] = f(limbs[2]);
    r[A1_HI] = f(limbs[3]);
    r[A2_LO] = f(limbs[4]);
    r[A2_HI] = f(limbs[5]);
    (r, limbs)
}
