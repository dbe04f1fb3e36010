//! RV32IM instruction decoding.
//!
//! Every 32-bit word of the program's executable segments is decoded once, at load time, into an
//! [`Instruction`]; the executor and the program table both work from that form. Words that do not
//! decode are kept as [`Opcode::Invalid`] so that an error is raised only if one is executed (data
//! embedded in a text segment is legal as long as nobody jumps into it).

use std::fmt;

/// Every operation of RV32I and RV32M that the machine executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Opcode {
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Lbu,
    Lhu,
    Sb,
    Sh,
    Sw,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    /// FENCE orders memory for other harts and devices; a single hart makes it a no-op.
    Fence,
    Ecall,
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    /// A word that is not a supported instruction; executing it is an error.
    Invalid,
}

impl Opcode {
    /// Number of opcodes, `Invalid` included (they are numbered densely from 0).
    pub const COUNT: usize = Opcode::Invalid as usize + 1;

    /// All opcodes in numbering order.
    pub const ALL: [Opcode; Opcode::COUNT] = {
        use Opcode::*;
        [
            Lui, Auipc, Jal, Jalr, Beq, Bne, Blt, Bge, Bltu, Bgeu, Lb, Lh, Lw, Lbu, Lhu, Sb, Sh,
            Sw, Addi, Slti, Sltiu, Xori, Ori, Andi, Slli, Srli, Srai, Add, Sub, Sll, Slt, Sltu,
            Xor, Srl, Sra, Or, And, Fence, Ecall, Mul, Mulh, Mulhsu, Mulhu, Div, Divu, Rem, Remu,
            Invalid,
        ]
    };

    /// The assembler mnemonic.
    pub fn mnemonic(self) -> &'static str {
        use Opcode::*;
        match self {
            Lui => "lui",
            Auipc => "auipc",
            Jal => "jal",
            Jalr => "jalr",
            Beq => "beq",
            Bne => "bne",
            Blt => "blt",
            Bge => "bge",
            Bltu => "bltu",
            Bgeu => "bgeu",
            Lb => "lb",
            Lh => "lh",
            Lw => "lw",
            Lbu => "lbu",
            Lhu => "lhu",
            Sb => "sb",
            Sh => "sh",
            Sw => "sw",
            Addi => "addi",
            Slti => "slti",
            Sltiu => "sltiu",
            Xori => "xori",
            Ori => "ori",
            Andi => "andi",
            Slli => "slli",
            Srli => "srli",
            Srai => "srai",
            Add => "add",
            Sub => "sub",
            Sll => "sll",
            Slt => "slt",
            Sltu => "sltu",
            Xor => "xor",
            Srl => "srl",
            Sra => "sra",
            Or => "or",
            And => "and",
            Fence => "fence",
            Ecall => "ecall",
            Mul => "mul",
            Mulh => "mulh",
            Mulhsu => "mulhsu",
            Mulhu => "mulhu",
            Div => "div",
            Divu => "divu",
            Rem => "rem",
            Remu => "remu",
            Invalid => "invalid",
        }
    }

    /// True for the RV32M multiply/divide operations.
    pub fn is_m_extension(self) -> bool {
        use Opcode::*;
        matches!(self, Mul | Mulh | Mulhsu | Mulhu | Div | Divu | Rem | Remu)
    }
}

/// One decoded instruction. `imm` is already sign-extended (and shifted for U/B/J types); for
/// shift-immediate instructions it holds the 5-bit shift amount. Fields an instruction does not
/// use are zero, so two decodings of the same word always compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    pub opcode: Opcode,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub imm: u32,
}

impl Instruction {
    /// The placeholder for words that cannot be executed.
    pub const INVALID: Instruction = Instruction {
        opcode: Opcode::Invalid,
        rd: 0,
        rs1: 0,
        rs2: 0,
        imm: 0,
    };

    /// Decodes a word, or says why it is not a supported RV32IM instruction.
    pub fn decode(word: u32) -> Result<Instruction, DecodeError> {
        decode(word)
    }

    /// Decodes a word, mapping unsupported words to [`Opcode::Invalid`].
    pub fn decode_or_invalid(word: u32) -> Instruction {
        decode(word).unwrap_or(Instruction::INVALID)
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Opcode::*;
        let m = self.opcode.mnemonic();
        let (rd, rs1, rs2, imm) = (self.rd, self.rs1, self.rs2, self.imm as i32);
        match self.opcode {
            Lui | Auipc => write!(f, "{m} x{rd}, {:#x}", self.imm >> 12),
            Jal => write!(f, "{m} x{rd}, {imm}"),
            Jalr => write!(f, "{m} x{rd}, {imm}(x{rs1})"),
            Beq | Bne | Blt | Bge | Bltu | Bgeu => write!(f, "{m} x{rs1}, x{rs2}, {imm}"),
            Lb | Lh | Lw | Lbu | Lhu => write!(f, "{m} x{rd}, {imm}(x{rs1})"),
            Sb | Sh | Sw => write!(f, "{m} x{rs2}, {imm}(x{rs1})"),
            Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai => {
                write!(f, "{m} x{rd}, x{rs1}, {imm}")
            }
            Fence | Ecall | Invalid => write!(f, "{m}"),
            _ => write!(f, "{m} x{rd}, x{rs1}, x{rs2}"),
        }
    }
}

/// Why a word is not a supported instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("compressed (16-bit) instruction; stark-pipe supports RV32IM without the C extension")]
    Compressed,
    #[error("CSR instruction (Zicsr is not supported)")]
    Csr,
    #[error("EBREAK is not supported")]
    Ebreak,
    #[error("not an RV32IM instruction")]
    Unknown,
}

fn sext(value: u32, bits: u32) -> u32 {
    let shift = 32 - bits;
    (((value << shift) as i32) >> shift) as u32
}

fn decode(word: u32) -> Result<Instruction, DecodeError> {
    use Opcode::*;
    if word & 3 != 3 {
        return Err(DecodeError::Compressed);
    }
    let opcode = word & 0x7f;
    let rd = ((word >> 7) & 31) as u8;
    let funct3 = (word >> 12) & 7;
    let rs1 = ((word >> 15) & 31) as u8;
    let rs2 = ((word >> 20) & 31) as u8;
    let funct7 = word >> 25;
    let i_imm = sext(word >> 20, 12);
    let s_imm = sext(((word >> 25) << 5) | ((word >> 7) & 31), 12);
    let b_imm = sext(
        (((word >> 31) & 1) << 12)
            | (((word >> 7) & 1) << 11)
            | (((word >> 25) & 0x3f) << 5)
            | (((word >> 8) & 0xf) << 1),
        13,
    );
    let u_imm = word & 0xffff_f000;
    let j_imm = sext(
        (((word >> 31) & 1) << 20)
            | (((word >> 12) & 0xff) << 12)
            | (((word >> 20) & 1) << 11)
            | (((word >> 21) & 0x3ff) << 1),
        21,
    );
    let r = |op| {
        Ok(Instruction {
            opcode: op,
            rd,
            rs1,
            rs2,
            imm: 0,
        })
    };
    let i = |op| {
        Ok(Instruction {
            opcode: op,
            rd,
            rs1,
            rs2: 0,
            imm: i_imm,
        })
    };
    match opcode {
        0x37 => Ok(Instruction {
            opcode: Lui,
            rd,
            rs1: 0,
            rs2: 0,
            imm: u_imm,
        }),
        0x17 => Ok(Instruction {
            opcode: Auipc,
            rd,
            rs1: 0,
            rs2: 0,
            imm: u_imm,
        }),
        0x6f => Ok(Instruction {
            opcode: Jal,
            rd,
            rs1: 0,
            rs2: 0,
            imm: j_imm,
        }),
        0x67 if funct3 == 0 => i(Jalr),
        0x63 => {
            let op = match funct3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return Err(DecodeError::Unknown),
            };
            Ok(Instruction {
                opcode: op,
                rd: 0,
                rs1,
                rs2,
                imm: b_imm,
            })
        }
        0x03 => i(match funct3 {
            0 => Lb,
            1 => Lh,
            2 => Lw,
            4 => Lbu,
            5 => Lhu,
            _ => return Err(DecodeError::Unknown),
        }),
        0x23 => {
            let op = match funct3 {
                0 => Sb,
                1 => Sh,
                2 => Sw,
                _ => return Err(DecodeError::Unknown),
            };
            Ok(Instruction {
                opcode: op,
                rd: 0,
                rs1,
                rs2,
                imm: s_imm,
            })
        }
        0x13 => match funct3 {
            0 => i(Addi),
            2 => i(Slti),
            3 => i(Sltiu),
            4 => i(Xori),
            6 => i(Ori),
            7 => i(Andi),
            1 | 5 => {
                let op = match (funct3, funct7) {
                    (1, 0x00) => Slli,
                    (5, 0x00) => Srli,
                    (5, 0x20) => Srai,
                    _ => return Err(DecodeError::Unknown),
                };
                Ok(Instruction {
                    opcode: op,
                    rd,
                    rs1,
                    rs2: 0,
                    imm: rs2 as u32,
                })
            }
            _ => unreachable!("funct3 is three bits"),
        },
        0x33 => r(match (funct7, funct3) {
            (0x00, 0) => Add,
            (0x20, 0) => Sub,
            (0x00, 1) => Sll,
            (0x00, 2) => Slt,
            (0x00, 3) => Sltu,
            (0x00, 4) => Xor,
            (0x00, 5) => Srl,
            (0x20, 5) => Sra,
            (0x00, 6) => Or,
            (0x00, 7) => And,
            (0x01, 0) => Mul,
            (0x01, 1) => Mulh,
            (0x01, 2) => Mulhsu,
            (0x01, 3) => Mulhu,
            (0x01, 4) => Div,
            (0x01, 5) => Divu,
            (0x01, 6) => Rem,
            (0x01, 7) => Remu,
            _ => return Err(DecodeError::Unknown),
        }),
        // FENCE (funct3 0); FENCE.I (funct3 1) belongs to Zifencei and is not supported.
        0x0f if funct3 == 0 => Ok(Instruction {
            opcode: Fence,
            rd: 0,
            rs1: 0,
            rs2: 0,
            imm: 0,
        }),
        0x73 => match (funct3, word >> 7) {
            (0, 0) => Ok(Instruction {
                opcode: Ecall,
                rd: 0,
                rs1: 0,
                rs2: 0,
                imm: 0,
            }),
            (0, 0x2000) => Err(DecodeError::Ebreak),
            (0, _) => Err(DecodeError::Unknown),
            (4, _) => Err(DecodeError::Unknown),
            _ => Err(DecodeError::Csr),
        },
        _ => Err(DecodeError::Unknown),
    }
}
