//! Per-instruction tests: decoding of hand-encoded words and their semantics on the executor,
//! edge cases included. Programs are built in memory from encoded words, so these tests do not
//! depend on the fixtures or an assembler.

use std::sync::Arc;

use vm::machine::{AccessKind, syscall};
use vm::{DecodeError, Instruction, Machine, Opcode, Program, Segment, VmError};

// --- encoders (RISC-V unprivileged spec, chapter 2 formats) ---
fn r(funct7: u32, rs2: u32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    funct7 << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}
fn i(imm: i32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}
fn s(imm: i32, rs2: u32, rs1: u32, funct3: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | (imm & 31) << 7 | 0x23
}
fn b(imm: i32, rs2: u32, rs1: u32, funct3: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3f) << 25
        | rs2 << 20
        | rs1 << 15
        | funct3 << 12
        | ((imm >> 1) & 0xf) << 8
        | ((imm >> 11) & 1) << 7
        | 0x63
}
fn u(imm: u32, rd: u32, opcode: u32) -> u32 {
    (imm & 0xfffff000) | rd << 7 | opcode
}
fn j(imm: i32, rd: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3ff) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xff) << 12
        | rd << 7
        | 0x6f
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x13)
}
fn lui(rd: u32, imm: u32) -> u32 {
    u(imm, rd, 0x37)
}
const ECALL: u32 = 0x73;
const BASE: u32 = 0x1000;
const DATA: u32 = 0x8000;

/// Words that load a 32-bit constant into `rd` (lui + addi).
fn li(rd: u32, value: u32) -> [u32; 2] {
    let lo = ((value & 0xfff) as i32) << 20 >> 20;
    let hi = value.wrapping_sub(lo as u32);
    [lui(rd, hi), addi(rd, rd, lo)]
}

/// Runs `body` followed by exit(0) and returns the machine, with x1 = a and x2 = b preloaded.
fn run(body: &[u32], a: u32, b_val: u32) -> Result<Machine, VmError> {
    let mut words: Vec<u32> = Vec::new();
    words.extend(li(1, a));
    words.extend(li(2, b_val));
    words.extend(li(10, DATA));
    words.extend_from_slice(body);
    words.extend([addi(17, 0, syscall::EXIT as i32), addi(10, 0, 0), ECALL]);
    let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let program = Program::from_segments(
        BASE,
        vec![
            Segment {
                vaddr: BASE,
                mem_size: data.len() as u32,
                data,
                executable: true,
                writable: false,
            },
            Segment {
                vaddr: DATA,
                mem_size: 64,
                data: (0..64u8)
                    .map(|k| k.wrapping_mul(37).wrapping_add(0x80))
                    .collect(),
                executable: false,
                writable: true,
            },
        ],
    );
    let mut m = Machine::new(Arc::new(program), Arc::from(&b""[..]));
    m.set_max_cycles(10_000);
    // Stop right before the final exit so that a0 is still what the body left.
    m.run()?;
    Ok(m)
}

/// Result register x3 after `word` with x1 = a, x2 = b.
fn alu(word: u32, a: u32, b_val: u32) -> u32 {
    run(&[word], a, b_val).expect("runs").regs[3]
}

#[test]
fn decode_covers_every_opcode() {
    use Opcode::*;
    let cases: &[(u32, Opcode)] = &[
        (lui(3, 0x12345000), Lui),
        (u(0x1000, 3, 0x17), Auipc),
        (j(8, 1), Jal),
        (i(4, 1, 0, 3, 0x67), Jalr),
        (b(8, 2, 1, 0), Beq),
        (b(8, 2, 1, 1), Bne),
        (b(8, 2, 1, 4), Blt),
        (b(8, 2, 1, 5), Bge),
        (b(8, 2, 1, 6), Bltu),
        (b(8, 2, 1, 7), Bgeu),
        (i(0, 10, 0, 3, 0x03), Lb),
        (i(0, 10, 1, 3, 0x03), Lh),
        (i(0, 10, 2, 3, 0x03), Lw),
        (i(0, 10, 4, 3, 0x03), Lbu),
        (i(0, 10, 5, 3, 0x03), Lhu),
        (s(0, 1, 10, 0), Sb),
        (s(0, 1, 10, 1), Sh),
        (s(0, 1, 10, 2), Sw),
        (addi(3, 1, -1), Addi),
        (i(-1, 1, 2, 3, 0x13), Slti),
        (i(-1, 1, 3, 3, 0x13), Sltiu),
        (i(-1, 1, 4, 3, 0x13), Xori),
        (i(-1, 1, 6, 3, 0x13), Ori),
        (i(-1, 1, 7, 3, 0x13), Andi),
        (r(0, 31, 1, 1, 3, 0x13), Slli),
        (r(0, 31, 1, 5, 3, 0x13), Srli),
        (r(0x20, 31, 1, 5, 3, 0x13), Srai),
        (r(0, 2, 1, 0, 3, 0x33), Add),
        (r(0x20, 2, 1, 0, 3, 0x33), Sub),
        (r(0, 2, 1, 1, 3, 0x33), Sll),
        (r(0, 2, 1, 2, 3, 0x33), Slt),
        (r(0, 2, 1, 3, 3, 0x33), Sltu),
        (r(0, 2, 1, 4, 3, 0x33), Xor),
        (r(0, 2, 1, 5, 3, 0x33), Srl),
        (r(0x20, 2, 1, 5, 3, 0x33), Sra),
        (r(0, 2, 1, 6, 3, 0x33), Or),
        (r(0, 2, 1, 7, 3, 0x33), And),
        (0x0ff0000f, Fence),
        (ECALL, Ecall),
        (r(1, 2, 1, 0, 3, 0x33), Mul),
        (r(1, 2, 1, 1, 3, 0x33), Mulh),
        (r(1, 2, 1, 2, 3, 0x33), Mulhsu),
        (r(1, 2, 1, 3, 3, 0x33), Mulhu),
        (r(1, 2, 1, 4, 3, 0x33), Div),
        (r(1, 2, 1, 5, 3, 0x33), Divu),
        (r(1, 2, 1, 6, 3, 0x33), Rem),
        (r(1, 2, 1, 7, 3, 0x33), Remu),
    ];
    let mut seen = std::collections::HashSet::new();
    for &(word, op) in cases {
        let insn = Instruction::decode(word).unwrap_or_else(|e| panic!("{word:#x}: {e}"));
        assert_eq!(insn.opcode, op, "word {word:#010x}");
        seen.insert(op);
    }
    assert_eq!(
        seen.len(),
        Opcode::COUNT - 1,
        "every opcode but Invalid is decoded"
    );
}

#[test]
fn decode_immediates_and_fields() {
    let insn = Instruction::decode(i(-2048, 5, 0, 7, 0x13)).unwrap();
    assert_eq!((insn.rd, insn.rs1, insn.imm), (7, 5, (-2048i32) as u32));
    let insn = Instruction::decode(s(-4, 9, 8, 2)).unwrap();
    assert_eq!((insn.rs1, insn.rs2, insn.imm as i32), (8, 9, -4));
    let insn = Instruction::decode(b(-4096, 2, 1, 0)).unwrap();
    assert_eq!(insn.imm as i32, -4096);
    let insn = Instruction::decode(b(4094, 2, 1, 0)).unwrap();
    assert_eq!(insn.imm as i32, 4094);
    let insn = Instruction::decode(j(-1048576, 1)).unwrap();
    assert_eq!(insn.imm as i32, -1048576);
    let insn = Instruction::decode(j(1048574, 1)).unwrap();
    assert_eq!(insn.imm as i32, 1048574);
    let insn = Instruction::decode(r(0x20, 31, 1, 5, 3, 0x13)).unwrap();
    assert_eq!((insn.opcode, insn.imm), (Opcode::Srai, 31));
}

#[test]
fn decode_rejects_unsupported_words() {
    assert_eq!(
        Instruction::decode(0x0000_4501),
        Err(DecodeError::Compressed)
    ); // c.li a0, 0
    assert_eq!(Instruction::decode(0xc000_2573), Err(DecodeError::Csr)); // csrr a0, cycle
    assert_eq!(Instruction::decode(0x0010_0073), Err(DecodeError::Ebreak));
    assert_eq!(Instruction::decode(0x0000_100f), Err(DecodeError::Unknown)); // fence.i
    assert_eq!(Instruction::decode(0xffff_ffff), Err(DecodeError::Unknown));
    assert_eq!(
        Instruction::decode(r(0x40, 2, 1, 0, 3, 0x33)),
        Err(DecodeError::Unknown)
    );
    assert_eq!(
        Instruction::decode(r(0x20, 2, 1, 1, 3, 0x13)),
        Err(DecodeError::Unknown)
    ); // slli, bad funct7
    assert_eq!(
        Instruction::decode(b(8, 2, 1, 2)),
        Err(DecodeError::Unknown)
    );
    assert_eq!(
        Instruction::decode(i(0, 10, 3, 3, 0x03)),
        Err(DecodeError::Unknown)
    ); // ld
    assert_eq!(
        Instruction::decode(s(0, 1, 10, 3)),
        Err(DecodeError::Unknown)
    ); // sd
}

#[test]
fn alu_register_register() {
    let add = |f7, f3| r(f7, 2, 1, f3, 3, 0x33);
    assert_eq!(alu(add(0, 0), 0x7fff_ffff, 1), 0x8000_0000);
    assert_eq!(alu(add(0, 0), u32::MAX, 2), 1);
    assert_eq!(alu(add(0x20, 0), 0, 1), u32::MAX);
    assert_eq!(alu(add(0, 1), 0x8000_0001, 33), 2); // sll uses rs2 & 31
    assert_eq!(alu(add(0, 5), 0x8000_0000, 63), 1); // srl
    assert_eq!(alu(add(0x20, 5), 0x8000_0000, 63), u32::MAX); // sra
    assert_eq!(alu(add(0x20, 5), 0x4000_0000, 30), 1);
    assert_eq!(alu(add(0, 2), u32::MAX, 1), 1); // slt: -1 < 1
    assert_eq!(alu(add(0, 3), u32::MAX, 1), 0); // sltu
    assert_eq!(alu(add(0, 2), 5, 5), 0);
    assert_eq!(alu(add(0, 4), 0xf0f0, 0xff00), 0x0ff0);
    assert_eq!(alu(add(0, 6), 0xf0f0, 0xff00), 0xfff0);
    assert_eq!(alu(add(0, 7), 0xf0f0, 0xff00), 0xf000);
}

#[test]
fn alu_immediates() {
    assert_eq!(alu(addi(3, 1, -1), 0, 0), u32::MAX);
    assert_eq!(alu(addi(3, 1, 2047), 1, 0), 2048);
    assert_eq!(alu(i(-1, 1, 2, 3, 0x13), 0xffff_fffe, 0), 1); // slti -2 < -1
    assert_eq!(alu(i(-1, 1, 3, 3, 0x13), 5, 0), 1); // sltiu 5 < 0xffffffff
    assert_eq!(alu(i(-1, 1, 4, 3, 0x13), 0x1234, 0), !0x1234); // xori -1
    assert_eq!(alu(i(-2048, 1, 6, 3, 0x13), 0x12, 0), 0xffff_f812); // ori
    assert_eq!(alu(i(-16, 1, 7, 3, 0x13), 0x1234_5678, 0), 0x1234_5670); // andi
    assert_eq!(alu(r(0, 31, 1, 1, 3, 0x13), 3, 0), 0x8000_0000); // slli 31
    assert_eq!(alu(r(0, 0, 1, 5, 3, 0x13), 3, 0), 3); // srli 0
    assert_eq!(alu(r(0x20, 4, 1, 5, 3, 0x13), 0x8000_0000, 0), 0xf800_0000); // srai 4
    assert_eq!(alu(lui(3, 0xfffff000), 0, 0), 0xfffff000);
    // auipc: pc of the body's first word is BASE + 24 (after three li pairs).
    assert_eq!(alu(u(0x1000, 3, 0x17), 0, 0), BASE + 24 + 0x1000);
}

#[test]
fn writes_to_x0_are_ignored() {
    let m = run(
        &[
            addi(0, 0, 5),
            r(0, 1, 1, 0, 0, 0x33),
            i(0, 10, 2, 0, 0x03),
            lui(0, 0x1000),
        ],
        7,
        0,
    )
    .unwrap();
    assert_eq!(m.regs[0], 0);
}

#[test]
fn m_extension_edges() {
    let m_op = |f3| r(1, 2, 1, f3, 3, 0x33);
    let int_min = 0x8000_0000u32;
    assert_eq!(alu(m_op(0), 3, (-7i32) as u32), (-21i32) as u32);
    assert_eq!(alu(m_op(1), u32::MAX, u32::MAX), 0); // mulh -1*-1
    assert_eq!(alu(m_op(1), int_min, int_min), 0x4000_0000);
    assert_eq!(alu(m_op(1), (-2i32) as u32, 3), u32::MAX);
    assert_eq!(alu(m_op(2), u32::MAX, u32::MAX), u32::MAX); // mulhsu -1 * (2^32-1)
    assert_eq!(alu(m_op(2), 2, u32::MAX), 1);
    assert_eq!(alu(m_op(2), int_min, u32::MAX), int_min);
    assert_eq!(alu(m_op(3), u32::MAX, u32::MAX), 0xffff_fffe); // mulhu
    assert_eq!(alu(m_op(4), 7, 0), u32::MAX); // div by zero
    assert_eq!(alu(m_op(4), int_min, u32::MAX), int_min); // INT_MIN / -1
    assert_eq!(alu(m_op(4), (-7i32) as u32, 2), (-3i32) as u32);
    assert_eq!(alu(m_op(5), 7, 0), u32::MAX); // divu by zero
    assert_eq!(alu(m_op(5), u32::MAX, 2), 0x7fff_ffff);
    assert_eq!(alu(m_op(6), 7, 0), 7); // rem by zero
    assert_eq!(alu(m_op(6), int_min, u32::MAX), 0); // INT_MIN % -1
    assert_eq!(alu(m_op(6), (-7i32) as u32, 2), u32::MAX);
    assert_eq!(alu(m_op(7), 7, 0), 7); // remu by zero
    assert_eq!(alu(m_op(7), u32::MAX, 10), 5);
}

#[test]
fn loads_extend_and_stores_merge() {
    // The data segment holds byte k = k*37 + 0x80 (mod 256): byte 0 = 0x80, 1 = 0xa5, 2 = 0xca,
    // 3 = 0xef, 4 = 0x14.
    let ld = |f3, off| alu(i(off, 10, f3, 3, 0x03), 0, 0);
    assert_eq!(ld(0, 0), 0xffff_ff80); // lb
    assert_eq!(ld(4, 0), 0x80); // lbu
    assert_eq!(ld(0, 4), 0x14); // lb positive
    assert_eq!(ld(1, 0), 0xffff_a580); // lh
    assert_eq!(ld(5, 2), 0xefca); // lhu
    assert_eq!(ld(2, 0), 0xefca_a580); // lw
    let m = run(
        &[s(1, 1, 10, 0), s(2, 1, 10, 1), i(0, 10, 2, 3, 0x03)],
        0x1122_3344,
        0,
    )
    .unwrap();
    assert_eq!(m.regs[3], 0x3344_4480); // sb at 1, sh at 2
    // Negative offsets: x11 = DATA + 64.
    let m = run(&[addi(11, 10, 64), s(-4, 1, 11, 2)], 0xdead_beef, 0).unwrap();
    assert_eq!(
        m.memory.read_bytes(DATA + 60, 4),
        0xdead_beefu32.to_le_bytes()
    );
}

#[test]
fn branches_both_ways() {
    // Each branch skips one `addi x3, x3, 1` when taken.
    let cases: &[(u32, u32, u32, bool)] = &[
        (0, 5, 5, true),
        (0, 5, 6, false),
        (1, 5, 6, true),
        (1, 5, 5, false),
        (4, u32::MAX, 1, true), // blt signed
        (4, 1, u32::MAX, false),
        (5, 1, u32::MAX, true), // bge
        (5, 3, 3, true),
        (5, u32::MAX, 1, false),
        (6, 1, u32::MAX, true), // bltu
        (6, u32::MAX, 1, false),
        (7, u32::MAX, 1, true), // bgeu
        (7, 1, u32::MAX, false),
    ];
    for &(f3, a, bv, taken) in cases {
        let m = run(&[b(8, 2, 1, f3), addi(3, 3, 1)], a, bv).unwrap();
        assert_eq!(
            m.regs[3],
            if taken { 0 } else { 1 },
            "funct3 {f3} a {a:#x} b {bv:#x}"
        );
    }
    // A backward branch: x3 counts 3 iterations.
    let m = run(
        &[addi(4, 0, 3), addi(3, 3, 1), addi(4, 4, -1), b(-8, 0, 4, 1)],
        0,
        0,
    )
    .unwrap();
    assert_eq!(m.regs[3], 3);
}

#[test]
fn jumps_link_and_alignment() {
    // jal x1, +8 skips one instruction; x1 = pc + 4.
    let m = run(&[j(8, 5), addi(3, 3, 1)], 0, 0).unwrap();
    assert_eq!((m.regs[3], m.regs[5]), (0, BASE + 24 + 4));
    // jalr clears bit 0: target = x1 + 1 with x1 = address of the word after the skipped one.
    let target = BASE + 24 + 8;
    let m = run(
        &[i(1, 1, 0, 5, 0x67), addi(3, 3, 1), addi(3, 3, 1)],
        target,
        0,
    )
    .unwrap();
    assert_eq!((m.regs[3], m.regs[5]), (1, BASE + 24 + 4));
    // rd == rs1: the target comes from the old value.
    let m = run(
        &[i(0, 1, 0, 1, 0x67), addi(3, 3, 1), addi(3, 3, 1)],
        target,
        0,
    )
    .unwrap();
    assert_eq!((m.regs[3], m.regs[1]), (1, BASE + 24 + 4));
    // A target that is 2 mod 4 is a misaligned jump (no compressed instructions).
    let err = run(&[i(2, 1, 0, 5, 0x67)], BASE, 0).unwrap_err();
    assert!(
        matches!(err, VmError::MisalignedJump { target, .. } if target == BASE + 2),
        "{err}"
    );
    let err = run(&[b(6, 0, 0, 0)], 0, 0).unwrap_err();
    assert!(matches!(err, VmError::MisalignedJump { .. }), "{err}");
}

#[test]
fn execution_errors_name_pc_and_address() {
    let pc = BASE + 24;
    let err = run(&[i(2, 10, 2, 3, 0x03)], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::Misaligned {
            pc,
            addr: DATA + 2,
            width: 4,
            kind: AccessKind::Load
        }
    );
    let err = run(&[s(1, 1, 10, 1)], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::Misaligned {
            pc,
            addr: DATA + 1,
            width: 2,
            kind: AccessKind::Store
        }
    );
    let err = run(&[0xc000_2573], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::IllegalInstruction {
            pc,
            word: 0xc000_2573,
            reason: DecodeError::Csr
        }
    );
    assert!(err.to_string().contains("0x00001018"), "{err}");
    let err = run(&[addi(17, 0, 222), ECALL], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::UnknownSyscall {
            pc: pc + 4,
            number: 222
        }
    );
    let err = run(&[addi(17, 0, 64), addi(10, 0, 3), ECALL], 0, 0).unwrap_err();
    assert!(
        matches!(err, VmError::BadFileDescriptor { fd: 3, .. }),
        "{err}"
    );
    // Only the pages the segments overlap exist: the rest of the data page is fine, the next is not.
    run(&[i(0x7fc, 10, 2, 3, 0x03)], 0, 0).unwrap();
    let err = run(&[lui(11, DATA + 0x1000), i(0, 11, 2, 3, 0x03)], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::Unmapped {
            pc: pc + 4,
            addr: DATA + 0x1000
        }
    );
    let err = run(&[lui(11, 0x4000_0000), s(0, 1, 11, 0)], 0, 0).unwrap_err();
    assert_eq!(
        err,
        VmError::Unmapped {
            pc: pc + 4,
            addr: 0x4000_0000
        }
    );
    // sp (x2) left the writable segment downwards: a stack overflow, named as one.
    let err = run(&[s(-4, 1, 2, 2)], 0, DATA - 16).unwrap_err();
    assert_eq!(
        err,
        VmError::StackOverflow {
            pc,
            addr: DATA - 20,
            sp: DATA - 16,
            stack: DATA
        }
    );
    assert!(err.to_string().starts_with("stack overflow at pc"), "{err}");
    // A wild pointer, whether sp is fine or not: an unmapped access.
    for sp in [DATA + 32, DATA - 16] {
        let err = run(&[lui(11, 0x4000_0000), s(0, 1, 11, 0)], 0, sp).unwrap_err();
        assert!(matches!(err, VmError::Unmapped { .. }), "{err}");
    }
    let err = run(&[j(0x1000, 0)], 0, 0).unwrap_err();
    assert!(matches!(err, VmError::FetchOutOfProgram { .. }), "{err}");
    let err = run(&[j(0, 0)], 0, 0).unwrap_err();
    assert_eq!(err, VmError::CycleLimit { limit: 10_000, pc });
}

#[test]
fn fence_is_a_no_op() {
    let m = run(&[0x0ff0000f, addi(3, 0, 9)], 0, 0).unwrap();
    assert_eq!(m.regs[3], 9);
}

#[test]
fn syscalls_read_and_write() {
    let words: Vec<u32> = [
        &li(11, DATA)[..],
        &[
            addi(10, 0, 0),
            addi(12, 0, 8),
            addi(17, 0, 63),
            ECALL,
            addi(5, 10, 0),
        ], // read 8
        &[addi(10, 0, 0), addi(12, 0, 8), ECALL, addi(6, 10, 0)], // read at EOF
        &[addi(10, 0, 1), addi(12, 0, 3), addi(17, 0, 64), ECALL], // write 3 to fd 1
        &[addi(10, 0, 2), addi(12, 0, 2), ECALL],                 // write 2 to fd 2
        &[addi(10, 0, 42), addi(17, 0, 94), ECALL],               // exit_group(42)
    ]
    .concat();
    let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let seg = Segment {
        vaddr: BASE,
        mem_size: data.len() as u32,
        data,
        executable: true,
        writable: false,
    };
    let buffer = Segment {
        vaddr: DATA,
        mem_size: 16,
        data: vec![],
        executable: false,
        writable: true,
    };
    let program = Arc::new(Program::from_segments(BASE, vec![seg, buffer]));
    let mut m = Machine::new(program, Arc::from(&b"hello"[..]));
    let exit = m.run().unwrap();
    assert_eq!(exit.code, 42);
    assert_eq!(exit.cycles, words.len() as u64);
    assert_eq!((m.regs[5], m.regs[6]), (5, 0));
    assert_eq!(m.stdout, b"hel");
    assert_eq!(m.stderr, b"he");
    assert!(matches!(m.run(), Err(VmError::Halted)));
}
