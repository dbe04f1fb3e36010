//! What the soundness tests share: fixtures, honest witnesses, and a [`Forgery`]: a witness and
//! statement a test edits cell by cell as a cheating prover would, then proves without any
//! self-check and hands to the unmodified verifier.
#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::sync::Arc;

use stark::field::{F, PrimeCharacteristicRing};
use stark::{InstanceTrace, Proof, ProofParams, VerifierParams};
use vm::air::{ExecutionError, Rv32Air, Statement, Witness, bytes, table, verify_execution};
use vm::{Machine, Program, TraceChunk};

fn load(dir: &str, name: &str) -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(dir)
        .join(format!("{name}.elf"));
    Arc::new(Program::from_file(&path).unwrap())
}

/// A committed fixture ELF (`fixtures/elf`).
pub fn fixture(name: &str) -> Arc<Program> {
    load("elf", name)
}

/// A program that must be refused (`fixtures/bad`).
pub fn bad_fixture(name: &str) -> Arc<Program> {
    load("bad", name)
}

/// The honest witness and statement of `program` on `input`, in instances of `chunk_rows` rows.
pub fn witness(
    program: &Arc<Program>,
    input: &[u8],
    chunk_rows: usize,
) -> (Vec<InstanceTrace>, Statement) {
    let air = Rv32Air::new(Arc::clone(program));
    let mut w = Witness::new(&air, chunk_rows).unwrap();
    let mut m = Machine::new(Arc::clone(program), Arc::from(input));
    let mut chunk = TraceChunk::default();
    loop {
        let done = m.trace_chunk(chunk_rows, &mut chunk).unwrap();
        w.push_chunk(&chunk).unwrap();
        if done {
            break;
        }
    }
    w.finish().unwrap()
}

/// Small, fast proofs: the tests are about the constraints, not the query count.
pub fn params() -> ProofParams {
    ProofParams {
        log_blowup: 1,
        num_queries: 20,
        pow_bits: 4,
        // Pass trees joined at 2^6 rows: most tables have siblings below and above the join.
        log_join_rows: 6,
    }
}

pub fn verifier_params() -> VerifierParams {
    VerifierParams {
        min_security_bits: 0,
        ..VerifierParams::default()
    }
}

/// A cell: (instance index in the trace list, row).
pub type At = (usize, usize);

/// A witness being forged, for the program the verifier will check it against.
#[derive(Clone)]
pub struct Forgery {
    pub program: Arc<Program>,
    pub traces: Vec<InstanceTrace>,
    pub statement: Statement,
}

impl Forgery {
    pub fn honest(program: &Arc<Program>, input: &[u8], chunk_rows: usize) -> Forgery {
        let (traces, statement) = witness(program, input, chunk_rows);
        Forgery {
            program: Arc::clone(program),
            traces,
            statement,
        }
    }

    /// Every row (padding included) of every instance of `table`, in order.
    pub fn rows(&self, table: usize) -> Vec<At> {
        self.traces
            .iter()
            .enumerate()
            .filter(|(_, it)| it.table == table)
            .flat_map(|(i, it)| (0..it.trace.values.len() / it.trace.width).map(move |r| (i, r)))
            .collect()
    }

    /// The first row of `table` that `pred` accepts.
    pub fn find(&self, table: usize, pred: impl Fn(&[F]) -> bool) -> Option<At> {
        self.rows(table).into_iter().find(|&at| pred(self.row(at)))
    }

    pub fn row(&self, (i, r): At) -> &[F] {
        let w = self.traces[i].trace.width;
        &self.traces[i].trace.values[r * w..(r + 1) * w]
    }

    pub fn get(&self, at: At, col: usize) -> F {
        self.row(at)[col]
    }

    pub fn set(&mut self, (i, r): At, col: usize, v: F) {
        let w = self.traces[i].trace.width;
        self.traces[i].trace.values[r * w + col] = v;
    }

    pub fn add(&mut self, at: At, col: usize, delta: F) {
        let v = self.get(at, col);
        self.set(at, col, v + delta);
    }

    /// The only instance of a fixed table.
    fn fixed(&self, table: usize) -> usize {
        self.traces.iter().position(|it| it.table == table).unwrap()
    }

    /// Adds `delta` lookups of `v` to the range table's multiplicities.
    pub fn range_lookups(&mut self, v: u64, delta: i64) {
        let i = self.fixed(table::RANGE16);
        self.traces[i].trace.values[v as usize] += signed(delta);
    }

    /// Adds `delta` lookups of `(op, a, b)` to the byte table's multiplicities.
    pub fn byte_lookups(&mut self, op: u64, a: u8, b: u8, delta: i64) {
        let i = self.fixed(table::BYTES);
        let at = bytes::row_of(a, b) * bytes::MAIN_WIDTH + bytes::M_PAIR + op as usize;
        self.traces[i].trace.values[at] += signed(delta);
    }

    /// A zero row of `table` to fill: the first padding row of its last instance, which is
    /// doubled in height when it has none.
    pub fn free_row(&mut self, table: usize, is_padding: impl Fn(&[F]) -> bool) -> At {
        if let Some(at) = self
            .rows(table)
            .into_iter()
            .rev()
            .take_while(|&at| is_padding(self.row(at)))
            .last()
        {
            return at;
        }
        let i = self.rows(table).last().unwrap().0;
        let m = &mut self.traces[i].trace;
        let rows = m.values.len() / m.width;
        m.values.resize(2 * m.values.len(), F::ZERO);
        (i, rows)
    }

    /// Recounts the range and byte tables' multiplicities for whatever the forged rows look up,
    /// as a cheating prover would: afterwards the RANGE16 and BYTE buses are unbalanced only
    /// by lookups the tables cannot answer (a value >= 2^16, a wrong AND/OR/XOR result).
    pub fn recount_lookups(&mut self) {
        let air = Rv32Air::new(Arc::clone(&self.program));
        let imbalance = stark::debug::bus_imbalance(
            &air.tables(),
            &self.traces,
            &self.statement.public_inputs(),
        )
        .unwrap();
        for ((bus, tuple), m) in imbalance {
            match (bus, tuple.as_slice()) {
                (vm::air::bus::RANGE16, &[v]) if v < 1 << 16 => {
                    let i = self.fixed(table::RANGE16);
                    self.traces[i].trace.values[v as usize] += m;
                }
                (vm::air::bus::BYTE, &[bytes::POW, s, pow, q])
                    if s < bytes::POW_ROWS && (pow, q) == (1 << s, 1 << (31 - s)) =>
                {
                    let i = self.fixed(table::BYTES);
                    let at = s as usize * bytes::MAIN_WIDTH + bytes::POW as usize;
                    self.traces[i].trace.values[at] += m;
                }
                (vm::air::bus::BYTE, &[op, a, b, c]) if a < 256 && b < 256 && op < 4 => {
                    let want = [0, a & b, a | b, a ^ b][op as usize];
                    if c == want {
                        let i = self.fixed(table::BYTES);
                        let at = bytes::row_of(a as u8, b as u8) * bytes::MAIN_WIDTH + op as usize;
                        self.traces[i].trace.values[at] += m;
                    }
                }
                _ => {}
            }
        }
    }

    /// Splices in an IO row that moves no bytes (first byte = last + 1): it receives and sends
    /// the same IO token, so it needs no system call, and performs a pass-through access at a
    /// free timestamp (the last cycle's) to the word of the last output row, after that word's
    /// last access: the word's final token moves to it and its lookups are counted, so every
    /// bus balances. Only the IO table's "first byte moves" constraint can object.
    pub fn splice_free_io_row(&mut self) {
        use stark::field::canonical;
        use vm::air::image::{self, ImageLayout};
        use vm::air::io;

        let write = self
            .rows(table::IO)
            .into_iter()
            .rfind(|&at| self.get(at, io::IS_OUT) == F::ONE)
            .expect("the program writes output");
        let word_addr = canonical(self.get(write, io::WORD_ADDR));
        let layout = ImageLayout::new(&self.program);
        let image_at = (
            self.fixed(table::IMAGE),
            layout.row_of(word_addr as u32).unwrap(),
        );
        let value = canonical(self.get(image_at, image::FINAL_VAL)) as u32;
        let prev_ts = canonical(self.get(image_at, image::FINAL_TS));
        let clk = self.statement.cycles - 1;
        let now = 4 * clk + 3;
        assert!(now > prev_ts + 1);
        let gap = now - prev_ts - 1;
        let at = self.free_row(table::IO, |r| r.iter().all(|v| *v == F::ZERO));
        let f = F::from_u64;
        for (col, v) in [
            (io::IS_OUT, 1),
            (io::CLK, clk),
            (io::START, word_addr + 1),
            (io::REMAINING, 0),
            (io::POS, 0),
            (io::WORD_ADDR, word_addr),
            (io::E0 + 1, 1),
            (io::Z0, 1),
            (io::COUNT, 0),
            (io::PREV_TS, prev_ts),
            (io::T_LO, gap & 0xffff),
            (io::T_HI, gap >> 16),
        ] {
            self.set(at, col, f(v));
        }
        let b = value.to_le_bytes();
        for (i, &byte) in b.iter().enumerate() {
            self.set(at, io::M0 + i, f(byte as u64));
            self.set(at, io::N0 + i, f(byte as u64));
        }
        self.set(image_at, image::FINAL_TS, f(now));
        self.range_lookups(gap & 0xffff, 1);
        self.range_lookups(gap >> 16, 1);
        self.byte_lookups(bytes::PAIR, b[0], b[1], 2);
        self.byte_lookups(bytes::PAIR, b[2], b[3], 2);
    }

    /// Proves the forged witness (no self-check) for the program's AIR.
    pub fn prove(&self) -> Proof {
        let air = Rv32Air::new(Arc::clone(&self.program));
        stark::prove(
            &air.tables(),
            self.traces.clone(),
            &self.statement.public_inputs(),
            &params(),
        )
        .unwrap()
    }

    /// Proves, round-trips the proof through its bytes, and runs the full verifier.
    pub fn verify(&self) -> Result<stark::Verified, ExecutionError> {
        let proof = Proof::from_bytes(&self.prove().to_bytes()).unwrap();
        verify_execution(
            Arc::clone(&self.program),
            &self.statement,
            &proof,
            &verifier_params(),
        )
    }

    /// Whether every table's polynomial constraints hold (buses aside).
    pub fn constraints_hold(&self) -> Result<(), String> {
        let air = Rv32Air::new(Arc::clone(&self.program));
        let tables = air.tables();
        for it in &self.traces {
            stark::debug::check_constraints(tables[it.table], &it.trace)?;
        }
        Ok(())
    }

    /// Whether every bus balances with the statement's public terms.
    pub fn buses_balance(&self) -> Result<(), String> {
        let air = Rv32Air::new(Arc::clone(&self.program));
        stark::debug::check_buses(&air.tables(), &self.traces, &self.statement.public_inputs())
    }
}

fn signed(delta: i64) -> F {
    if delta >= 0 {
        F::from_u64(delta as u64)
    } else {
        -F::from_u64(delta.unsigned_abs())
    }
}
