//! The RV32IM machine: ELF loading, decoder, executor (plain and tracing), chunk checkpoints.
