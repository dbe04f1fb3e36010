//! The image table: opens and closes the memory argument for every register and every word of
//! the program's memory (the pages its PT_LOAD segments overlap, as the executor maps them).
//!
//! # Columns
//! Preprocessed: `addr` (2^40 + r for register r; a 4-aligned byte address for a word of a
//! writable page; [`READ_ONLY_TAG`] + the byte address for a word of a read-only page), `init`
//! (0 for registers; the word of the ELF image, zero-filled past the file bytes). Padding rows
//! have `addr = 2^41`, an address no access can form, so using them changes nothing.
//!
//! **Permissions.** A read-only word's tokens carry the tagged address, which only a load (or
//! the read of a `write` buffer) forms, by adding the tag through a boolean `ro` column that
//! stores and `read` buffers must leave 0 (see [`super::memory`], [`super::io`]). A store's
//! address is below 2^33 and so never the tagged one: nothing can change a read-only word, and
//! its final value is its initial one.
//! Main: `used` (1 when the execution touched the address), `final_val`, `final_ts` (its value and
//! timestamp after the last access).
//!
//! # Constraints
//! - `used` is boolean: each address has at most one initial token, hence one linear history
//!   (given the bounds on counts and timestamps in [`super`], "Bounds").
//!
//! # Bus interactions
//! - MEMORY: send `(addr, init, 0)` and receive `(addr, final_val, final_ts)`, both with
//!   multiplicity `used`.

use std::collections::HashMap;
use std::sync::Arc;

use stark::RowMajorMatrix;
use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{READ_ONLY_TAG, REG_BASE, bus, c, f};
use crate::memory::PAGE_BYTES;
use crate::program::Program;

pub const ADDR: usize = 0;
pub const INIT: usize = 1;
pub const PREP_WIDTH: usize = 2;
pub const USED: usize = 0;
pub const FINAL_VAL: usize = 1;
pub const FINAL_TS: usize = 2;
pub const MAIN_WIDTH: usize = 3;
/// Address of padding rows: above every register and byte address.
pub const PADDING_ADDR: u64 = 1 << 41;

/// Rows of the image: the 32 registers, then every word of every mapped page, in address order.
#[derive(Clone, Debug)]
pub struct ImageLayout {
    /// Initial value of each row (registers first).
    pub init: Vec<u32>,
    /// Byte address of each memory row (index = row - 32).
    pub word_addr: Vec<u32>,
    /// Whether each memory row's page is writable (index = row - 32).
    writable: Vec<bool>,
    /// First row of each mapped page.
    page_row: HashMap<u32, usize>,
}

impl ImageLayout {
    pub fn new(program: &Program) -> ImageLayout {
        let pages = program.pages();
        let words_per_page = (PAGE_BYTES / 4) as usize;
        let mut init = vec![0u32; 32 + pages.len() * words_per_page];
        let mut word_addr = Vec::with_capacity(pages.len() * words_per_page);
        let mut writable = Vec::with_capacity(pages.len() * words_per_page);
        let mut page_row = HashMap::new();
        for (k, page) in pages.iter().enumerate() {
            page_row.insert(page.number, 32 + k * words_per_page);
            word_addr.extend((0..words_per_page as u32).map(|w| page.number * PAGE_BYTES + 4 * w));
            writable.extend(std::iter::repeat_n(page.writable, words_per_page));
        }
        for seg in &program.segments {
            for (i, &byte) in seg.data.iter().enumerate() {
                let addr = seg.vaddr + i as u32;
                let row = page_row[&(addr / PAGE_BYTES)] + ((addr % PAGE_BYTES) / 4) as usize;
                init[row] |= (byte as u32) << (8 * (addr % 4));
            }
        }
        ImageLayout {
            init,
            word_addr,
            writable,
            page_row,
        }
    }

    /// Number of rows in use (registers and words).
    pub fn len(&self) -> usize {
        self.init.len()
    }

    pub fn is_empty(&self) -> bool {
        self.init.is_empty()
    }

    /// Row of the word holding byte address `addr`, if mapped.
    pub fn row_of(&self, addr: u32) -> Option<usize> {
        self.page_row
            .get(&(addr / PAGE_BYTES))
            .map(|base| base + ((addr % PAGE_BYTES) / 4) as usize)
    }

    /// Whether a row is a word of a read-only page.
    pub fn is_read_only(&self, row: usize) -> bool {
        row >= 32 && !self.writable[row - 32]
    }

    /// The memory-argument address of a row (tagged for read-only words).
    pub fn address(&self, row: usize) -> u64 {
        if row < 32 {
            REG_BASE + row as u64
        } else {
            self.word_addr[row - 32] as u64 + self.is_read_only(row) as u64 * READ_ONLY_TAG
        }
    }
}

/// The image table of one program.
pub struct ImageTable {
    layout: Arc<ImageLayout>,
}

impl ImageTable {
    pub fn new(layout: Arc<ImageLayout>) -> Self {
        ImageTable { layout }
    }

    pub fn height(&self) -> usize {
        self.layout.len().next_power_of_two().max(2)
    }
}

impl Air for ImageTable {
    fn name(&self) -> &str {
        "image"
    }
    fn main_width(&self) -> usize {
        MAIN_WIDTH
    }
    fn preprocessed_width(&self) -> usize {
        PREP_WIDTH
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let mut values = Vec::with_capacity(height * PREP_WIDTH);
        for row in 0..height {
            if row < self.layout.len() {
                values.push(f(self.layout.address(row)));
                values.push(f(self.layout.init[row] as u64));
            } else {
                values.push(f(PADDING_ADDR));
                values.push(f(0));
            }
        }
        Some(RowMajorMatrix::new(values, PREP_WIDTH))
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (addr, init) = (b.prep(ADDR), b.prep(INIT));
        let used = b.main(USED);
        b.assert_zero(used.bool_check());
        b.send(bus::MEMORY, &[addr.clone(), init, c(0)], used.clone());
        let (final_val, final_ts) = (b.main(FINAL_VAL), b.main(FINAL_TS));
        b.receive(bus::MEMORY, &[addr, final_val, final_ts], used);
    }
}
