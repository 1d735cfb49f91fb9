//! The IPv4 lookup table: DIR-24-8 split into 32 copy-on-write pages of 2 MiB.
//!
//! Owns the table layout and the in-place update rules; the set of prefixes and the choice
//! of what to restore on removal belong to the writer in `mod.rs`.
//!
//! Page `a >> 27` holds a 2^19-entry direct array indexed by the next 19 bits (so the
//! pages together are the classic 2^24-entry first level) and the 256-entry chunks for
//! the /24s that contain a longer prefix. A lookup is one load from the (always cached)
//! page array, one from the direct array and, for the rare /25-/32, one from a chunk.
//! Pages are shared between snapshots by `Arc`; a batch copies only the pages it touches.
//!
//! A direct array is exactly one 2 MiB huge page (aligned, and advised as such on Linux):
//! random destinations touch the whole 64 MiB first level, and with 4 KiB pages nearly
//! every lookup would also miss the TLB.

use std::mem::MaybeUninit;
use std::sync::Arc;

use super::nexthop::{entry_len, overrides, Entry};

/// Set in a direct entry that refers to a chunk; the low bits are the chunk's index in
/// its page. Route entries never have it: their length field is at most 32.
const CHUNK: u32 = 1 << 31;

/// Bits of the 24-bit first-level index taken by the direct array of one page.
const DIRECT_BITS: u32 = 19;
const DIRECT: usize = 1 << DIRECT_BITS;
const DIRECT_MASK: usize = DIRECT - 1;
const PAGES: usize = 1 << (24 - DIRECT_BITS);
const HUGE_PAGE: usize = 2 << 20;

/// One page's share of the first level: 2 MiB, aligned to a huge page.
#[repr(C, align(2097152))]
struct Direct([Entry; DIRECT]);

const _: () = assert!(std::mem::size_of::<Direct>() == HUGE_PAGE);

impl Direct {
    /// A heap copy of `from`, or all zeros, built in place (never on the stack) after
    /// asking for huge pages, so the first touch already faults them in as such.
    fn alloc(from: Option<&Direct>) -> Box<Direct> {
        let mut b: Box<MaybeUninit<Direct>> = Box::new_uninit();
        let p = b.as_mut_ptr();
        #[cfg(target_os = "linux")]
        // SAFETY: `p` is the start of a live, 2 MiB-aligned allocation of 2 MiB that we
        // own; madvise only changes how the kernel backs it. A failure is harmless.
        unsafe {
            libc::madvise(p.cast(), HUGE_PAGE, libc::MADV_HUGEPAGE);
        }
        // SAFETY: `p` is valid for writes of one `Direct`; an all-zero `[u32; N]` and a
        // copy of an initialized one are both valid values, so the box is initialized.
        unsafe {
            match from {
                Some(src) => std::ptr::copy_nonoverlapping(src, p, 1),
                None => std::ptr::write_bytes(p, 0, 1),
            }
            b.assume_init()
        }
    }
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct(..)")
    }
}

#[derive(Debug)]
pub(super) struct Page {
    direct: Box<Direct>,
    chunks: Vec<[Entry; 256]>,
    /// Chunk indices that no direct entry refers to, for reuse by this page's next
    /// long prefix. Only the writer's private copy of a page is ever modified, so reuse
    /// cannot confuse a reader of an older snapshot.
    free: Vec<u32>,
}

impl Clone for Page {
    fn clone(&self) -> Self {
        Page {
            direct: Direct::alloc(Some(&self.direct)),
            chunks: self.chunks.clone(),
            free: self.free.clone(),
        }
    }
}

impl Page {
    fn empty() -> Page {
        Page {
            direct: Direct::alloc(None),
            chunks: Vec::new(),
            free: Vec::new(),
        }
    }

    fn alloc_chunk(&mut self, fill: Entry) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.chunks[i as usize] = [fill; 256];
                i
            }
            None => {
                self.chunks.push([fill; 256]);
                (self.chunks.len() - 1) as u32
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct V4Table {
    pages: [Arc<Page>; PAGES],
}

impl V4Table {
    pub(super) fn new() -> V4Table {
        // All pages start as one shared empty page; the first write to each copies it.
        let empty = Arc::new(Page::empty());
        V4Table {
            pages: std::array::from_fn(|_| empty.clone()),
        }
    }

    /// The entry of the longest prefix containing `a`, or 0.
    #[inline(always)]
    pub(super) fn lookup(&self, a: u32) -> Entry {
        let page = &*self.pages[(a >> (8 + DIRECT_BITS)) as usize];
        let d = page.direct.0[(a as usize >> 8) & DIRECT_MASK];
        if d & CHUNK == 0 {
            d
        } else {
            match page.chunks.get((d & !CHUNK) as usize) {
                Some(c) => c[(a & 0xff) as usize],
                None => 0,
            }
        }
    }

    /// Installs `e` (a route for `addr/len`, host bits clear) wherever it is now the
    /// longest match.
    pub(super) fn insert(&mut self, addr: u32, len: u8, e: Entry) {
        if len <= 24 {
            self.for_range(addr, len, |page, range| {
                let Page { direct, chunks, .. } = page;
                for d in &mut direct.0[range] {
                    if *d & CHUNK != 0 {
                        if let Some(c) = chunks.get_mut((*d & !CHUNK) as usize) {
                            for s in c.iter_mut() {
                                if overrides(*s, len) {
                                    *s = e;
                                }
                            }
                        }
                    } else if overrides(*d, len) {
                        *d = e;
                    }
                }
            });
        } else {
            let page = Arc::make_mut(&mut self.pages[(addr >> (8 + DIRECT_BITS)) as usize]);
            let j = (addr as usize >> 8) & DIRECT_MASK;
            let mut d = page.direct.0[j];
            if d & CHUNK == 0 {
                d = CHUNK | page.alloc_chunk(d);
                page.direct.0[j] = d;
            }
            if let Some(c) = page.chunks.get_mut((d & !CHUNK) as usize) {
                let start = (addr & 0xff) as usize;
                let n = 1usize << (32 - len);
                for s in &mut c[start..start + n] {
                    if overrides(*s, len) {
                        *s = e;
                    }
                }
            }
        }
    }

    /// Removes the route for `addr/len`, putting `repl` (the entry of the longest shorter
    /// prefix covering it, or 0) where it was the longest match.
    pub(super) fn remove(&mut self, addr: u32, len: u8, repl: Entry) {
        let was = |s: Entry| s != 0 && entry_len(s) == len;
        if len <= 24 {
            self.for_range(addr, len, |page, range| {
                let Page { direct, chunks, .. } = page;
                for d in &mut direct.0[range] {
                    if *d & CHUNK != 0 {
                        if let Some(c) = chunks.get_mut((*d & !CHUNK) as usize) {
                            for s in c.iter_mut() {
                                if was(*s) {
                                    *s = repl;
                                }
                            }
                        }
                    } else if was(*d) {
                        *d = repl;
                    }
                }
            });
        } else {
            let page = Arc::make_mut(&mut self.pages[(addr >> (8 + DIRECT_BITS)) as usize]);
            let j = (addr as usize >> 8) & DIRECT_MASK;
            let d = page.direct.0[j];
            if d & CHUNK == 0 {
                return;
            }
            let ci = d & !CHUNK;
            let Some(c) = page.chunks.get_mut(ci as usize) else {
                return;
            };
            let start = (addr & 0xff) as usize;
            let n = 1usize << (32 - len);
            for s in &mut c[start..start + n] {
                if was(*s) {
                    *s = repl;
                }
            }
            // No prefix longer than /24 left in this /24: every slot now holds the same
            // covering route, so the direct entry can hold it and the chunk is freed.
            if c.iter().all(|&s| s == 0 || entry_len(s) <= 24) {
                page.direct.0[j] = c[0];
                page.free.push(ci);
            }
        }
    }

    /// Calls `f(page, direct_range)` for every page holding direct entries covered by
    /// `addr/len` (`len <= 24`), copying each touched page once.
    fn for_range(
        &mut self,
        addr: u32,
        len: u8,
        mut f: impl FnMut(&mut Page, std::ops::Range<usize>),
    ) {
        let first = (addr >> 8) as usize; // index in the 2^24 first level
        let end = first + (1usize << (24 - len));
        let mut i = first;
        while i < end {
            let page_no = i >> DIRECT_BITS;
            let stop = end.min((page_no + 1) << DIRECT_BITS);
            f(
                Arc::make_mut(&mut self.pages[page_no]),
                (i & DIRECT_MASK)..((stop - 1) & DIRECT_MASK) + 1,
            );
            i = stop;
        }
    }
}
