//! The CPU table: one row per executed instruction (padding rows have `is_real = 0` and all
//! other columns zero).
//!
//! # Columns (main)
//! | column | meaning |
//! |--------|---------|
//! | `is_real` | 1 for an executed instruction |
//! | `pc`, `clk`, `next_pc` | where the instruction is, when it runs, where control goes next |
//! | `opcode, rd, rs1, rs2, imm, writes_rd` | the instruction, as the program table has it |
//! | `rs1_val, rs2_val` | the registers read |
//! | `rd_val` | the result the chip computed (written to rd when `writes_rd`) |
//! | `rs1_prev_ts, rs2_prev_ts, rd_prev_ts` | timestamps of the previous accesses to those registers |
//! | `rd_prev_val` | rd's value before the write |
//! | `rs1_lo, rs1_hi, rs2_lo, rs2_hi, rd_lo, rd_hi` | 16-bit limbs of each `now - prev - 1` |
//!
//! # Constraints
//! - `is_real` and `writes_rd` are boolean; `writes_rd <= is_real`.
//! - `is_real * (4clk + 1 - rs1_prev_ts - 1 - rs1_lo - 2^16 rs1_hi) = 0`, likewise rs2 at 4clk+2
//!   and, gated by `writes_rd`, rd at 4clk+4: every access is later than the previous one.
//!
//! # Bus interactions (multiplicity `is_real` unless noted)
//! - PROGRAM: receive `(pc, opcode, rd, rs1, rs2, imm, writes_rd)`.
//! - CHAIN: receive `(pc, clk)`, send `(next_pc, clk + 1)`.
//! - MEMORY: for rs1, receive `(2^40 + rs1, rs1_val, rs1_prev_ts)` and send
//!   `(2^40 + rs1, rs1_val, 4clk + 1)`; rs2 likewise at 4clk+2; for rd with multiplicity
//!   `writes_rd`, receive `(2^40 + rd, rd_prev_val, rd_prev_ts)`, send `(2^40 + rd, rd_val, 4clk + 4)`.
//! - RANGE16: send each of the six limbs (the rd limbs with multiplicity `writes_rd`).
//! - ALU: send `(opcode, pc, clk, rs1_val, rs2_val, imm, rd_val, next_pc)`.

use stark::air::{Air, AirBuilder, Expr};

use super::{LIMB, REG_BASE, bus, c};

pub const IS_REAL: usize = 0;
pub const PC: usize = 1;
pub const CLK: usize = 2;
pub const NEXT_PC: usize = 3;
pub const OPCODE: usize = 4;
pub const RD: usize = 5;
pub const RS1: usize = 6;
pub const RS2: usize = 7;
pub const IMM: usize = 8;
pub const WRITES_RD: usize = 9;
pub const RS1_VAL: usize = 10;
pub const RS2_VAL: usize = 11;
pub const RD_VAL: usize = 12;
pub const RS1_PREV_TS: usize = 13;
pub const RS2_PREV_TS: usize = 14;
pub const RD_PREV_TS: usize = 15;
pub const RD_PREV_VAL: usize = 16;
pub const RS1_LO: usize = 17;
pub const RS1_HI: usize = 18;
pub const RS2_LO: usize = 19;
pub const RS2_HI: usize = 20;
pub const RD_LO: usize = 21;
pub const RD_HI: usize = 22;
pub const WIDTH: usize = 23;

/// The CPU table.
pub struct CpuTable;

impl Air for CpuTable {
    fn name(&self) -> &str {
        "cpu"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let col = |b: &mut AirBuilder, i| b.main(i);
        let is_real = col(b, IS_REAL);
        let pc = col(b, PC);
        let clk = col(b, CLK);
        let next_pc = col(b, NEXT_PC);
        let writes_rd = col(b, WRITES_RD);
        let (rs1, rs2, rd) = (col(b, RS1), col(b, RS2), col(b, RD));
        let (rs1_val, rs2_val, rd_val) = (col(b, RS1_VAL), col(b, RS2_VAL), col(b, RD_VAL));

        b.assert_zero(is_real.bool_check());
        b.assert_zero(writes_rd.bool_check());
        b.assert_zero(writes_rd.clone() * (c(1) - is_real.clone()));

        let program: Vec<Expr> = [PC, OPCODE, RD, RS1, RS2, IMM, WRITES_RD]
            .iter()
            .map(|&i| b.main(i))
            .collect();
        b.receive(bus::PROGRAM, &program, is_real.clone());

        b.receive(bus::CHAIN, &[pc.clone(), clk.clone()], is_real.clone());
        b.send(
            bus::CHAIN,
            &[next_pc.clone(), clk.clone() + c(1)],
            is_real.clone(),
        );

        // Register accesses: (register, value before, value after, prev ts, slot, limbs, gate).
        let now = |slot: u64| clk.clone() * c(4) + c(slot);
        let accesses = [
            (
                rs1,
                rs1_val.clone(),
                rs1_val.clone(),
                RS1_PREV_TS,
                1,
                RS1_LO,
                RS1_HI,
                is_real.clone(),
            ),
            (
                rs2,
                rs2_val.clone(),
                rs2_val.clone(),
                RS2_PREV_TS,
                2,
                RS2_LO,
                RS2_HI,
                is_real.clone(),
            ),
            (
                rd,
                b.main(RD_PREV_VAL),
                rd_val.clone(),
                RD_PREV_TS,
                4,
                RD_LO,
                RD_HI,
                writes_rd.clone(),
            ),
        ];
        for (reg, before, after, prev_ts_col, slot, lo_col, hi_col, gate) in accesses {
            let addr = reg + c(REG_BASE);
            let prev_ts = b.main(prev_ts_col);
            let (lo, hi) = (b.main(lo_col), b.main(hi_col));
            b.assert_zero(
                gate.clone()
                    * (now(slot) - prev_ts.clone() - c(1) - lo.clone() - hi.clone() * c(LIMB)),
            );
            b.send(bus::RANGE16, &[lo], gate.clone());
            b.send(bus::RANGE16, &[hi], gate.clone());
            b.receive(bus::MEMORY, &[addr.clone(), before, prev_ts], gate.clone());
            b.send(bus::MEMORY, &[addr, after, now(slot)], gate);
        }

        let alu: Vec<Expr> = vec![
            b.main(OPCODE),
            pc,
            clk,
            rs1_val,
            rs2_val,
            b.main(IMM),
            rd_val,
            next_pc,
        ];
        b.send(bus::ALU, &alu, is_real);
    }
}
