//! Resume (`run --resume DIR`): every pass's results, saved at its barrier for the passes after
//! it ([`pipeline::SpillDir::save_checkpoint`]), and the settings a resumed run must repeat.
//!
//! A checkpoint holds a pass's small results (the statement, roots, claimed sums, OOD values,
//! each LDE's geometry and kept tree level) and names the segments that hold the rest, with the
//! Fiat-Shamir transcript state after the pass absorbed its commitments. A resumed run decodes
//! the checkpoints, hashes every recorded segment against the checksum the manifest recorded,
//! and goes on from the first pass without one. The quotient pass also saves its instances so
//! far ([`save_partial`]) and takes up the segments its killed attempt recorded
//! ([`super::quotient`]). Everything after a barrier is a function of
//! the transcript state and of those results, so the proof is the bytes an uninterrupted run
//! makes.
//!
//! Passes 1 to 5 (main, aux, quotient, ood, deep) save checkpoints. FRI keeps its last layers
//! in memory, and fri, open and check together are about 2% of a run (10 s of 494 s at 16M
//! instructions), so a run killed in them folds FRI again from the DEEP codewords, which stay
//! on disk until the run ends.
//!
//! Encoding: [`stark::codec`], a version byte first; a segment is its file name in the
//! manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use formats::{Checkpoint, Checksum};
use pipeline::{SegmentRef, SpillDir};
use rayon::prelude::*;
use stark::ProofParams;
use stark::chunk_tree::ChunkTree;
use stark::codec::{Reader, Writer};
use stark::ntt::ChunkGeometry;
use stark::proof::{DecodeError, InstanceOod};
use stark::transcript::Transcript;
use vm::Program;
use vm::air::{Statement, program_digest};

use super::aux::AuxInstance;
use super::fri::DiskWord;
use super::main::{MainInstance, Preprocessed};
use super::quotient::QuotientInstance;
use crate::error::Error;
use crate::lde::InstanceLde;

/// Bumped whenever a checkpoint's encoding or a pass's results change.
const FORMAT: u8 = 1;

/// The settings that shape the proof, by name: a resumed run must give the same.
pub fn run_key(
    program: &Program,
    input: &[u8],
    params: &ProofParams,
    block_rows: usize,
    instance_rows: usize,
    max_cycles: u64,
) -> BTreeMap<String, String> {
    [
        (
            "format",
            format!("{FORMAT} (stark-pipe {})", env!("CARGO_PKG_VERSION")),
        ),
        ("program", Checksum(program_digest(program)).to_hex()),
        ("input", Checksum::of(input).to_hex()),
        ("log-blowup", params.log_blowup.to_string()),
        ("queries", params.num_queries.to_string()),
        ("pow-bits", params.pow_bits.to_string()),
        ("chunk-rows", block_rows.to_string()),
        ("instance-rows", instance_rows.to_string()),
        ("max-cycles", max_cycles.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Pass 1's results.
pub struct MainResults {
    pub statement: Statement,
    pub mains: Vec<MainInstance>,
    /// Per (table, log height).
    pub preps: HashMap<(usize, usize), Preprocessed>,
}

/// Pass 2's results, one per instance (`None`: the table has no aux columns).
pub struct AuxResults(pub Vec<Option<AuxInstance>>);

/// Pass 3's results, one per instance.
pub struct QuotientResults(pub Vec<QuotientInstance>);

/// Pass 4's results, one per instance.
pub struct OodResults(pub Vec<InstanceOod>);

/// Pass 5's results: the DEEP codeword of each log LDE height.
pub struct DeepResults(pub BTreeMap<usize, DiskWord>);

/// What a pass leaves for the later ones, as a checkpoint's bytes.
pub trait Results: Sized {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error>;
    fn decode(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Self, Error>;
}

/// A checkpoint being written, and the segments it names: the ones its pass keeps.
pub struct Encoder<'a> {
    pub w: Writer,
    spill: &'a SpillDir,
    named: BTreeSet<String>,
}

/// The checkpoints a resumed run restores, in pass order.
pub struct Saved {
    checkpoints: Vec<Checkpoint>,
    /// The unfinished pass's results so far.
    partial: Option<Checkpoint>,
}

impl Saved {
    /// Makes a fresh run resumable with `key`, or checks that a resumed run (one whose spill
    /// dir already has a resume record) repeats the settings it was started with.
    pub fn open(spill: &SpillDir, key: BTreeMap<String, String>) -> Result<Saved, Error> {
        let Some(record) = spill.resume_record() else {
            spill.make_resumable(key, vec![super::quotient::reused()])?;
            return Ok(Saved {
                checkpoints: Vec::new(),
                partial: None,
            });
        };
        // The program and the input first: the likeliest mistakes, and they explain the rest.
        let mut names: Vec<&String> = key.keys().collect();
        names.sort_by_key(|n| (n.as_str() != "program", n.as_str() != "input"));
        for name in names {
            let want = &key[name];
            let had = record.key.get(name).map_or("nothing", String::as_str);
            if had != want {
                let what = match name.as_str() {
                    "program" => "another program".to_string(),
                    "input" => "another input".to_string(),
                    _ => format!("{name} {had}"),
                };
                return Err(Error::Resume(format!(
                    "{} was started with {what}; this run has {name} {want} (repeat the first \
                     run's program, input and settings)",
                    spill.path().display()
                )));
            }
        }
        Ok(Saved {
            checkpoints: record.checkpoints,
            partial: record.partial,
        })
    }

    /// The passes restored rather than run.
    pub fn passes(&self) -> impl Iterator<Item = &str> {
        self.checkpoints.iter().map(|c| c.pass.as_str())
    }

    /// The pass the run was in when it stopped and how many of its units it had saved.
    pub fn partial(&self) -> Option<(&str, u64)> {
        let p = self.partial.as_ref()?;
        Some((p.pass.as_str(), p.part.unwrap_or(0)))
    }

    /// Checks every recorded segment (the finished passes' and what the unfinished one takes
    /// up again) against the checksum the manifest recorded, in parallel: a resumed run reads
    /// nothing it has not verified.
    pub fn verify_segments(&self, spill: &SpillDir) -> Result<(), Error> {
        let segments: Vec<SegmentRef> = spill
            .manifest()
            .segments
            .values()
            .map(|s| spill.recorded_segment(&s.file))
            .collect::<Result<_, _>>()?;
        segments
            .par_iter()
            .try_for_each(|s| s.open(true).map(drop))
            .map_err(Error::from)
    }

    /// `pass`'s results and the transcript after it, if the run resumes past it.
    pub fn restore<T: Results>(
        &self,
        spill: &SpillDir,
        pass: &str,
    ) -> Result<Option<(T, Transcript)>, Error> {
        match self.checkpoints.iter().find(|c| c.pass == pass) {
            Some(c) => decode(spill, c).map(Some),
            None => Ok(None),
        }
    }

    /// The results of `pass`'s first units and the transcript after them, if the run was
    /// killed in `pass` after it saved some.
    pub fn restore_partial<T: Results>(
        &self,
        spill: &SpillDir,
        pass: &str,
    ) -> Result<Option<(T, Transcript)>, Error> {
        match self.partial.as_ref().filter(|c| c.pass == pass) {
            Some(c) => decode(spill, c).map(Some),
            None => Ok(None),
        }
    }
}

fn decode<T: Results>(spill: &SpillDir, c: &Checkpoint) -> Result<(T, Transcript), Error> {
    let bytes = spill.read_checkpoint(c)?;
    let mut r = reader(&bytes, c)?;
    let results = T::decode(&mut r, spill)?;
    r.finish().map_err(|e| bad(c, e))?;
    let state: Checksum = c
        .transcript
        .parse()
        .map_err(|e| Error::Resume(format!("checkpoint {}: transcript state: {e}", c.file)))?;
    Ok((results, Transcript::from_state(state.0)))
}

/// Saves `results` as `pass`'s checkpoint with the transcript `t` after it; the pass's
/// segments that `results` do not name are removed.
pub fn save<T: Results>(
    spill: &SpillDir,
    pass: &str,
    t: &Transcript,
    results: &T,
) -> Result<(), Error> {
    let e = encode(spill, results)?;
    spill.save_checkpoint(pass, t.state(), &e.w.0, &e.named)?;
    Ok(())
}

/// Saves `results`, those of `pass`'s first `part` units, with the transcript `t` after them.
pub fn save_partial<T: Results>(
    spill: &SpillDir,
    pass: &str,
    part: usize,
    t: &Transcript,
    results: &T,
) -> Result<(), Error> {
    let e = encode(spill, results)?;
    spill.save_partial_checkpoint(pass, part as u64, t.state(), &e.w.0)?;
    Ok(())
}

fn encode<'a, T: Results>(spill: &'a SpillDir, results: &T) -> Result<Encoder<'a>, Error> {
    let mut e = Encoder {
        w: Writer::default(),
        spill,
        named: BTreeSet::new(),
    };
    e.w.u8(FORMAT);
    results.encode(&mut e)?;
    Ok(e)
}

fn reader<'a>(bytes: &'a [u8], c: &Checkpoint) -> Result<Reader<'a>, Error> {
    let mut r = Reader { b: bytes };
    match r.u8().map_err(|e| bad(c, e))? {
        FORMAT => Ok(r),
        v => Err(Error::Resume(format!(
            "checkpoint {} has format {v}, this stark-pipe writes {FORMAT}",
            c.file
        ))),
    }
}

fn bad(c: &Checkpoint, e: DecodeError) -> Error {
    Error::Resume(format!("checkpoint {} is malformed: {e}", c.file))
}

fn decode_error(e: DecodeError) -> Error {
    Error::Resume(format!("a checkpoint is malformed: {e}"))
}

fn put_segments(e: &mut Encoder<'_>, segments: &[SegmentRef]) -> Result<(), Error> {
    e.w.len(segments.len());
    for s in segments {
        let name = e.spill.segment_name(s)?;
        e.w.bytes(name.as_bytes());
        e.named.insert(name);
    }
    Ok(())
}

fn get_segments(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Vec<SegmentRef>, Error> {
    let names = r.vec(4, |r| r.bytes()).map_err(decode_error)?;
    names
        .into_iter()
        .map(|name| {
            let name = std::str::from_utf8(name)
                .map_err(|_| Error::Resume("a checkpoint names a segment in non-UTF-8".into()))?;
            Ok(spill.recorded_segment(name)?)
        })
        .collect()
}

fn put_geo(w: &mut Writer, geo: &ChunkGeometry) {
    for v in [geo.log_height, geo.log_chunk, geo.log_blowup] {
        w.u8(v as u8);
    }
}

fn get_geo(r: &mut Reader<'_>) -> Result<ChunkGeometry, Error> {
    let (h, c, b) = (
        r.u8().map_err(decode_error)? as usize,
        r.u8().map_err(decode_error)? as usize,
        r.u8().map_err(decode_error)? as usize,
    );
    if c > h || h > 40 || b > 8 {
        return Err(Error::Resume(format!(
            "a checkpoint holds an impossible geometry (2^{h} rows, chunks of 2^{c}, blowup 2^{b})"
        )));
    }
    Ok(ChunkGeometry {
        log_height: h,
        log_chunk: c,
        log_blowup: b,
    })
}

fn put_lde(e: &mut Encoder<'_>, lde: &InstanceLde) -> Result<(), Error> {
    put_geo(&mut e.w, &lde.geo);
    e.w.u32(lde.width as u32);
    put_segments(e, &lde.chunks)?;
    e.w.digests(&lde.tree.level);
    e.w.digest(&lde.tree.root);
    Ok(())
}

fn get_lde(r: &mut Reader<'_>, spill: &SpillDir) -> Result<InstanceLde, Error> {
    let geo = get_geo(r)?;
    let width = r.u32().map_err(decode_error)? as usize;
    let chunks = get_segments(r, spill)?;
    let tree = ChunkTree {
        level: r.digests().map_err(decode_error)?,
        root: r.digest().map_err(decode_error)?,
    };
    if chunks.len() != geo.cosets() * geo.chunks() {
        return Err(Error::Resume(format!(
            "a checkpoint's LDE has {} chunks where its geometry has {}",
            chunks.len(),
            geo.cosets() * geo.chunks()
        )));
    }
    Ok(InstanceLde {
        geo,
        width,
        chunks,
        tree,
    })
}

impl Results for MainResults {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error> {
        e.w.bytes(&self.statement.to_bytes());
        e.w.len(self.mains.len());
        for m in &self.mains {
            e.w.u32(m.table as u32);
            e.w.u64(m.instance);
            e.w.bytes(m.label.as_bytes());
            put_lde(e, &m.lde)?;
        }
        let mut preps: Vec<_> = self.preps.iter().collect();
        preps.sort_by_key(|(k, _)| **k);
        e.w.len(preps.len());
        for ((table, log_height), p) in preps {
            e.w.u32(*table as u32);
            e.w.u8(*log_height as u8);
            put_lde(e, &p.lde)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Self, Error> {
        let statement = Statement::from_bytes(r.bytes().map_err(decode_error)?)
            .map_err(|e| Error::Resume(format!("a checkpoint's statement: {e}")))?;
        let n = r.len(8).map_err(decode_error)?;
        let mut mains = Vec::with_capacity(n);
        for _ in 0..n {
            let table = r.u32().map_err(decode_error)? as usize;
            let instance = r.u64().map_err(decode_error)?;
            let label = String::from_utf8(r.bytes().map_err(decode_error)?.to_vec())
                .map_err(|_| Error::Resume("a checkpoint's instance label".into()))?;
            let lde = get_lde(r, spill)?;
            mains.push(MainInstance {
                table,
                instance,
                label,
                lde,
            });
        }
        let n = r.len(8).map_err(decode_error)?;
        let mut preps = HashMap::with_capacity(n);
        for _ in 0..n {
            let table = r.u32().map_err(decode_error)? as usize;
            let log_height = r.u8().map_err(decode_error)? as usize;
            let lde = get_lde(r, spill)?;
            preps.insert((table, log_height), Preprocessed { lde });
        }
        Ok(MainResults {
            statement,
            mains,
            preps,
        })
    }
}

impl Results for AuxResults {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error> {
        e.w.len(self.0.len());
        for a in &self.0 {
            match a {
                None => e.w.u8(0),
                Some(a) => {
                    e.w.u8(1);
                    e.w.ext(a.claimed_sum);
                    put_lde(e, &a.lde)?;
                }
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Self, Error> {
        let n = r.len(1).map_err(decode_error)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(if r.flag().map_err(decode_error)? {
                let claimed_sum = r.ext().map_err(decode_error)?;
                Some(AuxInstance {
                    lde: get_lde(r, spill)?,
                    claimed_sum,
                })
            } else {
                None
            });
        }
        Ok(AuxResults(out))
    }
}

impl Results for QuotientResults {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error> {
        e.w.len(self.0.len());
        self.0.iter().try_for_each(|q| put_lde(e, &q.lde))
    }

    fn decode(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Self, Error> {
        let n = r.len(8).map_err(decode_error)?;
        let out = (0..n)
            .map(|_| {
                Ok(QuotientInstance {
                    lde: get_lde(r, spill)?,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(QuotientResults(out))
    }
}

impl Results for OodResults {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error> {
        e.w.len(self.0.len());
        for o in &self.0 {
            o.columns().into_iter().for_each(|v| e.w.exts(v));
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>, _spill: &SpillDir) -> Result<Self, Error> {
        let out = r
            .vec(28, |r| {
                let mut o = InstanceOod::default();
                for v in o.columns_mut() {
                    *v = r.exts()?;
                }
                Ok(o)
            })
            .map_err(decode_error)?;
        Ok(OodResults(out))
    }
}

impl Results for DeepResults {
    fn encode(&self, e: &mut Encoder<'_>) -> Result<(), Error> {
        e.w.len(self.0.len());
        for (log_size, word) in &self.0 {
            e.w.u8(*log_size as u8);
            put_geo(&mut e.w, &word.geo);
            put_segments(e, &word.chunks)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>, spill: &SpillDir) -> Result<Self, Error> {
        let n = r.len(4).map_err(decode_error)?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let log_size = r.u8().map_err(decode_error)? as usize;
            let geo = get_geo(r)?;
            let chunks = get_segments(r, spill)?;
            out.insert(log_size, DiskWord { geo, chunks });
        }
        Ok(DeepResults(out))
    }
}
