//! Byte-addressed, sparse, paged memory for the 32-bit address space.
//!
//! Only the pages that the program's PT_LOAD segments overlap exist, as under Linux (and
//! qemu-riscv32), where touching any other address is a segmentation fault; so the memory a proof
//! must account for is bounded by the ELF, never by the run. A page is writable when a segment
//! with PF_W overlaps it ([`crate::Program::pages`]); storing into any other page is a
//! segmentation fault too. Each page
//! remembers the *epoch* (chunk number) in which it was last touched, which is what makes cheap
//! chunk checkpoints possible: while tracing, the first access of a chunk to a page copies the page
//! as it was when the chunk began, and that set of copies is all a re-execution of the chunk needs.

use crate::program::PageInfo;

/// Bytes per page.
pub const PAGE_BYTES: u32 = 4096;
/// 32-bit words per page.
pub const PAGE_WORDS: usize = (PAGE_BYTES / 4) as usize;
const PAGE_SHIFT: u32 = 12;
const PAGE_COUNT: usize = 1 << (32 - PAGE_SHIFT);

/// Contents of one page, as little-endian words.
pub type PageWords = [u32; PAGE_WORDS];

struct Page {
    words: PageWords,
    writable: bool,
    /// The capture epoch in which this page was last snapshotted (0: never).
    epoch: u32,
}

/// An access the memory refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryFault {
    /// A page the memory does not hold: outside the program's segments, or (for a machine
    /// resumed from a checkpoint) outside what the checkpoint captured.
    Missing { addr: u32 },
    /// A store into a page no writable segment overlaps.
    ReadOnly { addr: u32 },
}

/// The machine's memory.
pub struct Memory {
    /// For each page number, 1 + its index in `pages`, or 0 when absent. Plain integers, so that
    /// creating and dropping a machine is O(pages used), not O(address space).
    table: Vec<u32>,
    pages: Vec<Page>,
    /// Current capture epoch; 0 disables capture.
    epoch: u32,
    /// Pages first touched in the current epoch, as they were when it began.
    captured: Vec<(u32, Box<PageWords>)>,
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new()
    }
}

impl Memory {
    /// Memory with no pages: map some before use.
    pub fn new() -> Memory {
        // A zeroed allocation: the OS maps the 4 MiB table lazily.
        Memory {
            table: vec![0; PAGE_COUNT],
            pages: Vec::new(),
            epoch: 0,
            captured: Vec::new(),
        }
    }

    /// Maps a zero-filled page.
    pub fn map(&mut self, page: PageInfo) {
        self.insert(page, [0; PAGE_WORDS]);
    }

    fn insert(&mut self, page: PageInfo, words: PageWords) {
        debug_assert_eq!(self.table[page.number as usize], 0, "page mapped twice");
        self.pages.push(Page {
            words,
            writable: page.writable,
            epoch: 0,
        });
        self.table[page.number as usize] = self.pages.len() as u32;
    }

    /// Whether the page holding `addr` is mapped.
    pub fn is_mapped(&self, addr: u32) -> bool {
        self.table[(addr >> PAGE_SHIFT) as usize] != 0
    }

    /// Memory holding exactly the given pages, with the permissions `layout` (the program's
    /// [`crate::Program::pages`]) gives them; any other page is off limits.
    pub fn from_pages<'a>(
        layout: &[PageInfo],
        pages: impl IntoIterator<Item = (u32, &'a PageWords)>,
    ) -> Memory {
        let mut mem = Memory::new();
        for (number, words) in pages {
            let writable = layout
                .binary_search_by_key(&number, |p| p.number)
                .is_ok_and(|i| layout[i].writable);
            mem.insert(PageInfo { number, writable }, *words);
        }
        mem
    }

    /// Number of pages currently allocated.
    pub fn allocated_pages(&self) -> usize {
        self.pages.len()
    }

    /// Starts a new capture epoch: from now on, the first access to each page copies it.
    pub(crate) fn begin_capture(&mut self, epoch: u32) {
        debug_assert!(epoch != 0);
        self.epoch = epoch;
        self.captured.clear();
    }

    /// Takes the pages captured since [`Memory::begin_capture`], sorted by page number.
    pub(crate) fn take_captured(&mut self, into: &mut Vec<(u32, Box<PageWords>)>) {
        into.clear();
        into.append(&mut self.captured);
        into.sort_unstable_by_key(|(n, _)| *n);
    }

    /// The page holding `addr`; with `CAPTURE`, snapshotted on first touch in the current epoch.
    #[inline(always)]
    fn page_mut<const CAPTURE: bool>(&mut self, addr: u32) -> Result<&mut Page, MemoryFault> {
        let number = (addr >> PAGE_SHIFT) as usize;
        let slot = self.table[number];
        if slot == 0 {
            return Err(MemoryFault::Missing { addr });
        }
        let page = &mut self.pages[slot as usize - 1];
        if CAPTURE && page.epoch != self.epoch {
            page.epoch = self.epoch;
            self.captured.push((number as u32, Box::new(page.words)));
        }
        Ok(page)
    }

    /// Reads the aligned word containing `addr`.
    #[inline(always)]
    pub fn load_word<const CAPTURE: bool>(&mut self, addr: u32) -> Result<u32, MemoryFault> {
        let index = ((addr >> 2) as usize) & (PAGE_WORDS - 1);
        Ok(self.page_mut::<CAPTURE>(addr)?.words[index])
    }

    /// Replaces the aligned word containing `addr`, returning the old word; refused (and nothing
    /// changed) when its page is not writable.
    #[inline(always)]
    pub fn store_word<const CAPTURE: bool>(
        &mut self,
        addr: u32,
        value: u32,
    ) -> Result<u32, MemoryFault> {
        let index = ((addr >> 2) as usize) & (PAGE_WORDS - 1);
        let page = self.page_mut::<CAPTURE>(addr)?;
        if !page.writable {
            return Err(MemoryFault::ReadOnly { addr });
        }
        Ok(std::mem::replace(&mut page.words[index], value))
    }

    /// Reads one byte (for system calls).
    pub fn load_byte<const CAPTURE: bool>(&mut self, addr: u32) -> Result<u8, MemoryFault> {
        Ok((self.load_word::<CAPTURE>(addr)? >> ((addr & 3) * 8)) as u8)
    }

    /// Writes one byte (for system calls).
    pub fn store_byte<const CAPTURE: bool>(
        &mut self,
        addr: u32,
        value: u8,
    ) -> Result<(), MemoryFault> {
        let shift = (addr & 3) * 8;
        let old = self.load_word::<CAPTURE>(addr)?;
        let new = (old & !(0xff << shift)) | ((value as u32) << shift);
        self.store_word::<CAPTURE>(addr, new)?;
        Ok(())
    }

    /// Copies bytes into mapped memory, read-only pages included, without capture (loading the
    /// program image).
    pub fn write_bytes(&mut self, addr: u32, bytes: &[u8]) -> Result<(), MemoryFault> {
        for (k, &b) in bytes.iter().enumerate() {
            let a = addr.wrapping_add(k as u32);
            let shift = (a & 3) * 8;
            let word =
                &mut self.page_mut::<false>(a)?.words[((a >> 2) as usize) & (PAGE_WORDS - 1)];
            *word = (*word & !(0xff << shift)) | ((b as u32) << shift);
        }
        Ok(())
    }

    /// Reads bytes without capture (inspection, tests); unmapped bytes read as zero.
    pub fn read_bytes(&self, addr: u32, len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|k| {
                let a = addr.wrapping_add(k);
                match self.table[(a >> PAGE_SHIFT) as usize] {
                    0 => 0,
                    slot => {
                        let word = self.pages[slot as usize - 1].words
                            [((a >> 2) as usize) & (PAGE_WORDS - 1)];
                        (word >> ((a & 3) * 8)) as u8
                    }
                }
            })
            .collect()
    }
}
