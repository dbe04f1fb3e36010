//! The MEMORY chip: loads and stores of bytes and halfwords (LB, LH, LBU, LHU, SB, SH). Whole
//! words (LW, SW) need none of its byte columns and have their own narrower chip, [`super::word`].
//!
//! Each row accesses one aligned word through the memory argument at timestamp 4clk+3.
//!
//! # Columns (main)
//! Opcode flags `f_lb, f_lh, f_lbu, f_lhu, f_sb, f_sh`; `pc, clk, a` (rs1 value),
//! `rs2_val, imm, rd_val`; `word_addr`; `e0..e3` (one-hot byte offset); `carry`;
//! `prev_ts, t_lo, t_hi` (previous access and the 16-bit limbs of the gap);
//! `m0..m3` (bytes of the word before), `r0..r3` (bytes of rs2, stores only), `mem_after`;
//! `sel_byte, low7, sbit` (the addressed byte, its low 7 bits and sign bit);
//! `sel_half, low15, hbit` (the addressed halfword likewise); `ro` (the word is on a read-only
//! page).
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `e_i, carry, sbit, hbit, ro` boolean;
//!   `e0 + e1 + e2 + e3 = is_real`.
//! - address: `word_addr + e1 + 2 e2 + 3 e3 + 2^32 carry = a + imm`. word_addr needs no range
//!   check: only 4-aligned addresses of the image have an initial memory token.
//! - alignment: `(f_lh + f_lhu + f_sh)(e1 + e3) = 0`.
//! - permissions: `(f_sb + f_sh) ro = 0`: a store addresses the untagged word, which a
//!   read-only page does not have (see [`super::image`]).
//! - stores: `(f_sb + f_sh)(rs2_val - sum r_i 256^i) = 0`.
//! - `mem_after = sum 256^i new_i`, where new_i is m_i for loads, and for stores the rs2 byte that
//!   lands on byte i (SB: `e_i r0 + (1 - e_i) m_i`; SH at offset 0 or 2).
//! - `sel_byte = sum e_i m_i = low7 + 128 sbit`; `sel_half = e0 (m0 + 256 m1) + e2 (m2 + 256 m3)
//!   = low15 + 2^15 hbit`.
//! - `rd_val = f_lbu sel_byte + f_lb (sel_byte + 0xffffff00 sbit) + f_lhu sel_half
//!   + f_lh (sel_half + 0xffff0000 hbit)`.
//! - on real rows `4clk + 3 - prev_ts - 1 = t_lo + 2^16 t_hi`.
//!
//! # Bus interactions
//! - ALU (`is_real`): receive `(opcode, pc, clk, a, rs2_val, imm, rd_val, pc + 4)`.
//! - MEMORY (`is_real`): receive `(addr, word, prev_ts)`, send `(addr, mem_after, 4clk+3)`
//!   with `word = sum m_i 256^i` and `addr = word_addr + READ_ONLY_TAG ro`.
//! - RANGE16 (`is_real`): `t_lo, t_hi, 2 low15`.
//! - BYTE PAIR: `(m0, m1), (m2, m3), (2 low7, 0)` with `is_real`; `(r0, r1), (r2, r3)` with
//!   the store flags' sum.

use stark::air::{Air, AirBuilder, Expr};
use stark::field::{F, PrimeCharacteristicRing};

use super::{
    AluTuple, LIMB, READ_ONLY_TAG, WordAccess, bus, bytes, c, chip_row, f, opcode_flags, timestamp,
};
use crate::Opcode;

pub const F_LB: usize = 0;
pub const F_LH: usize = 1;
pub const F_LBU: usize = 2;
pub const F_LHU: usize = 3;
pub const F_SB: usize = 4;
pub const F_SH: usize = 5;
pub const PC: usize = 6;
pub const CLK: usize = 7;
pub const A: usize = 8;
pub const RS2_VAL: usize = 9;
pub const IMM: usize = 10;
pub const RD_VAL: usize = 11;
pub const WORD_ADDR: usize = 12;
pub const E0: usize = 13;
pub const CARRY: usize = 17;
pub const PREV_TS: usize = 18;
pub const T_LO: usize = 19;
pub const T_HI: usize = 20;
pub const M0: usize = 21;
pub const R0: usize = 25;
pub const MEM_AFTER: usize = 29;
pub const SEL_BYTE: usize = 30;
pub const LOW7: usize = 31;
pub const SBIT: usize = 32;
pub const SEL_HALF: usize = 33;
pub const LOW15: usize = 34;
pub const HBIT: usize = 35;
pub const RO: usize = 36;
pub const WIDTH: usize = 37;

const FLAGS: [(usize, Opcode); 6] = [
    (F_LB, Opcode::Lb),
    (F_LH, Opcode::Lh),
    (F_LBU, Opcode::Lbu),
    (F_LHU, Opcode::Lhu),
    (F_SB, Opcode::Sb),
    (F_SH, Opcode::Sh),
];

/// The MEMORY chip.
pub struct MemoryChip;

fn word(bytes: &[Expr]) -> Expr {
    bytes
        .iter()
        .enumerate()
        .fold(c(0), |acc, (i, b)| acc + b.clone() * c(1 << (8 * i)))
}

impl Air for MemoryChip {
    fn name(&self) -> &str {
        "memory"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let (lb, lh, lbu, lhu) = (m(b, F_LB), m(b, F_LH), m(b, F_LBU), m(b, F_LHU));
        let (sb, sh) = (m(b, F_SB), m(b, F_SH));
        let is_load = lb.clone() + lh.clone() + lbu.clone() + lhu.clone();
        let is_store = sb.clone() + sh.clone();
        let (pc, clk, a, rs2_val, imm, rd_val) = (
            m(b, PC),
            m(b, CLK),
            m(b, A),
            m(b, RS2_VAL),
            m(b, IMM),
            m(b, RD_VAL),
        );
        let word_addr = m(b, WORD_ADDR);
        let e: Vec<Expr> = (0..4).map(|i| b.main(E0 + i)).collect();
        let mb: Vec<Expr> = (0..4).map(|i| b.main(M0 + i)).collect();
        let r: Vec<Expr> = (0..4).map(|i| b.main(R0 + i)).collect();
        for col in [E0, E0 + 1, E0 + 2, E0 + 3, CARRY, SBIT, HBIT, RO] {
            let v = b.main(col);
            b.assert_zero(v.bool_check());
        }
        b.assert_zero(e[0].clone() + e[1].clone() + e[2].clone() + e[3].clone() - is_real.clone());
        let offset = e[1].clone() + e[2].clone() * c(2) + e[3].clone() * c(3);
        let carry = m(b, CARRY);
        b.assert_zero(word_addr.clone() + offset + carry * c(1 << 32) - a.clone() - imm.clone());
        b.assert_zero((lh.clone() + lhu.clone() + sh.clone()) * (e[1].clone() + e[3].clone()));
        b.assert_zero(is_store.clone() * (rs2_val.clone() - word(&r)));
        let ro = m(b, RO);
        b.assert_zero(is_store.clone() * ro.clone());
        let bus_addr = word_addr + ro * c(READ_ONLY_TAG);

        let before = word(&mb);
        let sh_bytes = [
            e[0].clone() * r[0].clone() + e[2].clone() * mb[0].clone(),
            e[0].clone() * r[1].clone() + e[2].clone() * mb[1].clone(),
            e[0].clone() * mb[2].clone() + e[2].clone() * r[0].clone(),
            e[0].clone() * mb[3].clone() + e[2].clone() * r[1].clone(),
        ];
        let new_bytes: Vec<Expr> = (0..4)
            .map(|i| {
                is_load.clone() * mb[i].clone()
                    + sb.clone()
                        * (e[i].clone() * r[0].clone() + (c(1) - e[i].clone()) * mb[i].clone())
                    + sh.clone() * sh_bytes[i].clone()
            })
            .collect();
        let mem_after = m(b, MEM_AFTER);
        b.assert_zero(mem_after.clone() - word(&new_bytes));

        let (sel_byte, low7, sbit) = (m(b, SEL_BYTE), m(b, LOW7), m(b, SBIT));
        let selected = (0..4).fold(c(0), |acc, i| acc + e[i].clone() * mb[i].clone());
        b.assert_zero(sel_byte.clone() - selected);
        b.assert_zero(sel_byte.clone() - low7.clone() - sbit.clone() * c(128));
        let (sel_half, low15, hbit) = (m(b, SEL_HALF), m(b, LOW15), m(b, HBIT));
        let half = e[0].clone() * (mb[0].clone() + mb[1].clone() * c(256))
            + e[2].clone() * (mb[2].clone() + mb[3].clone() * c(256));
        b.assert_zero(sel_half.clone() - half);
        b.assert_zero(sel_half.clone() - low15.clone() - hbit.clone() * c(1 << 15));
        b.assert_zero(
            rd_val.clone()
                - lbu * sel_byte.clone()
                - lb * (sel_byte + sbit * c(0xffff_ff00))
                - lhu * sel_half.clone()
                - lh * (sel_half + hbit * c(0xffff_0000)),
        );

        let (prev_ts, t_lo, t_hi) = (m(b, PREV_TS), m(b, T_LO), m(b, T_HI));
        let now = clk.clone() * c(4) + c(3);
        b.assert_zero(
            is_real.clone()
                * (now.clone() - prev_ts.clone() - c(1) - t_lo.clone() - t_hi.clone() * c(LIMB)),
        );
        b.receive(
            bus::MEMORY,
            &[bus_addr.clone(), before, prev_ts],
            is_real.clone(),
        );
        b.send(bus::MEMORY, &[bus_addr, mem_after, now], is_real.clone());
        b.send(bus::RANGE16, &[t_lo], is_real.clone());
        b.send(bus::RANGE16, &[t_hi], is_real.clone());
        b.send(bus::RANGE16, &[low15 * c(2)], is_real.clone());
        let pair = |x: Expr, y: Expr| [c(bytes::PAIR), x, y, c(0)];
        b.send(
            bus::BYTE,
            &pair(mb[0].clone(), mb[1].clone()),
            is_real.clone(),
        );
        b.send(
            bus::BYTE,
            &pair(mb[2].clone(), mb[3].clone()),
            is_real.clone(),
        );
        b.send(bus::BYTE, &pair(low7 * c(2), c(0)), is_real.clone());
        b.send(
            bus::BYTE,
            &pair(r[0].clone(), r[1].clone()),
            is_store.clone(),
        );
        b.send(bus::BYTE, &pair(r[2].clone(), r[3].clone()), is_store);
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

/// The lookups a memory row makes.
pub struct Lookups {
    /// 16-bit values sent to RANGE16.
    pub range16: [u64; 3],
    /// Byte pairs sent to BYTE (PAIR): always the first three, the last two for stores.
    pub pairs: [(u8, u8); 5],
}

/// The chip row for one byte or halfword load or store, and the lookups it makes.
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
) -> ([F; WIDTH], Lookups) {
    let store = matches!(op, Opcode::Sb | Opcode::Sh);
    let sum = a as u64 + imm as u64;
    let addr = sum as u32;
    let offset = (addr & 3) as usize;
    let mb = access.before.to_le_bytes();
    let rb = if store { rs2_val.to_le_bytes() } else { [0; 4] };
    let sel_byte = mb[offset] as u64;
    let sel_half = match offset {
        0 => u16::from_le_bytes([mb[0], mb[1]]) as u64,
        2 => u16::from_le_bytes([mb[2], mb[3]]) as u64,
        _ => 0,
    };
    let gap = timestamp(clk, 3) - access.prev_ts - 1;
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[A] = f(a as u64);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    r[RD_VAL] = f(rd_val as u64);
    r[WORD_ADDR] = f((addr & !3) as u64);
    r[E0 + offset] = F::ONE;
    r[CARRY] = f(sum >> 32);
    r[PREV_TS] = f(access.prev_ts);
    r[T_LO] = f(gap & 0xffff);
    r[T_HI] = f(gap >> 16);
    for i in 0..4 {
        r[M0 + i] = f(mb[i] as u64);
        r[R0 + i] = f(rb[i] as u64);
    }
    r[MEM_AFTER] = f(access.after as u64);
    r[SEL_BYTE] = f(sel_byte);
    r[LOW7] = f(sel_byte & 0x7f);
    r[SBIT] = f(sel_byte >> 7);
    r[SEL_HALF] = f(sel_half);
    r[LOW15] = f(sel_half & 0x7fff);
    r[HBIT] = f(sel_half >> 15);
    r[RO] = f(access.read_only as u64);
    let lookups = Lookups {
        range16: [gap & 0xffff, gap >> 16, 2 * (sel_half & 0x7fff)],
        pairs: [
            (mb[0], mb[1]),
            (mb[2], mb[3]),
            (2 * (sel_byte as u8 & 0x7f), 0),
            (rb[0], rb[1]),
            (rb[2], rb[3]),
        ],
    };
    (r, lookups)
}
