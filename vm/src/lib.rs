//! The RV32IM machine: ELF loading ([`program`]), decoding ([`decode`]), the executor in plain and
//! tracing modes ([`machine`]), sparse memory ([`memory`]) and chunk checkpoints ([`checkpoint`]).
//!
//! The executor is the reference semantics of the prover: trace generation consumes its
//! [`Step`]s chunk by chunk, and re-executes a chunk from its [`Checkpoint`] when a later pass
//! needs the trace again. It is cross-checked against `qemu-riscv32` on every fixture.

pub mod air;
pub mod checkpoint;
pub mod decode;
pub mod machine;
pub mod memory;
pub mod program;

pub use checkpoint::Checkpoint;
pub use decode::{DecodeError, Instruction, Opcode};
pub use machine::{Exit, InstructionMix, IoEvent, Machine, Step, TraceChunk, VmError};
pub use program::{ElfError, Program, Segment};
