//! Fault injection: one named fault per constraint family, each applied to an honest witness
//! as a cheating prover would (edit cells, then recount the range and byte lookups so that
//! only the targeted check can object), proved without any self-check, and handed to the
//! unmodified verifier, which must refuse it.
//!
//! Every fault also states *what* should catch it: a table's polynomial constraints, a bus
//! that no longer balances, or a check of the statement before the STARK. The harness asserts
//! that, with the debug checkers, before asserting the verifier's refusal, so a fault that
//! drifted off its target (or stopped changing anything) fails the test instead of passing
//! for the wrong reason.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use common::{At, Forgery, fixture};
use stark::field::{F, PrimeCharacteristicRing, canonical};
use vm::air::{
    ExecutionError, add, bitwise, branch, bus, cpu, div, ecall, image, io, jump, lt, memory, mul,
    shift, table, word,
};

/// What must catch a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Catch {
    /// The named table's polynomial constraints fail.
    Constraint(&'static str),
    /// Every constraint holds but this bus does not balance.
    Bus(u32),
    /// The verifier refuses the statement before the STARK (whatever the checkers say).
    Statement,
}

struct Fault {
    family: &'static str,
    name: &'static str,
    /// Fixture and input (a u32) the honest witness comes from.
    program: (&'static str, u32),
    catch: Catch,
    /// Recount range/byte lookups after the edit (off for faults on those tables).
    recount: bool,
    apply: fn(&mut Forgery),
}

const P: u64 = 0xffff_ffff_0000_0001;

fn f(x: u64) -> F {
    F::from_u64(x)
}

fn val(g: &Forgery, at: At, col: usize) -> u64 {
    canonical(g.get(at, col))
}

/// The first row of `table` with column `col` equal to 1 (an opcode or kind flag).
fn flagged(g: &Forgery, table: usize, col: usize) -> At {
    g.find(table, |r| r[col] == F::ONE)
        .unwrap_or_else(|| panic!("no row of table {table} with column {col} set"))
}

/// The first row of `table` with flag `col` set that `pred` accepts.
fn flagged_where(g: &Forgery, table: usize, col: usize, pred: impl Fn(&[F]) -> bool) -> At {
    g.find(table, |r| r[col] == F::ONE && pred(r))
        .unwrap_or_else(|| panic!("no matching row of table {table}"))
}

fn bump(g: &mut Forgery, at: At, col: usize) {
    g.add(at, col, F::ONE);
}

fn flip(g: &mut Forgery, at: At, col: usize) {
    let v = g.get(at, col);
    g.set(at, col, F::ONE - v);
}

/// A real CPU row in the middle of the run.
fn cpu_mid(g: &Forgery) -> At {
    let real: Vec<At> = g
        .rows(table::CPU)
        .into_iter()
        .filter(|&at| g.get(at, cpu::IS_REAL) == F::ONE)
        .collect();
    real[real.len() / 2]
}

/// Index (in the trace list) of the `k`-th instance of `table`.
fn instance(g: &Forgery, table: usize, k: usize) -> usize {
    g.traces
        .iter()
        .enumerate()
        .filter(|(_, t)| t.table == table)
        .nth(k)
        .unwrap()
        .0
}

const SELFTEST: (&str, u32) = ("rv32i_selftest", 0);
const MTEST: (&str, u32) = ("rv32m_selftest", 0);
const FIB: (&str, u32) = ("fib_iterative", 300);
const SORT: (&str, u32) = ("sort", 40);

fn faults() -> Vec<Fault> {
    use Catch::*;
    macro_rules! fault {
        ($family:expr, $name:expr, $program:expr, $catch:expr, $apply:expr) => {
            Fault {
                family: $family,
                name: $name,
                program: $program,
                catch: $catch,
                recount: true,
                apply: $apply,
            }
        };
    }
    let mut v = vec![
        // CPU: control flow, register accesses, the program lookup.
        fault!(
            "cpu",
            "pc moved to the next word",
            SELFTEST,
            Bus(bus::PROGRAM),
            |g| {
                let at = cpu_mid(g);
                g.add(at, cpu::PC, f(4));
            }
        ),
        fault!(
            "cpu",
            "next_pc skips an instruction",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let at = cpu_mid(g);
                g.add(at, cpu::NEXT_PC, f(4));
            }
        ),
        fault!("cpu", "clk shifted", SELFTEST, Constraint("cpu"), |g| {
            let at = cpu_mid(g);
            bump(g, at, cpu::CLK);
        }),
        fault!(
            "cpu",
            "rs1 value changed",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                let at = cpu_mid(g);
                bump(g, at, cpu::RS1_VAL);
            }
        ),
        fault!(
            "cpu",
            "rd value differs from the chip's",
            SELFTEST,
            Bus(bus::ALU),
            |g| {
                let at = g
                    .find(table::CPU, |r| {
                        r[cpu::WRITES_RD] == F::ONE && r[cpu::OPCODE] == f(vm::Opcode::Addi as u64)
                    })
                    .unwrap();
                bump(g, at, cpu::RD_VAL);
            }
        ),
        fault!("cpu", "write to x0", SELFTEST, Bus(bus::PROGRAM), |g| {
            let at = g
                .find(table::CPU, |r| {
                    r[cpu::IS_REAL] == F::ONE
                        && r[cpu::WRITES_RD] == F::ZERO
                        && r[cpu::RD] == F::ZERO
                })
                .unwrap();
            // With the rd gap filled in, so that only the lookup can object.
            let clk = val(g, at, cpu::CLK);
            g.set(at, cpu::WRITES_RD, F::ONE);
            g.set(at, cpu::RD_PREV_TS, f(4 * clk + 3));
        }),
        fault!(
            "cpu",
            "writes_rd not boolean",
            SELFTEST,
            Constraint("cpu"),
            |g| {
                let at = g.find(table::CPU, |r| r[cpu::WRITES_RD] == F::ONE).unwrap();
                g.set(at, cpu::WRITES_RD, f(2));
            }
        ),
        fault!(
            "cpu",
            "rd's previous value forged",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                let at = g.find(table::CPU, |r| r[cpu::WRITES_RD] == F::ONE).unwrap();
                bump(g, at, cpu::RD_PREV_VAL);
            }
        ),
        fault!(
            "cpu",
            "rs1 gap limb off by one",
            SELFTEST,
            Constraint("cpu"),
            |g| {
                let at = cpu_mid(g);
                bump(g, at, cpu::RS1_LO);
            }
        ),
        fault!(
            "cpu",
            "rs1 read from an older timestamp",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                // prev_ts earlier by one, the gap limb one larger: the gap constraint still holds.
                let at = g
                    .find(table::CPU, |r| {
                        r[cpu::IS_REAL] == F::ONE && r[cpu::RS1_PREV_TS] != F::ZERO
                    })
                    .unwrap();
                g.add(at, cpu::RS1_PREV_TS, -F::ONE);
                bump(g, at, cpu::RS1_LO);
            }
        ),
        fault!(
            "cpu",
            "an executed row erased",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let at = cpu_mid(g);
                let w = g.row(at).len();
                (0..w).for_each(|c| g.set(at, c, F::ZERO));
            }
        ),
        fault!(
            "cpu",
            "a row executed twice",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let src = cpu_mid(g).to_owned();
                let row = g.row(src).to_vec();
                let at = g.free_row(table::CPU, |r| r[cpu::IS_REAL] == F::ZERO);
                row.iter().enumerate().for_each(|(c, &x)| g.set(at, c, x));
            }
        ),
        // Chunk boundaries: the CPU instances of consecutive chunks.
        fault!(
            "chunks",
            "a chunk dropped",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let i = instance(g, table::CPU, 1);
                g.traces.remove(i);
            }
        ),
        fault!(
            "chunks",
            "a chunk duplicated",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let i = instance(g, table::CPU, 1);
                let copy = g.traces[i].clone();
                g.traces.insert(i, copy);
            }
        ),
        fault!(
            "chunks",
            "last row of a chunk jumps elsewhere",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                let i = instance(g, table::CPU, 0);
                let rows = g.traces[i].trace.values.len() / cpu::WIDTH;
                g.add((i, rows - 1), cpu::NEXT_PC, f(8));
            }
        ),
        fault!(
            "chunks",
            "first row of a chunk starts a cycle late",
            SELFTEST,
            Constraint("cpu"),
            |g| {
                let i = instance(g, table::CPU, 1);
                bump(g, (i, 0), cpu::CLK);
            }
        ),
        // ADD
        fault!("add", "carry flipped", SELFTEST, Constraint("add"), |g| {
            let at = flagged(g, table::ADD, add::F_ADDI);
            flip(g, at, add::CARRY);
        }),
        fault!(
            "add",
            "result limb off by one",
            SELFTEST,
            Constraint("add"),
            |g| {
                let at = flagged(g, table::ADD, add::F_ADD);
                bump(g, at, add::C_LO);
            }
        ),
        fault!(
            "add",
            "ADD proven as SUB",
            SELFTEST,
            Constraint("add"),
            |g| {
                let at = flagged_where(g, table::ADD, add::F_ADD, |r| r[add::RS2_VAL] != F::ZERO);
                g.set(at, add::F_ADD, F::ZERO);
                g.set(at, add::F_SUB, F::ONE);
            }
        ),
        fault!(
            "add",
            "two opcode flags",
            SELFTEST,
            Constraint("add"),
            |g| {
                let at = flagged(g, table::ADD, add::F_ADDI);
                g.set(at, add::F_SUB, F::ONE);
            }
        ),
        // JUMP
        fault!(
            "jump",
            "JALR keeps bit 0",
            SELFTEST,
            Constraint("jump"),
            |g| {
                let at = flagged(g, table::JUMP, jump::F_JALR);
                flip(g, at, jump::LOWBIT);
            }
        ),
        fault!(
            "jump",
            "link address off by 4",
            SELFTEST,
            Constraint("jump"),
            |g| {
                let at = flagged(g, table::JUMP, jump::F_JAL);
                g.add(at, jump::RD_VAL, f(4));
            }
        ),
        fault!(
            "jump",
            "AUIPC sum limb off by one",
            SELFTEST,
            Constraint("jump"),
            |g| {
                let at = flagged(g, table::JUMP, jump::F_AUIPC);
                bump(g, at, jump::U_LO);
            }
        ),
        // BRANCH
        fault!(
            "branch",
            "eq flipped",
            SELFTEST,
            Constraint("branch"),
            |g| {
                let at = flagged(g, table::BRANCH, branch::F_BNE);
                flip(g, at, branch::EQ);
            }
        ),
        fault!(
            "branch",
            "taken flipped",
            SELFTEST,
            Constraint("branch"),
            |g| {
                let at = flagged(g, table::BRANCH, branch::F_BEQ);
                flip(g, at, branch::TAKEN);
            }
        ),
        fault!(
            "branch",
            "inverse forged",
            SELFTEST,
            Constraint("branch"),
            |g| {
                let at = flagged_where(g, table::BRANCH, branch::F_BNE, |r| {
                    r[branch::EQ] == F::ZERO
                });
                bump(g, at, branch::INV);
            }
        ),
        // LT
        fault!("lt", "less-than flipped", SELFTEST, Constraint("lt"), |g| {
            let at = flagged(g, table::LT, lt::F_SLTU);
            flip(g, at, lt::LT);
        }),
        fault!(
            "lt",
            "difference limb off by one",
            SELFTEST,
            Constraint("lt"),
            |g| {
                let at = flagged(g, table::LT, lt::F_BLT);
                bump(g, at, lt::D_LO);
            }
        ),
        fault!("lt", "sign bit flipped", SELFTEST, Constraint("lt"), |g| {
            let at = flagged(g, table::LT, lt::F_SLT);
            flip(g, at, lt::A_SIGN);
        }),
        fault!(
            "lt",
            "branch target forged",
            SELFTEST,
            Constraint("lt"),
            |g| {
                let at = flagged(g, table::LT, lt::F_BGEU);
                g.add(at, lt::NEXT_PC, f(4));
            }
        ),
        // BITWISE
        fault!(
            "bitwise",
            "result byte wrong",
            SELFTEST,
            Bus(bus::BYTE),
            |g| {
                let at = flagged(g, table::BITWISE, bitwise::F_XOR);
                let c0 = val(g, at, bitwise::C0);
                g.set(at, bitwise::C0, f(c0 ^ 1));
            }
        ),
        fault!(
            "bitwise",
            "operand byte wrong",
            SELFTEST,
            Constraint("bitwise"),
            |g| {
                let at = flagged(g, table::BITWISE, bitwise::F_ANDI);
                let b0 = val(g, at, bitwise::B0);
                g.set(at, bitwise::B0, f(b0 ^ 1));
            }
        ),
        // SHIFT
        fault!(
            "shift",
            "shift amount off by one",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged(g, table::SHIFT, shift::F_SLLI);
                bump(g, at, shift::SHAMT);
            }
        ),
        fault!(
            "shift",
            "power of two forged",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged(g, table::SHIFT, shift::F_SRL);
                g.add(at, shift::POW, F::ONE);
            }
        ),
        fault!(
            "shift",
            "powers of the next shift amount",
            SELFTEST,
            Bus(bus::BYTE),
            |g| {
                // pow q stays 2^31: only the power rows of the byte table can object.
                let at = flagged_where(g, table::SHIFT, shift::F_SLLI, |r| {
                    canonical(r[shift::Q]) > 1
                });
                let (pow, q) = (val(g, at, shift::POW), val(g, at, shift::Q));
                g.set(at, shift::POW, f(2 * pow));
                g.set(at, shift::Q, f(q / 2));
                // The result and dropped bits of the larger shift, so that the product holds.
                let a = val(g, at, shift::A_LO)
                    + (val(g, at, shift::A_MID) << 16)
                    + (val(g, at, shift::A_SIGN) << 31);
                let p = a * 2 * pow;
                let (r, o) = (p & 0xffff_ffff, p >> 32);
                for (col, v) in [
                    (shift::R_LO, r & 0xffff),
                    (shift::R_HI, r >> 16),
                    (shift::O_LO, o & 0xffff),
                    (shift::O_HI, o >> 16),
                ] {
                    g.set(at, col, f(v));
                }
            }
        ),
        fault!(
            "shift",
            "a zero row of the power table",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged(g, table::SHIFT, shift::F_SLL);
                g.set(at, shift::POW, F::ZERO);
                g.set(at, shift::Q, F::ZERO);
            }
        ),
        fault!(
            "shift",
            "left shift result off by one",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged(g, table::SHIFT, shift::F_SLL);
                bump(g, at, shift::R_LO);
            }
        ),
        fault!(
            "shift",
            "logical right shift result off by one",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged(g, table::SHIFT, shift::F_SRLI);
                bump(g, at, shift::R_LO);
            }
        ),
        fault!(
            "shift",
            "right shift with the dropped bits' odd half",
            SELFTEST,
            Bus(bus::RANGE16),
            |g| {
                // A logical right shift of a word whose dropped bits are zero (O = 0), then
                // O + 2^31 beside R - 1: the product still holds, and only the range check of
                // o_hi itself (not just of 2 o_hi) objects.
                let at = flagged_where(g, table::SHIFT, shift::F_SRLI, |r| {
                    canonical(r[shift::SHAMT]) > 0
                });
                let a = val(g, at, shift::A_LO)
                    + (val(g, at, shift::A_MID) << 16)
                    + (val(g, at, shift::A_SIGN) << 31);
                let s = val(g, at, shift::SHAMT);
                let a = (a >> s) << s;
                let r = (a >> s) - 1;
                let v = (1u64 << 16) - 1;
                for (col, x) in [
                    (shift::A_LO, a & 0xffff),
                    (shift::A_MID, (a >> 16) & 0x7fff),
                    (shift::A_SIGN, a >> 31),
                    (shift::R_LO, r & 0xffff),
                    (shift::R_HI, r >> 16),
                    (shift::O_LO, 1 << 15),
                    (shift::O_HI, (v + P) / 2),
                ] {
                    g.set(at, col, f(x));
                }
            }
        ),
        fault!(
            "shift",
            "arithmetic shift without the sign fill",
            SELFTEST,
            Constraint("shift"),
            |g| {
                let at = flagged_where(g, table::SHIFT, shift::F_SRAI, |r| {
                    r[shift::A_SIGN] == F::ONE
                });
                flip(g, at, shift::A_SIGN);
            }
        ),
        fault!(
            "shift",
            "arithmetic shift result of the logical one",
            SELFTEST,
            Constraint("shift"),
            |g| {
                // The sign fill dropped from the result alone.
                let at = flagged_where(g, table::SHIFT, shift::F_SRAI, |r| {
                    r[shift::A_SIGN] == F::ONE && canonical(r[shift::Q]) < 1 << 31
                });
                let hi = val(g, at, shift::R_HI);
                let q = val(g, at, shift::Q);
                let filled = ((1u64 << 32) - 2 * q) >> 16;
                g.set(at, shift::R_HI, f(hi - filled));
            }
        ),
        // MUL
        fault!(
            "mul",
            "product limb off by one",
            MTEST,
            Constraint("mul"),
            |g| {
                let at = flagged(g, table::MUL, mul::F_MUL);
                bump(g, at, mul::P0);
            }
        ),
        fault!("mul", "carry forged", MTEST, Constraint("mul"), |g| {
            let at = flagged(g, table::MUL, mul::F_MULHU);
            bump(g, at, mul::K0);
        }),
        fault!(
            "mul",
            "MULH without sign extension",
            MTEST,
            Constraint("mul"),
            |g| {
                let at = flagged_where(g, table::MUL, mul::F_MULH, |r| r[mul::SA] == F::ONE);
                g.set(at, mul::SA, F::ZERO);
            }
        ),
        // DIV
        fault!(
            "div",
            "quotient off by one",
            MTEST,
            Constraint("div"),
            |g| {
                let at = flagged(g, table::DIV, div::F_DIVU);
                bump(g, at, div::Q_LO);
            }
        ),
        fault!(
            "div",
            "division by zero claimed",
            MTEST,
            Constraint("div"),
            |g| {
                let at = flagged_where(g, table::DIV, div::F_DIV, |r| r[div::DIVZ] == F::ZERO);
                g.set(at, div::DIVZ, F::ONE);
            }
        ),
        fault!(
            "div",
            "remainder bound limb forged",
            MTEST,
            Constraint("div"),
            |g| {
                let at = flagged_where(g, table::DIV, div::F_REMU, |r| r[div::DIVZ] == F::ZERO);
                bump(g, at, div::D_LO);
            }
        ),
        fault!(
            "div",
            "overflow flag on an ordinary division",
            MTEST,
            Constraint("div"),
            |g| {
                let at = flagged_where(g, table::DIV, div::F_DIV, |r| r[div::OVF] == F::ZERO);
                g.set(at, div::OVF, F::ONE);
            }
        ),
        // WORD chip
        fault!(
            "word",
            "loaded word differs from memory",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_LW);
                bump(g, at, word::RD_VAL);
            }
        ),
        fault!(
            "word",
            "loaded word and its rd value both changed",
            SORT,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged(g, table::WORD, word::F_LW);
                bump(g, at, word::BEFORE);
                bump(g, at, word::AFTER);
                bump(g, at, word::RD_VAL);
            }
        ),
        fault!(
            "word",
            "address off by a word",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_SW);
                g.add(at, word::WORD_ADDR, f(4));
            }
        ),
        fault!(
            "word",
            "address and operand moved together to another word",
            SORT,
            Bus(bus::ALU),
            |g| {
                let at = flagged(g, table::WORD, word::F_SW);
                g.add(at, word::WORD_ADDR, f(4));
                g.add(at, word::A, f(4));
            }
        ),
        fault!(
            "word",
            "carry that is not a bit",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_LW);
                let carry = val(g, at, word::CARRY);
                g.set(at, word::CARRY, f(2));
                g.add(at, word::WORD_ADDR, f(carry << 32) - f(2 << 32));
            }
        ),
        fault!(
            "word",
            "store lost (memory keeps the old word)",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged_where(g, table::WORD, word::F_SW, |r| {
                    r[word::BEFORE] != r[word::AFTER]
                });
                let before = g.get(at, word::BEFORE);
                g.set(at, word::AFTER, before);
            }
        ),
        fault!(
            "word",
            "load that writes memory",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_LW);
                bump(g, at, word::AFTER);
            }
        ),
        fault!(
            "word",
            "read of a stale value (older timestamp)",
            SORT,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged_where(g, table::WORD, word::F_LW, |r| r[word::PREV_TS] != F::ZERO);
                g.add(at, word::PREV_TS, -F::ONE);
                bump(g, at, word::T_LO);
            }
        ),
        fault!(
            "word",
            "time gap that does not match the timestamps",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_SW);
                bump(g, at, word::T_HI);
            }
        ),
        fault!(
            "word",
            "misaligned word address (imm moved by one)",
            SORT,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged(g, table::WORD, word::F_LW);
                g.add(at, word::IMM, F::ONE);
                g.add(at, word::WORD_ADDR, F::ONE);
            }
        ),
        fault!(
            "word",
            "store tagged read-only",
            SORT,
            Constraint("word"),
            |g| {
                let at = flagged(g, table::WORD, word::F_SW);
                g.set(at, word::RO, F::ONE);
            }
        ),
        fault!(
            "word",
            "load flag turned into a store",
            SORT,
            Bus(bus::ALU),
            |g| {
                let at = flagged_where(g, table::WORD, word::F_LW, |r| r[word::RO] == F::ZERO);
                g.set(at, word::F_LW, F::ZERO);
                g.set(at, word::F_SW, F::ONE);
                g.set(at, word::RD_VAL, F::ZERO);
                let before = g.get(at, word::BEFORE);
                g.set(at, word::RS2_VAL, before);
            }
        ),
        // MEMORY chip
        fault!(
            "memory",
            "loaded byte differs from memory",
            SELFTEST,
            Constraint("memory"),
            |g| {
                let at = flagged(g, table::MEMORY, memory::F_LBU);
                bump(g, at, memory::RD_VAL);
            }
        ),
        fault!(
            "memory",
            "address off by a word",
            SELFTEST,
            Constraint("memory"),
            |g| {
                let at = flagged(g, table::MEMORY, memory::F_SB);
                g.add(at, memory::WORD_ADDR, f(4));
            }
        ),
        fault!(
            "memory",
            "store lost (memory keeps the old word)",
            SELFTEST,
            Constraint("memory"),
            |g| {
                let at = flagged_where(g, table::MEMORY, memory::F_SB, |r| {
                    let before: u64 = (0..4)
                        .map(|i| canonical(r[memory::M0 + i]) << (8 * i))
                        .sum();
                    f(before) != r[memory::MEM_AFTER]
                });
                let before: u64 = (0..4).map(|i| val(g, at, memory::M0 + i) << (8 * i)).sum();
                g.set(at, memory::MEM_AFTER, f(before));
            }
        ),
        fault!(
            "memory",
            "read of a stale value (older timestamp)",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged_where(g, table::MEMORY, memory::F_LBU, |r| {
                    r[memory::PREV_TS] != F::ZERO
                });
                g.add(at, memory::PREV_TS, -F::ONE);
                bump(g, at, memory::T_LO);
            }
        ),
        fault!(
            "memory",
            "misaligned halfword access",
            SELFTEST,
            Constraint("memory"),
            |g| {
                let at =
                    flagged_where(g, table::MEMORY, memory::F_LHU, |r| r[memory::E0] == F::ONE);
                g.set(at, memory::E0, F::ZERO);
                g.set(at, memory::E0 + 1, F::ONE);
                g.add(at, memory::WORD_ADDR, -F::ONE);
            }
        ),
        fault!(
            "memory",
            "store tagged read-only",
            SORT,
            Constraint("memory"),
            |g| {
                let at = flagged(g, table::MEMORY, memory::F_SB);
                g.set(at, memory::RO, F::ONE);
            }
        ),
        fault!(
            "memory",
            "loaded byte without its sign",
            SELFTEST,
            Constraint("memory"),
            |g| {
                let at = flagged_where(g, table::MEMORY, memory::F_LB, |r| {
                    r[memory::SBIT] == F::ONE
                });
                g.set(at, memory::SBIT, F::ZERO);
            }
        ),
        // ECALL
        fault!(
            "ecall",
            "exit does not halt",
            FIB,
            Constraint("ecall"),
            |g| {
                let at = flagged(g, table::ECALL, ecall::F_EXIT);
                g.set(at, ecall::NEXT_PC, f(0x10000));
            }
        ),
        fault!(
            "ecall",
            "write returns another count",
            FIB,
            Constraint("ecall"),
            |g| {
                let at = flagged(g, table::ECALL, ecall::F_WRITE);
                bump(g, at, ecall::RD_VAL);
            }
        ),
        fault!(
            "ecall",
            "stdout write passed off as stderr",
            FIB,
            Constraint("ecall"),
            |g| {
                let at = flagged(g, table::ECALL, ecall::W_OUT);
                g.set(at, ecall::W_OUT, F::ZERO);
                g.set(at, ecall::W_ERR, F::ONE);
            }
        ),
        fault!(
            "ecall",
            "read claims more than the buffer",
            FIB,
            Constraint("ecall"),
            |g| {
                let at = flagged(g, table::ECALL, ecall::F_READ);
                g.add(at, ecall::R_LO, F::ONE);
            }
        ),
        fault!(
            "ecall",
            "output cursor rewound",
            FIB,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged(g, table::ECALL, ecall::W_OUT);
                let d = g.get(at, ecall::POS0);
                g.set(at, ecall::POS0, d + F::ONE);
                g.add(at, ecall::POS_END, F::ONE);
            }
        ),
        // IO
        fault!("io", "output byte changed", FIB, Bus(bus::MEMORY), |g| {
            let at = flagged(g, table::IO, io::IS_OUT);
            let first = (0..4).find(|&i| g.get(at, io::E0 + i) == F::ONE).unwrap();
            let b = val(g, at, io::M0 + first);
            g.set(at, io::M0 + first, f(b ^ 1));
            g.set(at, io::N0 + first, f(b ^ 1));
        }),
        fault!(
            "io",
            "input byte written to memory differs",
            FIB,
            Bus(bus::MEMORY),
            |g| {
                let at = flagged(g, table::IO, io::IS_READ);
                let b = val(g, at, io::N0);
                g.set(at, io::N0, f(b ^ 0x80));
            }
        ),
        fault!(
            "io",
            "a row moving no bytes (a free memory access)",
            FIB,
            Constraint("io"),
            |g| {
                g.splice_free_io_row();
            }
        ),
        fault!(
            "io",
            "read into a read-only word",
            FIB,
            Constraint("io"),
            |g| {
                let at = flagged(g, table::IO, io::IS_READ);
                g.set(at, io::RO, F::ONE);
            }
        ),
        fault!("io", "byte count forged", FIB, Constraint("io"), |g| {
            let at = flagged(g, table::IO, io::IS_OUT);
            bump(g, at, io::COUNT);
        }),
        fault!("io", "output position shifted", FIB, Bus(bus::IO), |g| {
            let at = flagged(g, table::IO, io::IS_OUT);
            bump(g, at, io::POS);
        }),
        // IMAGE
        fault!(
            "image",
            "an address opened twice",
            SELFTEST,
            Constraint("image"),
            |g| {
                let at = g.find(table::IMAGE, |r| r[image::USED] == F::ONE).unwrap();
                g.set(at, image::USED, f(2));
            }
        ),
        fault!(
            "image",
            "final value forged",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                let at = g.find(table::IMAGE, |r| r[image::USED] == F::ONE).unwrap();
                bump(g, at, image::FINAL_VAL);
            }
        ),
        fault!(
            "image",
            "an untouched word closed with another value",
            SELFTEST,
            Bus(bus::MEMORY),
            |g| {
                // (Opening an untouched word and closing it with its initial value at time 0
                // changes nothing, so the fault closes it with 0: the program's text is nonzero.)
                let layout = vm::air::image::ImageLayout::new(&g.program);
                let row = (32..layout.len()).find(|&r| layout.init[r] != 0).unwrap();
                let at = (g.find(table::IMAGE, |_| true).unwrap().0, row);
                assert_eq!(
                    g.get(at, image::USED),
                    F::ZERO,
                    "the text is never touched as data"
                );
                g.set(at, image::USED, F::ONE);
            }
        ),
    ];
    // Multiplicities of the fixed tables: these faults are about the counts themselves, so the
    // lookups are not recounted after them.
    v.extend([
        Fault {
            recount: false,
            ..fault!(
                "multiplicities",
                "an instruction counted once more",
                SELFTEST,
                Bus(bus::PROGRAM),
                |g| {
                    let at = g.find(table::PROGRAM, |r| r[0] != F::ZERO).unwrap();
                    bump(g, at, 0);
                }
            )
        },
        Fault {
            recount: false,
            ..fault!(
                "multiplicities",
                "a range lookup moved to another value",
                SELFTEST,
                Bus(bus::RANGE16),
                |g| {
                    let at = g.find(table::RANGE16, |r| r[0] != F::ZERO).unwrap();
                    g.add(at, 0, -F::ONE);
                    g.add((at.0, at.1 + 1), 0, F::ONE);
                }
            )
        },
        Fault {
            recount: false,
            ..fault!(
                "multiplicities",
                "a byte-pair lookup dropped",
                SELFTEST,
                Bus(bus::BYTE),
                |g| {
                    let at = g.find(table::BYTES, |r| r[0] != F::ZERO).unwrap();
                    g.add(at, 0, -F::ONE);
                }
            )
        },
        Fault {
            recount: false,
            ..fault!(
                "multiplicities",
                "a limb of 2^16 looked up",
                SELFTEST,
                Bus(bus::RANGE16),
                |g| {
                    // An ADD result limb pushed past 16 bits, the carry moved into it: the chip's
                    // equation holds, the range table cannot answer 2^16.
                    let at = flagged_where(g, table::ADD, add::F_ADDI, |r| r[add::C_HI] != F::ZERO);
                    g.add(at, add::C_HI, -F::ONE);
                    g.add(at, add::C_LO, f(1 << 16));
                }
            )
        },
    ]);
    // The statement.
    v.extend([
        fault!(
            "statement",
            "output byte changed",
            FIB,
            Bus(bus::OUTPUT),
            |g| {
                g.statement.output[0] ^= 1;
            }
        ),
        fault!(
            "statement",
            "output truncated",
            FIB,
            Bus(bus::MEMORY),
            |g| {
                g.statement.output.pop();
            }
        ),
        fault!(
            "statement",
            "exit code changed",
            SELFTEST,
            Bus(bus::EXIT),
            |g| {
                g.statement.exit_code ^= 1;
            }
        ),
        fault!(
            "statement",
            "one cycle more",
            SELFTEST,
            Bus(bus::CHAIN),
            |g| {
                g.statement.cycles += 1;
            }
        ),
        fault!(
            "statement",
            "cycles aliased by p",
            SELFTEST,
            Statement,
            |g| {
                g.statement.cycles += P;
            }
        ),
        fault!(
            "statement",
            "another entry point",
            SELFTEST,
            Statement,
            |g| {
                g.statement.entry += 4;
            }
        ),
        fault!(
            "statement",
            "another program's digest",
            SELFTEST,
            Statement,
            |g| {
                g.statement.program_digest[0] ^= 1;
            }
        ),
    ]);
    v
}

/// What the debug checkers say of a forged witness: the first table whose constraints fail,
/// else every bus that does not balance (empty when all hold).
fn checkers(g: &Forgery) -> Result<Vec<u32>, &'static str> {
    let air = vm::air::Rv32Air::new(Arc::clone(&g.program));
    let tables = air.tables();
    for it in &g.traces {
        if stark::debug::check_constraints(tables[it.table], &it.trace).is_err() {
            return Err(tables[it.table].name().to_string().leak());
        }
    }
    let imbalance =
        stark::debug::bus_imbalance(&tables, &g.traces, &g.statement.public_inputs()).unwrap();
    let mut buses: Vec<u32> = imbalance.keys().map(|(bus, _)| *bus).collect();
    buses.sort_unstable();
    buses.dedup();
    Ok(buses)
}

/// Applies, checks and verifies every fault on `program`'s witness; returns one report line
/// per fault.
fn run_faults(program: (&'static str, u32)) {
    let start = Instant::now();
    let faults: Vec<Fault> = faults()
        .into_iter()
        .filter(|f| f.program == program)
        .collect();
    let (name, input) = program;
    let base = Forgery::honest(&fixture(name), &input.to_le_bytes(), 1 << 7);
    base.verify().expect("the honest witness verifies");
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for fault in &faults {
        let mut g = base.clone();
        (fault.apply)(&mut g);
        if fault.recount {
            g.recount_lookups();
        }
        let label = format!("{}: {}", fault.family, fault.name);
        if g.traces.len() == base.traces.len()
            && g.statement == base.statement
            && g.traces
                .iter()
                .zip(&base.traces)
                .all(|(a, b)| a.trace.values == b.trace.values)
        {
            failures.push(format!("{label}: the fault changed nothing"));
            continue;
        }
        // A bus imbalance shows up on every bus the edit touched; the one named must be among
        // them.
        let caught = checkers(&g);
        let matches = match (fault.catch, &caught) {
            (Catch::Constraint(want), Err(got)) => want == *got,
            (Catch::Bus(want), Ok(buses)) => buses.contains(&want),
            (Catch::Statement, _) => true,
            _ => false,
        };
        if !matches {
            failures.push(format!(
                "{label}: expected to be caught by {:?}, the checkers say {caught:?}",
                fault.catch
            ));
            continue;
        }
        match g.verify() {
            Ok(_) => failures.push(format!("{label}: ACCEPTED by the verifier")),
            Err(ExecutionError::Invalid(e)) if fault.catch == Catch::Statement => {
                failures.push(format!("{label}: refused only by the STARK ({e})"))
            }
            Err(err) => report.push(format!("  {label:<58} {:?}: {err}", fault.catch)),
        }
    }
    eprintln!(
        "{name}: {} faults refused in {:.1} s\n{}",
        report.len(),
        start.elapsed().as_secs_f64(),
        report.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn faults_in_rv32i_selftest_are_refused() {
    run_faults(SELFTEST);
}

#[test]
fn faults_in_rv32m_selftest_are_refused() {
    run_faults(MTEST);
}

#[test]
fn faults_in_fib_are_refused() {
    run_faults(FIB);
}

#[test]
fn faults_in_sort_are_refused() {
    run_faults(SORT);
}

/// The suite covers every table and at least 40 faults (each run by one test above).
#[test]
fn the_suite_covers_every_table() {
    let faults = faults();
    let families: BTreeSet<&str> = faults.iter().map(|f| f.family).collect();
    eprintln!(
        "{} faults in {} families: {}",
        faults.len(),
        families.len(),
        families.iter().copied().collect::<Vec<_>>().join(", ")
    );
    assert!(faults.len() >= 40);
    for t in vm::air::Rv32Air::new(fixture("sub")).tables() {
        let covered = match t.name() {
            "program" | "range16" | "bytes" => "multiplicities",
            name => name,
        };
        assert!(
            families.contains(covered),
            "no fault for table {}",
            t.name()
        );
    }
    for program in faults.iter().map(|f| f.program) {
        assert!([SELFTEST, MTEST, FIB, SORT].contains(&program));
    }
}
