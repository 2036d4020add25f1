//! The completeness rules of offset paging (a start offset, a page size and a declared
//! total, as Plex's `X-Plex-Container-Start`/`totalSize` and Jellyfin's
//! `StartIndex`/`TotalRecordCount`), so a bad read never looks like "the user deleted
//! everything". Pure bookkeeping: the provider fetches, [`OffsetPages`] decides.
//!
//! - reads stop at the declared total, on an empty page, on a short page when no total
//!   is declared, on a repeated page, and after a runaway number of pages;
//! - a total that changes while reading, an empty page before the total, a short page
//!   before the total, a repeated page, runaway paging, or a final count that disagrees
//!   with the total makes the read partial (the rows read so far are kept);
//! - a row seen twice is kept once.
//!
//! A failed page is the provider's to judge (an error on the first page, partial after
//! it: [`OffsetPages::failed`]).
//!
//! Superseded by [`crate::page::Pager`], which holds these rules and owns the loop; kept
//! only until the last provider using it (Plex) moves to the pager.

use std::collections::HashSet;
use std::hash::Hash;

/// One offset-paged read in progress.
#[derive(Debug)]
pub struct OffsetPages<K> {
    what: String,
    total_name: &'static str,
    page_size: usize,
    start: usize,
    pages: usize,
    total: Option<usize>,
    last_sig: Option<(K, K)>,
    seen: HashSet<K>,
    kept: usize,
    partial: Vec<String>,
}

impl<K: Eq + Hash + Clone> OffsetPages<K> {
    /// `what` names the list in reasons ("watch history"); `total_name` is the
    /// service's name for the declared total (`totalSize`).
    pub fn new(what: impl Into<String>, total_name: &'static str, page_size: usize) -> Self {
        OffsetPages {
            what: what.into(),
            total_name,
            page_size: page_size.max(1),
            start: 0,
            pages: 0,
            total: None,
            last_sig: None,
            seen: HashSet::new(),
            kept: 0,
            partial: Vec::new(),
        }
    }

    /// The offset of the next page, or `None` when paging has run away (more pages
    /// than the declared total allows: the read is then partial).
    pub fn next_start(&mut self) -> Option<usize> {
        self.pages += 1;
        if let Some(t) = self.total
            && self.pages > t / self.page_size + 10
        {
            self.partial.push(format!(
                "{}: stopped after {} pages (runaway paging)",
                self.what, self.pages
            ));
            return None;
        }
        Some(self.start)
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Whether the page being read is the first (a failure there is an error, not a
    /// partial read).
    pub fn first_page(&self) -> bool {
        self.pages <= 1
    }

    /// The page at the current offset failed after the first: the read is partial.
    pub fn failed(&mut self, why: impl std::fmt::Display) {
        self.partial.push(format!(
            "{}: the page at offset {} failed: {why}",
            self.what, self.start
        ));
    }

    /// Another reason the read is partial (a malformed later page).
    pub fn mark_partial(&mut self, why: impl Into<String>) {
        self.partial.push(why.into());
    }

    /// Takes one page: its rows (kept in `out` unless seen before) and the total the
    /// service declared with it. Whether to read another page.
    pub fn take<T>(
        &mut self,
        rows: Vec<T>,
        declared: Option<usize>,
        id: impl Fn(&T) -> K,
        out: &mut Vec<T>,
    ) -> bool {
        let what = &self.what;
        let total_name = self.total_name;
        if let Some(d) = declared {
            if let Some(t) = self.total.filter(|t| *t != d) {
                self.partial.push(format!(
                    "{what}: {total_name} changed from {t} to {d} while reading"
                ));
            }
            self.total = Some(d);
        }
        let n = rows.len();
        if n == 0 {
            if let Some(t) = self.total.filter(|t| self.kept < *t) {
                self.partial.push(format!(
                    "{what}: empty page at offset {} before {total_name} {t}",
                    self.start
                ));
            }
            return false;
        }
        let sig = (id(&rows[0]), id(&rows[n - 1]));
        if self.last_sig.as_ref() == Some(&sig) {
            self.partial.push(format!(
                "{what}: the page at offset {} repeats the previous one",
                self.start
            ));
            return false;
        }
        self.last_sig = Some(sig);
        for row in rows {
            if self.seen.insert(id(&row)) {
                out.push(row);
                self.kept += 1;
            }
        }
        self.start += n;
        let size = self.page_size;
        match self.total {
            Some(t) if self.start >= t => false,
            Some(t) => {
                if n < size {
                    self.partial.push(format!(
                        "{what}: short page at offset {}: {n} of {size} rows with {t} declared",
                        self.start - n
                    ));
                }
                true
            }
            None => n >= size,
        }
    }

    /// Why the read is incomplete (empty: complete). Checks the count kept against the
    /// last declared total.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(t) = self.total.filter(|t| *t != self.kept) {
            self.partial.push(format!(
                "{}: read {} rows but {} is {t}",
                self.what, self.kept, self.total_name
            ));
        }
        self.partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One page: its rows and the total declared with it.
    type Page = (Vec<u32>, Option<usize>);

    /// Pages `pages` of numbered rows through the tracker; the kept rows and reasons.
    fn read(pages: &[Page], size: usize) -> (Vec<u32>, Vec<String>) {
        let mut p = OffsetPages::new("list", "totalSize", size);
        let mut out = Vec::new();
        for (rows, total) in pages {
            if p.next_start().is_none() || !p.take(rows.clone(), *total, |r| *r, &mut out) {
                break;
            }
        }
        (out, p.finish())
    }

    #[test]
    fn a_whole_list_is_complete() {
        let (rows, partial) = read(&[(vec![1, 2], Some(3)), (vec![3], Some(3))], 2);
        assert_eq!(rows, vec![1, 2, 3]);
        assert!(partial.is_empty(), "{partial:?}");
        // Without a total, a short page is the end.
        let (rows, partial) = read(&[(vec![1, 2], None), (vec![3], None)], 2);
        assert_eq!(rows, vec![1, 2, 3]);
        assert!(partial.is_empty());
    }

    #[test]
    fn every_sign_of_a_bad_read_makes_it_partial() {
        let cases: [(&[Page], &str); 5] = [
            (&[(vec![1, 2], Some(5)), (vec![], Some(5))], "empty page"),
            (&[(vec![1, 2], Some(6)), (vec![3], Some(6))], "short page"),
            (&[(vec![1, 2], Some(6)), (vec![1, 2], Some(6))], "repeats"),
            (&[(vec![1, 2], Some(4)), (vec![3, 4], Some(5))], "changed"),
            (&[(vec![1, 1], Some(2))], "read 1 rows but totalSize is 2"),
        ];
        for (pages, want) in cases {
            let (_, partial) = read(pages, 2);
            assert!(
                partial.iter().any(|p| p.contains(want)),
                "{want}: {partial:?}"
            );
        }
    }
}
