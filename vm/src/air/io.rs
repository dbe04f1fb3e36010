//! The IO table: the bytes a `read` or `write` system call moves, one row per memory word the
//! buffer touches, each accessing that word at its call's timestamp 4clk+3 (words differ, so
//! one timestamp serves them all).
//!
//! Rows of one call form a chain from the ECALL chip's start token to its end token:
//! each receives `(clk, kind, start, remaining, pos)` and sends
//! `(clk, kind, start + count, remaining - count, pos + out_count)`, covering bytes
//! `start .. start + count` of its word.
//!
//! # Columns (main)
//! Kind flags `is_read, is_out, is_err`; `clk, start, remaining, pos, word_addr`; `e0..e3` (one-hot
//! offset of `start` in the word), `z0..z3` (one-hot offset of the last byte moved), `k0..k3`
//! (which bytes move), `count`; `m0..m3, n0..n3` (the word's bytes before and after);
//! `prev_ts, t_lo, t_hi`; `out0..out3` (`k_i * is_out`); `ro` (the word is on a read-only page).
//!
//! # Constraints
//! - kind flags boolean, at most one (`is_real`); `e_i, z_i, k_i, ro` boolean;
//!   `sum e = sum z = is_real`.
//! - `start = word_addr + sum i e_i`; `k_i = sum_{j<=i} e_j - sum_{j<i} z_j` (the run from the
//!   first to the last byte; k boolean forces last >= first - 1); `count = sum k_i`.
//! - `sum e_i k_i = is_real`: the first byte moves, so a real row moves at least one byte
//!   (last >= first). A row moving none would receive and send the same IO token, needing no
//!   system call behind it, and its `clk` would be free: a memory access at any timestamp.
//!   A call that moves no bytes has no IO rows: its start and end tokens are equal and cancel.
//! - `(remaining - count)(1 - z3) = 0`: a run that stops before the word's end ends the transfer
//!   (a longer claim leaves a negative remainder that no end token matches).
//! - `(1 - is_read)(n_i - m_i) = 0`, `(1 - k_i)(n_i - m_i) = 0`: only a read changes memory, and
//!   only the buffer's bytes (with any byte values: the input is private).
//! - `out_i = k_i is_out`; on real rows `4clk + 3 - prev_ts - 1 = t_lo + 2^16 t_hi`.
//! - `is_read ro = 0`: `read` fills only writable words (a `write` may read any).
//!
//! # Bus interactions (multiplicity `is_real` unless noted)
//! - IO: receive and send the chain tokens above, `kind = is_out + 2 is_err`.
//! - MEMORY: receive `(addr, sum m_i 256^i, prev_ts)`, send `(addr, sum n_i 256^i, 4clk+3)`,
//!   `addr = word_addr + READ_ONLY_TAG ro` (see [`super::image`]).
//! - RANGE16: `t_lo, t_hi`. BYTE PAIR: `(m0, m1), (m2, m3), (n0, n1), (n2, n3)`.
//! - OUTPUT (`out_i`): send `(pos + i - offset, m_i)`: byte i is output byte number pos + i - offset,
//!   matched by the statement's output bytes.

use stark::air::{Air, AirBuilder, Expr};
use stark::field::{F, PrimeCharacteristicRing};

use super::{LIMB, READ_ONLY_TAG, bus, bytes, c, f, timestamp};

pub const IS_READ: usize = 0;
pub const IS_OUT: usize = 1;
pub const IS_ERR: usize = 2;
pub const CLK: usize = 3;
pub const START: usize = 4;
pub const REMAINING: usize = 5;
pub const POS: usize = 6;
pub const WORD_ADDR: usize = 7;
pub const E0: usize = 8;
pub const Z0: usize = 12;
pub const K0: usize = 16;
pub const COUNT: usize = 20;
pub const M0: usize = 21;
pub const N0: usize = 25;
pub const PREV_TS: usize = 29;
pub const T_LO: usize = 30;
pub const T_HI: usize = 31;
pub const OUT0: usize = 32;
pub const RO: usize = 36;
pub const WIDTH: usize = 37;

/// The IO table.
pub struct IoTable;

fn cols(b: &mut AirBuilder, first: usize) -> Vec<Expr> {
    (0..4).map(|i| b.main(first + i)).collect()
}

fn word(bytes: &[Expr]) -> Expr {
    bytes
        .iter()
        .enumerate()
        .fold(c(0), |acc, (i, x)| acc + x.clone() * c(1 << (8 * i)))
}

impl Air for IoTable {
    fn name(&self) -> &str {
        "io"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let m = |b: &mut AirBuilder, i| b.main(i);
        let (is_read, is_out, is_err) = (m(b, IS_READ), m(b, IS_OUT), m(b, IS_ERR));
        let is_real = is_read.clone() + is_out.clone() + is_err.clone();
        for flag in [&is_read, &is_out, &is_err] {
            b.assert_zero(flag.bool_check());
        }
        b.assert_zero(is_real.bool_check());
        let (e, z, k) = (cols(b, E0), cols(b, Z0), cols(b, K0));
        for v in e.iter().chain(&z).chain(&k) {
            b.assert_zero(v.bool_check());
        }
        let sum = |v: &[Expr]| v.iter().fold(c(0), |acc, x| acc + x.clone());
        b.assert_zero(sum(&e) - is_real.clone());
        b.assert_zero(sum(&z) - is_real.clone());
        let (clk, start, remaining, pos, word_addr) = (
            m(b, CLK),
            m(b, START),
            m(b, REMAINING),
            m(b, POS),
            m(b, WORD_ADDR),
        );
        let offset = e[1].clone() + e[2].clone() * c(2) + e[3].clone() * c(3);
        b.assert_zero(start.clone() - word_addr.clone() - offset.clone());
        for i in 0..4 {
            b.assert_zero(k[i].clone() - sum(&e[..=i]) + sum(&z[..i]));
        }
        let count = m(b, COUNT);
        b.assert_zero(count.clone() - sum(&k));
        let first_moves = (0..4).fold(c(0), |acc, i| acc + e[i].clone() * k[i].clone());
        b.assert_zero(first_moves - is_real.clone());
        b.assert_zero((remaining.clone() - count.clone()) * (c(1) - z[3].clone()));
        let (mb, nb, out) = (cols(b, M0), cols(b, N0), cols(b, OUT0));
        for i in 0..4 {
            let changed = nb[i].clone() - mb[i].clone();
            b.assert_zero((c(1) - is_read.clone()) * changed.clone());
            b.assert_zero((c(1) - k[i].clone()) * changed);
            b.assert_zero(out[i].clone() - k[i].clone() * is_out.clone());
        }
        let ro = m(b, RO);
        b.assert_zero(ro.bool_check());
        b.assert_zero(is_read.clone() * ro.clone());
        let mem_addr = word_addr.clone() + ro * c(READ_ONLY_TAG);
        let (prev_ts, t_lo, t_hi) = (m(b, PREV_TS), m(b, T_LO), m(b, T_HI));
        let now = clk.clone() * c(4) + c(3);
        b.assert_zero(
            is_real.clone()
                * (now.clone() - prev_ts.clone() - c(1) - t_lo.clone() - t_hi.clone() * c(LIMB)),
        );

        let kind = is_out + is_err * c(2);
        let out_count = sum(&out);
        b.receive(
            bus::IO,
            &[
                clk.clone(),
                kind.clone(),
                start.clone(),
                remaining.clone(),
                pos.clone(),
            ],
            is_real.clone(),
        );
        b.send(
            bus::IO,
            &[
                clk,
                kind,
                start + count.clone(),
                remaining - count,
                pos.clone() + out_count,
            ],
            is_real.clone(),
        );
        b.receive(
            bus::MEMORY,
            &[mem_addr.clone(), word(&mb), prev_ts],
            is_real.clone(),
        );
        b.send(bus::MEMORY, &[mem_addr, word(&nb), now], is_real.clone());
        b.send(bus::RANGE16, &[t_lo], is_real.clone());
        b.send(bus::RANGE16, &[t_hi], is_real.clone());
        for pair in [
            (&mb[0], &mb[1]),
            (&mb[2], &mb[3]),
            (&nb[0], &nb[1]),
            (&nb[2], &nb[3]),
        ] {
            b.send(
                bus::BYTE,
                &[c(bytes::PAIR), pair.0.clone(), pair.1.clone(), c(0)],
                is_real.clone(),
            );
        }
        for i in 0..4 {
            let position = pos.clone() + c(i as u64) - offset.clone();
            b.send(bus::OUTPUT, &[position, mb[i].clone()], out[i].clone());
        }
    }
}

/// One row of a transfer: the word at `word_addr` with bytes `first..=last` moved.
pub struct IoRow {
    pub kind: u64,
    pub clk: u64,
    pub word_addr: u32,
    pub first: usize,
    pub last: usize,
    /// Bytes still to move when this row starts (this row included).
    pub remaining: u64,
    /// Output position of the row's first byte.
    pub pos: u64,
    pub before: u32,
    pub after: u32,
    pub prev_ts: u64,
    /// The word is on a read-only page.
    pub read_only: bool,
}

impl IoRow {
    /// The row's cells, and the 16-bit limbs of its timestamp gap.
    pub fn cells(&self) -> ([F; WIDTH], [u64; 2]) {
        let mut r = [F::ZERO; WIDTH];
        r[[IS_READ, IS_OUT, IS_ERR][self.kind as usize]] = F::ONE;
        r[CLK] = f(self.clk);
        r[START] = f(self.word_addr as u64 + self.first as u64);
        r[REMAINING] = f(self.remaining);
        r[POS] = f(self.pos);
        r[WORD_ADDR] = f(self.word_addr as u64);
        r[E0 + self.first] = F::ONE;
        r[Z0 + self.last] = F::ONE;
        let (mb, nb) = (self.before.to_le_bytes(), self.after.to_le_bytes());
        for i in 0..4 {
            let moved = (self.first..=self.last).contains(&i);
            r[K0 + i] = f(moved as u64);
            r[M0 + i] = f(mb[i] as u64);
            r[N0 + i] = f(nb[i] as u64);
            r[OUT0 + i] = f((moved && self.kind == super::ecall::KIND_OUT) as u64);
        }
        r[COUNT] = f((self.last - self.first + 1) as u64);
        r[RO] = f(self.read_only as u64);
        let gap = timestamp(self.clk, 3) - self.prev_ts - 1;
        r[PREV_TS] = f(self.prev_ts);
        r[T_LO] = f(gap & 0xffff);
        r[T_HI] = f(gap >> 16);
        (r, [gap & 0xffff, gap >> 16])
    }
}
