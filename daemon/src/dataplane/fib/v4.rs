//! The IPv4 lookup table: DIR-24-8 split into 256 copy-on-write pages.
//!
//! Owns the table layout and the in-place update rules; the set of prefixes and the choice
//! of what to restore on removal belong to the writer in `mod.rs`.
//!
//! Page `a >> 24` holds a 65536-entry direct array indexed by the next 16 bits (so the
//! pages together are the classic 2^24-entry first level) and the 256-entry chunks for
//! the /24s that contain a longer prefix. A lookup is one load from the (always cached)
//! page array, one from the direct array and, for the rare /25-/32, one from a chunk.
//! Pages are shared between snapshots by `Arc`; a batch copies only the pages it touches.

use std::sync::Arc;

use super::nexthop::{entry_len, overrides, Entry};

/// Set in a direct entry that refers to a chunk; the low bits are the chunk's index in
/// its page. Route entries never have it: their length field is at most 32.
const CHUNK: u32 = 1 << 31;

const DIRECT: usize = 1 << 16;

fn boxed_array<T: Copy, const N: usize>(fill: T) -> Box<[T; N]> {
    match vec![fill; N].into_boxed_slice().try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("a vec of N elements converts to [T; N]"),
    }
}

#[derive(Debug)]
pub(super) struct Page {
    direct: Box<[Entry; DIRECT]>,
    chunks: Vec<[Entry; 256]>,
    /// Chunk indices that no direct entry refers to, for reuse by this page's next
    /// long prefix. Only the writer's private copy of a page is ever modified, so reuse
    /// cannot confuse a reader of an older snapshot.
    free: Vec<u32>,
}

impl Clone for Page {
    fn clone(&self) -> Self {
        // Copy on the heap: a derived clone of a 256 KiB array may go through the stack.
        let mut direct: Box<[Entry; DIRECT]> = boxed_array(0);
        direct.copy_from_slice(&self.direct[..]);
        Page {
            direct,
            chunks: self.chunks.clone(),
            free: self.free.clone(),
        }
    }
}

impl Page {
    fn empty() -> Page {
        Page {
            direct: boxed_array(0),
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
    pages: [Arc<Page>; 256],
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
        let page = &*self.pages[(a >> 24) as usize];
        let d = page.direct[((a >> 8) & 0xffff) as usize];
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
                for d in &mut direct[range] {
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
            let page = Arc::make_mut(&mut self.pages[(addr >> 24) as usize]);
            let j = ((addr >> 8) & 0xffff) as usize;
            let mut d = page.direct[j];
            if d & CHUNK == 0 {
                d = CHUNK | page.alloc_chunk(d);
                page.direct[j] = d;
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
                for d in &mut direct[range] {
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
            let page = Arc::make_mut(&mut self.pages[(addr >> 24) as usize]);
            let j = ((addr >> 8) & 0xffff) as usize;
            let d = page.direct[j];
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
                page.direct[j] = c[0];
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
            let page_no = i >> 16;
            let stop = end.min((page_no + 1) << 16);
            f(
                Arc::make_mut(&mut self.pages[page_no]),
                (i & 0xffff)..((stop - 1) & 0xffff) + 1,
            );
            i = stop;
        }
    }
}
