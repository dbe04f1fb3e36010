//! The proof object, its binary format and a human-readable summary.
//!
//! # Binary format (version 4)
//! All integers little-endian; a base element is its canonical u64 (values >= p are rejected);
//! an extension element is two base elements; a digest is 32 bytes; a vector is a u32 count
//! followed by its items; an option is a byte 0/1 followed by the item. Nothing is implicit:
//! every byte is checked on decode and trailing bytes are an error.
//!
//! ```text
//! magic "STKPIPE\0" | version u16 = 4
//! header:  field u8 (1 = Goldilocks) | extension degree u8 (2) | hash u8 (1 = BLAKE3)
//!          | log_blowup u8 | num_queries u16 | pow_bits u8 | log_join_rows u8
//!          | statement digest [32]
//! shapes:  vec of (table u32, log_height u8)                  -- canonical (table, chunk) order
//! commits: main pass root digest | aux pass root option<digest>
//!          | claimed sums vec<option<ext>> (per instance) | quotient pass root digest
//! ood:     vec per instance of 7 vec<ext>: main, main_next, prep, prep_next, aux, aux_next, quotient
//! fri:     layer roots vec<digest> | final value ext | pow nonce u64
//! opened:  vec per instance of (main, option prep, option aux, quotient) tree openings,
//!          a tree opening = (vec of rows, each vec<base>, vec<digest> siblings below the join)
//!          then the pass siblings: 4 vec<digest> (prep, main, aux, quotient)
//!          then vec per committed FRI layer of (vec<ext> leaf values, vec<digest> siblings)
//! ```
//! Openings are batched: the rows (or FRI leaves) at the distinct positions the queries select,
//! in increasing order, and the Merkle siblings that rebuild the root from them (paths that
//! meet share nodes; see [`crate::merkle::verify_batch`]). A pass's root joins its instances'
//! trees ([`crate::pass_tree`]): each instance's opening holds its own siblings below the join
//! layer, the pass's the siblings above it.

use std::fmt;

use crate::codec::{Reader, Writer};
use crate::field::{EF, F};
use crate::merkle::Digest;
use crate::params::ProofParams;

pub const MAGIC: &[u8; 8] = b"STKPIPE\0";
/// Version 5 has version 3's layout; 4 marked the machine's table list growing (the WORD chip),
/// 5 the LogUp columns changing (the running sum carries the last fraction group, so every
/// table with a bus has one aux column fewer): a proof of an older AIR is refused by its
/// version, not by a shape that no longer matches.
pub const FORMAT_VERSION: u16 = 5;
pub const FIELD_GOLDILOCKS: u8 = 1;
pub const HASH_BLAKE3: u8 = 1;

/// One instance (chunk) of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceShape {
    pub table: u32,
    pub log_height: u8,
}

/// Out-of-domain values of every committed base column of one instance, at z and z*w.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceOod {
    pub main: Vec<EF>,
    pub main_next: Vec<EF>,
    pub prep: Vec<EF>,
    pub prep_next: Vec<EF>,
    pub aux: Vec<EF>,
    pub aux_next: Vec<EF>,
    /// Quotient piece coordinate columns at z (2 per piece).
    pub quotient: Vec<EF>,
}

/// The rows of one instance's tree at the distinct query positions (increasing), with the
/// siblings of its batch opening below the pass tree's join layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeOpening {
    pub rows: Vec<Vec<F>>,
    pub siblings: Vec<Digest>,
}

impl InstanceOod {
    /// The seven value lists, in the order the proof format encodes them.
    pub fn columns(&self) -> [&Vec<EF>; 7] {
        [
            &self.main,
            &self.main_next,
            &self.prep,
            &self.prep_next,
            &self.aux,
            &self.aux_next,
            &self.quotient,
        ]
    }

    /// [`InstanceOod::columns`], mutable.
    pub fn columns_mut(&mut self) -> [&mut Vec<EF>; 7] {
        [
            &mut self.main,
            &mut self.main_next,
            &mut self.prep,
            &mut self.prep_next,
            &mut self.aux,
            &mut self.aux_next,
            &mut self.quotient,
        ]
    }
}

/// One instance's openings at all queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceOpening {
    pub main: TreeOpening,
    pub prep: Option<TreeOpening>,
    pub aux: Option<TreeOpening>,
    pub quotient: TreeOpening,
}

/// The siblings of each pass tree above its join layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassSiblings {
    pub prep: Vec<Digest>,
    pub main: Vec<Digest>,
    pub aux: Vec<Digest>,
    pub quotient: Vec<Digest>,
}

/// One committed FRI layer's leaves at the distinct leaf indices the queries select
/// ([`crate::protocol::fri_group_indices`]): each leaf's `2^log_arity` values, leaf after leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriLayerOpening {
    pub values: Vec<EF>,
    pub siblings: Vec<Digest>,
}

/// A complete proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub params: ProofParams,
    pub statement: Digest,
    pub instances: Vec<InstanceShape>,
    /// The main pass root.
    pub main_root: Digest,
    /// The aux pass root (`None` when no table has buses).
    pub aux_root: Option<Digest>,
    /// Per instance, the LogUp partial sum it claims (`None` for a table without buses).
    pub claimed_sums: Vec<Option<EF>>,
    /// The quotient pass root.
    pub quotient_root: Digest,
    pub ood: Vec<InstanceOod>,
    pub fri_roots: Vec<Digest>,
    pub fri_final: EF,
    pub pow_nonce: u64,
    /// Per instance, canonical order.
    pub openings: Vec<InstanceOpening>,
    pub pass_siblings: PassSiblings,
    /// Per FRI layer.
    pub fri_openings: Vec<FriLayerOpening>,
}

/// Why bytes are not a well-formed proof.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a stark-pipe proof (bad magic)")]
    BadMagic,
    #[error("proof format version {0}; this verifier reads version {FORMAT_VERSION} only")]
    Version(u16),
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: u64 },
    #[error("proof truncated")]
    Truncated,
    #[error("length {0} does not fit the remaining bytes")]
    BadLength(u64),
    #[error("non-canonical field element")]
    NonCanonical,
    #[error("invalid flag byte {0}")]
    BadFlag(u8),
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl Proof {
    /// Serializes the proof (format above).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().0
    }

    /// The bytes and where each section ends (header+shapes, commitments, ood, fri roots..nonce,
    /// trace openings, fri openings).
    fn encode(&self) -> (Vec<u8>, [usize; 6]) {
        let mut ends = [0usize; 6];
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u16(FORMAT_VERSION);
        w.u8(FIELD_GOLDILOCKS);
        w.u8(crate::field::EXT_DEGREE as u8);
        w.u8(HASH_BLAKE3);
        w.u8(self.params.log_blowup);
        w.u16(self.params.num_queries);
        w.u8(self.params.pow_bits);
        w.u8(self.params.log_join_rows);
        w.digest(&self.statement);
        w.len(self.instances.len());
        for s in &self.instances {
            w.u32(s.table);
            w.u8(s.log_height);
        }
        ends[0] = w.0.len();
        w.digest(&self.main_root);
        match &self.aux_root {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                w.digest(r);
            }
        }
        w.len(self.claimed_sums.len());
        for c in &self.claimed_sums {
            match c {
                None => w.u8(0),
                Some(c) => {
                    w.u8(1);
                    w.ext(*c);
                }
            }
        }
        w.digest(&self.quotient_root);
        ends[1] = w.0.len();
        w.len(self.ood.len());
        for o in &self.ood {
            for v in o.columns() {
                w.exts(v);
            }
        }
        ends[2] = w.0.len();
        w.digests(&self.fri_roots);
        w.ext(self.fri_final);
        w.u64(self.pow_nonce);
        ends[3] = w.0.len();
        w.len(self.openings.len());
        for o in &self.openings {
            w.tree(&o.main);
            w.opt_tree(&o.prep);
            w.opt_tree(&o.aux);
            w.tree(&o.quotient);
        }
        let p = &self.pass_siblings;
        for s in [&p.prep, &p.main, &p.aux, &p.quotient] {
            w.digests(s);
        }
        ends[4] = w.0.len();
        w.len(self.fri_openings.len());
        for l in &self.fri_openings {
            w.exts(&l.values);
            w.digests(&l.siblings);
        }
        ends[5] = w.0.len();
        (w.0, ends)
    }

    /// Parses a proof. Checks the encoding only; [`crate::verify`] checks the contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Proof, DecodeError> {
        let mut r = Reader { b: bytes };
        if r.take(8).map_err(|_| DecodeError::BadMagic)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        for (what, expect) in [
            ("field", FIELD_GOLDILOCKS),
            ("extension degree", 2),
            ("hash", HASH_BLAKE3),
        ] {
            let v = r.u8()?;
            if v != expect {
                return Err(DecodeError::Unsupported {
                    what,
                    value: v as u64,
                });
            }
        }
        let params = ProofParams {
            log_blowup: r.u8()?,
            num_queries: r.u16()?,
            pow_bits: r.u8()?,
            log_join_rows: r.u8()?,
        };
        let statement = r.digest()?;
        let instances = r.vec(5, |r| {
            Ok(InstanceShape {
                table: r.u32()?,
                log_height: r.u8()?,
            })
        })?;
        let main_root = r.digest()?;
        let aux_root = if r.flag()? { Some(r.digest()?) } else { None };
        let claimed_sums = r.vec(1, |r| Ok(if r.flag()? { Some(r.ext()?) } else { None }))?;
        let quotient_root = r.digest()?;
        let ood = r.vec(28, |r| {
            Ok(InstanceOod {
                main: r.exts()?,
                main_next: r.exts()?,
                prep: r.exts()?,
                prep_next: r.exts()?,
                aux: r.exts()?,
                aux_next: r.exts()?,
                quotient: r.exts()?,
            })
        })?;
        let fri_roots = r.digests()?;
        let fri_final = r.ext()?;
        let pow_nonce = r.u64()?;
        let openings = r.vec(18, |r| {
            Ok(InstanceOpening {
                main: r.tree()?,
                prep: r.opt_tree()?,
                aux: r.opt_tree()?,
                quotient: r.tree()?,
            })
        })?;
        let pass_siblings = PassSiblings {
            prep: r.digests()?,
            main: r.digests()?,
            aux: r.digests()?,
            quotient: r.digests()?,
        };
        let fri_openings = r.vec(8, |r| {
            Ok(FriLayerOpening {
                values: r.exts()?,
                siblings: r.digests()?,
            })
        })?;
        r.finish()?;
        Ok(Proof {
            params,
            statement,
            instances,
            main_root,
            aux_root,
            claimed_sums,
            quotient_root,
            ood,
            fri_roots,
            fri_final,
            pow_nonce,
            openings,
            pass_siblings,
            fri_openings,
        })
    }

    /// log2 of the largest LDE in the proof (0 if there are no instances).
    pub fn max_log_lde(&self) -> u32 {
        self.instances
            .iter()
            .map(|s| s.log_height as u32)
            .max()
            .unwrap_or(0)
            + self.params.log_blowup as u32
    }

    /// The summary `inspect` prints.
    pub fn summary(&self, table_names: &[&str]) -> ProofSummary {
        let mut tables: Vec<TableSummary> = Vec::new();
        for s in &self.instances {
            let name = table_names
                .get(s.table as usize)
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("table {}", s.table));
            match tables.last_mut() {
                Some(t) if t.table == s.table => t.log_heights.push(s.log_height),
                _ => tables.push(TableSummary {
                    table: s.table,
                    name,
                    log_heights: vec![s.log_height],
                }),
            }
        }
        let (bytes, e) = self.encode();
        let sizes = ProofSizes {
            header: e[0],
            commitments: e[1] - e[0],
            ood: e[2] - e[1],
            fri_commitments: e[3] - e[2],
            trace_openings: e[4] - e[3],
            fri_openings: e[5] - e[4],
        };
        ProofSummary {
            version: FORMAT_VERSION,
            sizes,
            params: self.params,
            security_bits: self.params.conjectured_security_bits(self.max_log_lde()),
            statement: self.statement,
            tables,
            fri_layers: self.fri_roots.len(),
            size_bytes: bytes.len(),
        }
    }
}

/// Per-table part of a [`ProofSummary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    pub table: u32,
    pub name: String,
    pub log_heights: Vec<u8>,
}

/// Bytes per section of the encoded proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofSizes {
    /// Magic, version, parameters, statement, instance shapes.
    pub header: usize,
    /// Main, aux and quotient pass roots, and the claimed sums.
    pub commitments: usize,
    /// Out-of-domain values.
    pub ood: usize,
    /// FRI layer roots, final value, grinding nonce.
    pub fri_commitments: usize,
    /// Opened trace/aux/quotient/preprocessed rows and their Merkle siblings.
    pub trace_openings: usize,
    /// Opened FRI pairs and their Merkle siblings.
    pub fri_openings: usize,
}

/// What `inspect` shows about a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofSummary {
    pub version: u16,
    pub params: ProofParams,
    pub security_bits: u32,
    pub statement: Digest,
    pub tables: Vec<TableSummary>,
    pub fri_layers: usize,
    pub size_bytes: usize,
    pub sizes: ProofSizes,
}

impl fmt::Display for ProofSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.statement.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(f, "stark-pipe proof, format v{}", self.version)?;
        writeln!(
            f,
            "  field        Goldilocks, quadratic extension (X^2 - 7)"
        )?;
        writeln!(f, "  hash         BLAKE3 (Merkle + Fiat-Shamir)")?;
        writeln!(
            f,
            "  params       blowup {}, {} queries, {} grinding bits, trees joined at 2^{} rows",
            self.params.blowup(),
            self.params.num_queries,
            self.params.pow_bits,
            self.params.log_join_rows
        )?;
        writeln!(
            f,
            "  security     {} bits (conjectured, ethSTARK-style)",
            self.security_bits
        )?;
        writeln!(f, "  statement    {hex}")?;
        writeln!(
            f,
            "  size         {} bytes, {} FRI layers",
            self.size_bytes, self.fri_layers
        )?;
        let z = &self.sizes;
        writeln!(
            f,
            "               header {}, commitments {}, ood {}, fri roots {}, trace openings {}, fri openings {}",
            z.header, z.commitments, z.ood, z.fri_commitments, z.trace_openings, z.fri_openings
        )?;
        for t in &self.tables {
            let rows: u64 = t
                .log_heights
                .iter()
                .map(|h| 1u64.checked_shl(*h as u32).unwrap_or(u64::MAX))
                .fold(0u64, |a, b| a.saturating_add(b));
            let hs: Vec<String> = t.log_heights.iter().map(|h| format!("2^{h}")).collect();
            writeln!(
                f,
                "  {:<12} {} instances, {} rows: {}",
                t.name,
                t.log_heights.len(),
                rows,
                hs.join(" ")
            )?;
        }
        Ok(())
    }
}
