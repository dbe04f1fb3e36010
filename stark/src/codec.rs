//! The binary encoding of [`crate::proof`]: little-endian integers, canonical field elements,
//! u32-counted vectors, 0/1 option flags. A [`Reader`] checks every byte it takes and caps every
//! count by the bytes left, so forged input fails with a [`DecodeError`], never a panic or a
//! large allocation. Prover-side files (the resume checkpoints) use the same encoding.

use crate::field::{EF, F, canonical, coords, ext, from_canonical};
use crate::merkle::Digest;
use crate::proof::{DecodeError, TreeOpening};

/// Appends values in the format above.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("vector longer than u32::MAX"));
    }
    pub fn base(&mut self, v: F) {
        self.u64(canonical(v));
    }
    pub fn ext(&mut self, v: EF) {
        coords(v).into_iter().for_each(|c| self.base(c));
    }
    pub fn digest(&mut self, d: &Digest) {
        self.0.extend_from_slice(d);
    }
    pub fn exts(&mut self, v: &[EF]) {
        self.len(v.len());
        v.iter().for_each(|x| self.ext(*x));
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.extend_from_slice(v);
    }
    pub fn digests(&mut self, v: &[Digest]) {
        self.len(v.len());
        v.iter().for_each(|x| self.digest(x));
    }
    pub fn tree(&mut self, t: &TreeOpening) {
        self.len(t.rows.len());
        for r in &t.rows {
            self.len(r.len());
            r.iter().for_each(|x| self.base(*x));
        }
        self.digests(&t.siblings);
    }
    pub fn opt_tree(&mut self, t: &Option<TreeOpening>) {
        match t {
            None => self.u8(0),
            Some(t) => {
                self.u8(1);
                self.tree(t);
            }
        }
    }
}

/// Reads values in the format above; every read checks what it takes.
pub struct Reader<'a> {
    pub b: &'a [u8],
}

pub type R<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.b.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> R<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    pub fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A count whose items take at least `min_item` bytes each: capped by the bytes left, so a
    /// forged count can never trigger a large allocation.
    pub fn len(&mut self, min_item: usize) -> R<usize> {
        let n = self.u32()? as u64;
        if n.saturating_mul(min_item.max(1) as u64) > self.b.len() as u64 {
            return Err(DecodeError::BadLength(n));
        }
        Ok(n as usize)
    }
    pub fn flag(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            f => Err(DecodeError::BadFlag(f)),
        }
    }
    pub fn base(&mut self) -> R<F> {
        from_canonical(self.u64()?).ok_or(DecodeError::NonCanonical)
    }
    pub fn ext(&mut self) -> R<EF> {
        Ok(ext(self.base()?, self.base()?))
    }
    pub fn digest(&mut self) -> R<Digest> {
        Ok(self.take(32)?.try_into().unwrap())
    }
    pub fn vec<T>(&mut self, min_item: usize, mut f: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.len(min_item)?;
        (0..n).map(|_| f(self)).collect()
    }
    pub fn exts(&mut self) -> R<Vec<EF>> {
        self.vec(16, |r| r.ext())
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    /// The end: trailing bytes are an error.
    pub fn finish(&self) -> R<()> {
        match self.b.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
    pub fn digests(&mut self) -> R<Vec<Digest>> {
        self.vec(32, |r| r.digest())
    }
    pub fn tree(&mut self) -> R<TreeOpening> {
        Ok(TreeOpening {
            rows: self.vec(4, |r| r.vec(8, |r| r.base()))?,
            siblings: self.digests()?,
        })
    }
    pub fn opt_tree(&mut self) -> R<Option<TreeOpening>> {
        Ok(if self.flag()? {
            Some(self.tree()?)
        } else {
            None
        })
    }
}
