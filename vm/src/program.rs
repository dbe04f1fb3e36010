//! Loading a static RV32IM ELF executable into a [`Program`].
//!
//! Only what the machine can run faithfully is accepted: ELF32, little-endian, RISC-V, an
//! executable (not relocatable or shared), without the compressed-instruction or RV32E flags, with
//! PT_LOAD segments that fit the 32-bit address space and do not overlap. Each refusal is its own
//! [`ElfError`] variant, so a user sees exactly which rule the file broke.

use std::path::Path;

use crate::decode::Instruction;
use ::elf::abi;
use ::elf::endian::AnyEndian;
use ::elf::file::Class;

/// A loadable segment of the program image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u32,
    /// Size in memory; bytes past `data.len()` are zero (.bss).
    pub mem_size: u32,
    /// Initialised bytes, `file_size` long.
    pub data: Vec<u8>,
    pub executable: bool,
    pub writable: bool,
}

impl Segment {
    /// One past the last address of the segment, as u64 so that a segment ending at 2^32 fits.
    pub fn end(&self) -> u64 {
        self.vaddr as u64 + self.mem_size as u64
    }
}

/// A page of the program's memory (see [`Program::pages`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    /// Page number (address / [`crate::memory::PAGE_BYTES`]).
    pub number: u32,
    pub writable: bool,
}

/// A loaded program: its image and its pre-decoded code.
#[derive(Clone, Debug)]
pub struct Program {
    pub entry: u32,
    pub segments: Vec<Segment>,
    /// Address of `code[0]`: the lowest executable address (word aligned).
    pub code_base: u32,
    /// One decoded instruction per word from `code_base` to the end of the last executable segment;
    /// words outside executable segments, or that do not decode, are [`Opcode::Invalid`].
    ///
    /// [`Opcode::Invalid`]: crate::decode::Opcode::Invalid
    pub code: Vec<Instruction>,
    /// The raw words behind `code`, for error messages and the program table.
    pub words: Vec<u32>,
    /// For each word of `code`: whether it lies inside an executable segment.
    pub fetchable: Vec<bool>,
}

/// Why an ELF file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("not a valid ELF file: {0}")]
    Malformed(String),
    #[error("64-bit ELF (ELFCLASS64); stark-pipe runs 32-bit RV32IM executables")]
    Not32Bit,
    #[error("big-endian ELF; RISC-V executables are little-endian")]
    BigEndian,
    #[error("ELF machine is {0} ({1}), not RISC-V (243)")]
    NotRiscV(u16, String),
    #[error("ELF type is {0}, not an executable (ET_EXEC); link the program statically")]
    NotExecutable(String),
    #[error(
        "ELF header has the compressed-instruction flag (EF_RISCV_RVC); build with -march=rv32im"
    )]
    CompressedFlag,
    #[error(
        "ELF header has the RV32E flag (EF_RISCV_RVE); stark-pipe implements RV32I with 32 registers"
    )]
    RveFlag,
    #[error("ELF has no PT_LOAD segment")]
    NoLoadSegment,
    #[error("PT_LOAD segment {index} at {vaddr:#x}: {reason}")]
    BadSegment {
        index: usize,
        vaddr: u64,
        reason: String,
    },
    #[error("PT_LOAD segments {a} and {b} overlap ({a_range} and {b_range})")]
    Overlap {
        a: usize,
        b: usize,
        a_range: String,
        b_range: String,
    },
    #[error("entry point {0:#x} is not a 4-byte aligned address inside an executable segment")]
    BadEntry(u64),
}

impl Program {
    /// Reads and loads an ELF file.
    pub fn from_file(path: &Path) -> Result<Program, ElfError> {
        let bytes = std::fs::read(path).map_err(|error| ElfError::Io {
            path: path.display().to_string(),
            error,
        })?;
        Program::from_elf(&bytes)
    }

    /// Loads an ELF image held in memory.
    pub fn from_elf(bytes: &[u8]) -> Result<Program, ElfError> {
        // Class and data encoding are checked on the raw identification bytes first, so that a
        // 64-bit or big-endian file gets its own message rather than a generic parse error.
        if bytes.len() < 16 || &bytes[..4] != b"\x7fELF" {
            return Err(ElfError::Malformed(if bytes.len() < 16 {
                format!(
                    "file is {} bytes, shorter than the ELF identification",
                    bytes.len()
                )
            } else {
                "missing ELF magic (\\x7fELF)".to_string()
            }));
        }
        // e_machine sits at offset 18 in both classes; checking it first gives an x86-64 file the
        // "not RISC-V" message it deserves rather than "64-bit".
        if bytes.len() >= 20 {
            let machine = if bytes[abi::EI_DATA] == abi::ELFDATA2MSB {
                u16::from_be_bytes([bytes[18], bytes[19]])
            } else {
                u16::from_le_bytes([bytes[18], bytes[19]])
            };
            if machine != abi::EM_RISCV {
                return Err(not_riscv(machine));
            }
        }
        if bytes[abi::EI_CLASS] == abi::ELFCLASS64 {
            return Err(ElfError::Not32Bit);
        }
        if bytes[abi::EI_DATA] == abi::ELFDATA2MSB {
            return Err(ElfError::BigEndian);
        }
        let file = ::elf::ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|e| {
            ElfError::Malformed(format!(
                "{e} (the file is {} bytes: truncated or corrupt)",
                bytes.len()
            ))
        })?;
        let ehdr = &file.ehdr;
        if ehdr.class != Class::ELF32 {
            return Err(ElfError::Not32Bit);
        }
        if ehdr.e_machine != abi::EM_RISCV {
            return Err(not_riscv(ehdr.e_machine));
        }
        if ehdr.e_type != abi::ET_EXEC {
            let name = ::elf::to_str::e_type_to_str(ehdr.e_type)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:#x}", ehdr.e_type));
            return Err(ElfError::NotExecutable(name));
        }
        if ehdr.e_flags & abi::EF_RISCV_RVC != 0 {
            return Err(ElfError::CompressedFlag);
        }
        if ehdr.e_flags & abi::EF_RISCV_RVE != 0 {
            return Err(ElfError::RveFlag);
        }
        let phdrs = file.segments().ok_or(ElfError::NoLoadSegment)?;
        let mut segments = Vec::new();
        for (index, ph) in phdrs.iter().enumerate() {
            if ph.p_type != abi::PT_LOAD || ph.p_memsz == 0 {
                continue;
            }
            let bad = |reason: String| ElfError::BadSegment {
                index,
                vaddr: ph.p_vaddr,
                reason,
            };
            if ph.p_filesz > ph.p_memsz {
                return Err(bad(format!(
                    "file size {:#x} exceeds memory size {:#x}",
                    ph.p_filesz, ph.p_memsz
                )));
            }
            if ph
                .p_vaddr
                .checked_add(ph.p_memsz)
                .is_none_or(|end| end > 1 << 32)
            {
                return Err(bad(format!(
                    "memory size {:#x} runs past the 32-bit address space",
                    ph.p_memsz
                )));
            }
            let data = file.segment_data(&ph).map_err(|e| {
                bad(format!(
                    "file range {:#x}+{:#x} is outside the file: {e}",
                    ph.p_offset, ph.p_filesz
                ))
            })?;
            segments.push((
                index,
                Segment {
                    vaddr: ph.p_vaddr as u32,
                    mem_size: ph.p_memsz as u32,
                    data: data.to_vec(),
                    executable: ph.p_flags & abi::PF_X != 0,
                    writable: ph.p_flags & abi::PF_W != 0,
                },
            ));
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadSegment);
        }
        segments.sort_by_key(|(_, s)| s.vaddr);
        for pair in segments.windows(2) {
            let ((ia, a), (ib, b)) = (&pair[0], &pair[1]);
            if a.end() > b.vaddr as u64 {
                let range = |s: &Segment| format!("{:#x}..{:#x}", s.vaddr, s.end());
                return Err(ElfError::Overlap {
                    a: *ia,
                    b: *ib,
                    a_range: range(a),
                    b_range: range(b),
                });
            }
        }
        let segments: Vec<Segment> = segments.into_iter().map(|(_, s)| s).collect();
        let entry = ehdr.e_entry;
        if entry % 4 != 0
            || !segments
                .iter()
                .any(|s| s.executable && (s.vaddr as u64..s.end()).contains(&entry))
        {
            return Err(ElfError::BadEntry(entry));
        }
        Ok(Program::from_segments(entry as u32, segments))
    }

    /// Builds a program from segments that are already known to be sorted and disjoint; decodes the
    /// executable words.
    pub fn from_segments(entry: u32, segments: Vec<Segment>) -> Program {
        let exec: Vec<&Segment> = segments.iter().filter(|s| s.executable).collect();
        let code_base = exec.first().map_or(0, |s| s.vaddr & !3);
        let code_end = exec
            .iter()
            .map(|s| s.end())
            .max()
            .unwrap_or(code_base as u64);
        let n_words = (code_end - code_base as u64).div_ceil(4) as usize;
        let mut words = vec![0u32; n_words];
        let mut fetchable = vec![false; n_words];
        for seg in &exec {
            let mut addr = seg.vaddr as u64 & !3;
            while addr < seg.end() {
                let mut word = [0u8; 4];
                for (k, byte) in word.iter_mut().enumerate() {
                    let a = addr + k as u64;
                    if a >= seg.vaddr as u64 && a < seg.vaddr as u64 + seg.data.len() as u64 {
                        *byte = seg.data[(a - seg.vaddr as u64) as usize];
                    }
                }
                let idx = ((addr - code_base as u64) / 4) as usize;
                words[idx] = u32::from_le_bytes(word);
                // Only words wholly inside the segment can be fetched.
                fetchable[idx] = addr >= seg.vaddr as u64 && addr + 4 <= seg.end();
                addr += 4;
            }
        }
        let code = words
            .iter()
            .zip(&fetchable)
            .map(|(&w, &ok)| {
                if ok {
                    Instruction::decode_or_invalid(w)
                } else {
                    Instruction::INVALID
                }
            })
            .collect();
        Program {
            entry,
            segments,
            code_base,
            code,
            words,
            fetchable,
        }
    }

    /// The pages the program's segments overlap, in address order, each with whether it is
    /// writable: a page is writable when a segment with PF_W overlaps it (segments that share a
    /// page share its permissions, as the page is the unit of protection). The executor's memory
    /// and the AIR's image table are both built from this list.
    pub fn pages(&self) -> Vec<PageInfo> {
        let mut pages: Vec<PageInfo> = Vec::new();
        for seg in self.segments.iter().filter(|s| s.mem_size > 0) {
            let first = seg.vaddr / crate::memory::PAGE_BYTES;
            let last = ((seg.end() - 1) / crate::memory::PAGE_BYTES as u64) as u32;
            for number in first..=last {
                pages.push(PageInfo {
                    number,
                    writable: seg.writable,
                });
            }
        }
        pages.sort_unstable_by_key(|p| (p.number, !p.writable));
        pages.dedup_by_key(|p| p.number);
        pages
    }

    /// Total bytes of the program image in memory.
    pub fn image_size(&self) -> u64 {
        self.segments.iter().map(|s| s.mem_size as u64).sum()
    }
}

fn not_riscv(machine: u16) -> ElfError {
    let name = ::elf::to_str::e_machine_to_human_str(machine).unwrap_or("unknown machine");
    ElfError::NotRiscV(machine, name.to_string())
}
