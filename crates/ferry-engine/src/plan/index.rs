//! Fast identity matching for the planner.
//!
//! Same semantics as [`ferry_core::identity::AliasIndex`] (exact key, then strong tokens,
//! then alias tokens; the first item to claim a token keeps it), built for a million items
//! per side: tokens are hashed straight from the ids without building strings, the hash
//! includes the media type (so a movie and a show with the same tmdb number never shadow
//! each other), and each snapshot's tokens are computed once and reused for every lookup.
//!
//! A 64-bit hash collision could make two different titles look like one. That makes an
//! item look *present* (it is then neither added nor taken as deleted), so a collision can
//! cost a missed add, never a removal: removals need the evidence side to *lack* the title.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use ferry_core::identity::split_event_key;
use ferry_core::{Entry, IdKind, Item, MediaType, Snapshot};

/// A hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type U64Map<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// An open-addressing table from token hash to unit, keeping the first claimant. Each
/// slot is one `u64`: the hash's top bits as a fingerprint, the unit + 1 in the low bits.
/// Linear probing at a load of at most one half: a lookup is usually one cache line. A
/// fingerprint match can in principle be a false one (about 2⁻⁴⁰ per probe); callers that
/// act destructively on a match confirm it with [`Prepared::shares_token`].
#[derive(Debug, Default)]
pub(crate) struct TokenTable {
    slots: Vec<u64>,
    mask: usize,
    idx_bits: u32,
}

impl TokenTable {
    fn with_capacity(tokens: usize, units: usize) -> Self {
        let need = usize::BITS - (units + 1).leading_zeros();
        let idx_bits = need.max(24);
        let size = (tokens.max(8) * 2).next_power_of_two();
        TokenTable {
            slots: vec![0; size],
            mask: size - 1,
            idx_bits,
        }
    }

    /// Builds a table from `(hash, unit)` claims in priority order (the first claim of a
    /// hash wins). The claims are first bucketed by table region (a stable counting
    /// sort), so the inserts walk the table region by region instead of at random: the
    /// build is bound by sequential memory traffic, not by cache misses.
    fn from_claims(claims: &[(u64, u32)], units: usize) -> Self {
        let mut t = TokenTable::with_capacity(claims.len(), units);
        let bits = t.slots.len().trailing_zeros();
        let k = bits.saturating_sub(11).min(16);
        let shift = bits - k;
        let buckets = 1usize << k;
        let mut start = vec![0usize; buckets + 1];
        for (h, _) in claims {
            start[((*h as usize & t.mask) >> shift) + 1] += 1;
        }
        for b in 0..buckets {
            start[b + 1] += start[b];
        }
        let mut ordered = vec![(0u64, 0u32); claims.len()];
        for &(h, u) in claims {
            let b = (h as usize & t.mask) >> shift;
            ordered[start[b]] = (h, u);
            start[b] += 1;
        }
        for (h, u) in ordered {
            t.insert_first(h, u);
        }
        t
    }

    #[inline]
    fn insert_first(&mut self, h: u64, unit: u32) {
        let fp = h >> self.idx_bits;
        let mut pos = h as usize & self.mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                self.slots[pos] = (fp << self.idx_bits) | (u64::from(unit) + 1);
                return;
            }
            if s >> self.idx_bits == fp {
                return;
            }
            pos = (pos + 1) & self.mask;
        }
    }

    #[inline]
    fn get(&self, h: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let fp = h >> self.idx_bits;
        let low = (1u64 << self.idx_bits) - 1;
        let mut pos = h as usize & self.mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return None;
            }
            if s >> self.idx_bits == fp {
                return Some(((s & low) - 1) as u32);
            }
            pos = (pos + 1) & self.mask;
        }
    }
}

/// A small streaming hash (multiply-rotate over 8-byte words, murmur3 finalizer).
#[derive(Clone, Copy)]
struct H(u64);

impl H {
    fn new(seed: u64) -> Self {
        H(seed.wrapping_mul(K) ^ 0x51_7CC1_B727_220A)
    }
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(K);
    }
    #[inline]
    fn bytes(&mut self, b: &[u8], lower: bool) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            if lower {
                a.make_ascii_lowercase();
            }
            self.word(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        if lower {
            a.make_ascii_lowercase();
        }
        self.word(u64::from_le_bytes(a) ^ ((b.len() as u64) << 56));
    }
    #[inline]
    fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

fn kind_tag(k: MediaType) -> u64 {
    k as u64 + 1
}

/// The hash of an item's key (the base key for a watch event).
pub(crate) fn key_hash(kind: MediaType, key: &str) -> u64 {
    let mut h = H::new(kind_tag(kind));
    h.bytes(key.as_bytes(), false);
    h.finish()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Frag {
    None,
    Episode(u32, u32),
    Season(u32),
}

fn fragment(item: &Item) -> Frag {
    match item.kind {
        MediaType::Episode => match (item.season, item.episode) {
            (Some(s), Some(e)) => Frag::Episode(s, e),
            _ => Frag::None,
        },
        MediaType::Season => item.season.map_or(Frag::None, Frag::Season),
        _ => Frag::None,
    }
}

/// The hash standing for an item's canonical key. When the key is an id (`tmdb:603`,
/// `tvdb:1#s01e02`) it is that id's token, so keys and tokens share one index; a title
/// key (`movie|title:…`) is hashed as a string.
pub(crate) fn key_token(item: &Item, key: &str) -> u64 {
    let frag = fragment(item);
    if frag != Frag::None
        && let Some((k, v)) = item.show_ids.best().or_else(|| item.ids.best())
    {
        return token(item.kind, k, v, frag);
    }
    if let Some((k, v)) = item.ids.best() {
        return token(item.kind, k, v, Frag::None);
    }
    key_hash(item.kind, key)
}

fn token(kind: MediaType, id: IdKind, value: &str, frag: Frag) -> u64 {
    let mut h = H::new(kind_tag(kind) << 8 | (id as u64 + 1));
    h.bytes(value.as_bytes(), true);
    match frag {
        Frag::None => {}
        Frag::Episode(s, e) => h.word(0xE000_0000_0000_0000 | u64::from(s) << 32 | u64::from(e)),
        Frag::Season(s) => h.word(0x5000_0000_0000_0000 | u64::from(s)),
    }
    h.finish() | 1 // never 0
}

fn push_unique(out: &mut Vec<u64>, from: usize, t: u64) {
    if !out[from..].contains(&t) {
        out.push(t);
    }
}

/// Appends an item's tokens to `out`: strong tokens first, then the remaining alias
/// tokens (ferry-core's `strong_tokens` and `alias_tokens`, hashed).
pub(crate) fn item_tokens(item: &Item, out: &mut Vec<u64>) {
    let start = out.len();
    let frag = fragment(item);
    let kind = item.kind;
    let inherited = |k: IdKind, v: &str| k.is_strong() && item.show_ids.get(k) == Some(v);
    match frag {
        Frag::Episode(..) | Frag::Season(..) => {
            // Strong: own non-inherited strong ids (episodes), show strong ids + fragment.
            if kind == MediaType::Episode {
                for (k, v) in item.ids.iter() {
                    if k.is_strong() && !inherited(k, v) {
                        push_unique(out, start, token(kind, k, v, Frag::None));
                    }
                }
            }
            for (k, v) in item.show_ids.iter() {
                if k.is_strong() {
                    push_unique(out, start, token(kind, k, v, frag));
                }
            }
            // Alias: own non-inherited ids (episodes), fragment tokens of show and own ids.
            if kind == MediaType::Episode {
                for (k, v) in item.ids.iter() {
                    if !k.is_strong() && !inherited(k, v) {
                        push_unique(out, start, token(kind, k, v, Frag::None));
                    }
                }
            }
            for (k, v) in item.show_ids.iter() {
                if !k.is_strong() {
                    push_unique(out, start, token(kind, k, v, frag));
                }
            }
            for (k, v) in item.ids.iter() {
                push_unique(out, start, token(kind, k, v, frag));
            }
        }
        Frag::None => {
            // Strong ids first; distinct ids give distinct tokens, so no dedupe needed.
            for (k, v) in item.ids.iter() {
                if k.is_strong() {
                    out.push(token(kind, k, v, Frag::None));
                }
            }
            for (k, v) in item.ids.iter() {
                if !k.is_strong() {
                    out.push(token(kind, k, v, Frag::None));
                }
            }
        }
    }
}

/// One side's snapshot, prepared for matching. History snapshots are grouped by title:
/// a *unit* is one title with all its plays; for other features a unit is one entry.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub(crate) entries: Vec<(&'a str, &'a Entry)>,
    history: bool,
    /// Per entry: the key token and the signature of the entry's own tokens.
    meta: Vec<[u64; 2]>,
    tok_start: Vec<u32>,
    toks: Vec<u64>,
    /// History: per-entry token ranges (shared by the plays of one title).
    tok_range: Vec<(u32, u32)>,
    /// History: the unit (title) of each entry. Elsewhere a unit is an entry.
    unit_of: Vec<u32>,
    /// History: per unit, its range in `events`.
    unit_start: Vec<u32>,
    /// History: `(watched_at, entry index)` sorted per unit.
    events: Vec<(i64, u32)>,
    /// Key tokens and id tokens → unit (first claimant).
    by_tok: TokenTable,
}

fn base_key(key: &str) -> &str {
    split_event_key(key).map_or(key, |(b, _)| b)
}

fn watched_at(e: &Entry) -> Option<i64> {
    match e.payload {
        ferry_core::Payload::Watch { watched_at } => Some(watched_at.unix()),
        _ => None,
    }
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(snap: &'a Snapshot) -> Self {
        Self::build(snap, None)
    }

    /// Prepares a side's view, enriched with the ids its own baseline knew each title by:
    /// a provider that stops reporting one of a title's ids is still matched through it.
    pub(crate) fn build(snap: &'a Snapshot, own_base: Option<&Prepared<'_>>) -> Self {
        let history = snap.feature() == ferry_core::Feature::History;
        let n = snap.len();
        let entries: Vec<(&str, &Entry)> = snap.iter().collect();
        let mut meta: Vec<[u64; 2]> = Vec::with_capacity(n);
        let mut tok_start = Vec::with_capacity(n + 1);
        let mut toks = Vec::with_capacity(n * 4);
        for (k, e) in &entries {
            let k = if history { base_key(k) } else { k };
            let kh = key_token(&e.item, k);
            let start = toks.len();
            tok_start.push(start as u32);
            item_tokens(&e.item, &mut toks);
            // A signature of the entry's own ids: equal signatures, equal identity.
            let sig = toks[start..].iter().fold(kh.rotate_left(17), |a, t| a ^ t);
            meta.push([kh, sig]);
            if let Some(b) = own_base
                && let Some(u) = b.find_unit(kh, &toks[start..])
            {
                let bi = b.unit_rep(u);
                let [bkh, bsig] = b.meta[bi];
                // A history unit's tokens are those of all its plays, which may be more
                // than its first play's own ids (`bsig`).
                let bt = b.tokens(bi);
                let own = &toks[start..];
                if bsig == sig && bt.iter().all(|t| own.contains(t)) {
                    // Same ids as in the baseline (the common case): nothing to add.
                    continue;
                }
                let linked = own.contains(&bkh)
                    || bkh == kh
                    || bt.iter().any(|t| *t == kh || own.contains(t));
                if !linked {
                    // A table match that shares no token: not the same title.
                    continue;
                }
                // The baseline's key becomes a token too, so its old key still finds it.
                for t in std::iter::once(bkh).chain(bt.iter().copied()) {
                    push_unique(&mut toks, start, t);
                }
            }
        }
        tok_start.push(toks.len() as u32);

        let mut p = Prepared {
            entries,
            history,
            meta,
            tok_start,
            toks,
            tok_range: Vec::new(),
            unit_of: Vec::new(),
            unit_start: Vec::new(),
            events: Vec::new(),
            by_tok: TokenTable::default(),
        };
        if history {
            p.group_events();
            p.share_unit_tokens();
        }
        // Index: the first unit to claim a key or token keeps it.
        // Keys first (an exact key match wins over an earlier item's token), then tokens.
        let mut claims: Vec<(u64, u32)> = Vec::with_capacity(n + p.toks.len());
        for i in 0..n {
            claims.push((p.meta[i][0], p.unit_of(i)));
        }
        for i in 0..n {
            let u = p.unit_of(i);
            claims.extend(p.tokens(i).iter().map(|t| (*t, u)));
        }
        p.by_tok = TokenTable::from_claims(&claims, n);
        p
    }

    /// Groups plays into titles: plays whose key or any token agree are one title
    /// (union-find), so a title whose plays were filed under different ids is one unit.
    fn group_events(&mut self) {
        let n = self.entries.len();
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn find(p: &mut [u32], mut x: u32) -> u32 {
            while p[x as usize] != x {
                p[x as usize] = p[p[x as usize] as usize];
                x = p[x as usize];
            }
            x
        }
        let mut seen: U64Map<u32> = U64Map::with_capacity_and_hasher(n * 2, Default::default());
        for i in 0..n {
            let hs = std::iter::once(self.meta[i][0]).chain(self.tokens(i).iter().copied());
            let hs: Vec<u64> = hs.collect();
            for h in hs {
                match seen.get(&h) {
                    Some(&j) => {
                        let (ri, rj) = (find(&mut parent, i as u32), find(&mut parent, j));
                        if ri != rj {
                            parent[ri.max(rj) as usize] = ri.min(rj);
                        }
                    }
                    None => {
                        seen.insert(h, i as u32);
                    }
                }
            }
        }
        let mut unit_of_root: U64Map<u32> = U64Map::with_capacity_and_hasher(n, Default::default());
        let mut members: Vec<Vec<(i64, u32)>> = Vec::new();
        for i in 0..n {
            let r = find(&mut parent, i as u32);
            let u = *unit_of_root.entry(u64::from(r)).or_insert_with(|| {
                members.push(Vec::new());
                (members.len() - 1) as u32
            });
            let ts = watched_at(self.entries[i].1).unwrap_or(i64::MIN);
            members[u as usize].push((ts, i as u32));
            self.unit_of.push(u);
        }
        self.unit_start = Vec::with_capacity(members.len() + 1);
        for mut m in members {
            m.sort_unstable();
            self.unit_start.push(self.events.len() as u32);
            self.events.extend(m);
        }
        self.unit_start.push(self.events.len() as u32);
    }

    /// History: every play of a title is looked up with the tokens (and keys) of all the
    /// title's plays, so a play filed under one id matches a play filed under another.
    fn share_unit_tokens(&mut self) {
        let units = self.unit_start.len() - 1;
        let mut toks = Vec::with_capacity(self.toks.len());
        let mut range = vec![(0u32, 0u32); units];
        for (u, r) in range.iter_mut().enumerate() {
            let start = toks.len();
            for m in self.unit_members(u as u32) {
                push_unique(&mut toks, start, self.meta[m][0]);
                let (s, e) = (self.tok_start[m] as usize, self.tok_start[m + 1] as usize);
                for t in &self.toks[s..e] {
                    push_unique(&mut toks, start, *t);
                }
            }
            *r = (start as u32, toks.len() as u32);
        }
        // Entries of one unit share one token range; `tok_start[i]..tok_start[i+1]` no
        // longer applies, so ranges are kept per entry.
        self.tok_range = (0..self.entries.len())
            .map(|i| range[self.unit_of[i] as usize])
            .collect();
        self.toks = toks;
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn tokens(&self, i: usize) -> &[u64] {
        if let Some((s, e)) = self.tok_range.get(i) {
            return &self.toks[*s as usize..*e as usize];
        }
        &self.toks[self.tok_start[i] as usize..self.tok_start[i + 1] as usize]
    }

    pub(crate) fn key_h(&self, i: usize) -> u64 {
        self.meta[i][0]
    }

    /// The unit matching an item given by its key hash and tokens.
    pub(crate) fn find_unit(&self, key_h: u64, toks: &[u64]) -> Option<u32> {
        if let Some(u) = self.by_tok.get(key_h) {
            return Some(u);
        }
        toks.iter()
            .filter(|t| **t != key_h)
            .find_map(|t| self.by_tok.get(*t))
    }

    /// The unit matching entry `i` of another prepared side.
    pub(crate) fn find_unit_of(&self, other: &Prepared<'_>, i: usize) -> Option<u32> {
        self.find_unit(other.key_h(i), other.tokens(i))
    }

    /// The unit entry `i` belongs to.
    pub(crate) fn unit_of(&self, i: usize) -> u32 {
        // Outside history a unit is an entry.
        if self.history {
            self.unit_of[i]
        } else {
            i as u32
        }
    }

    /// The entries of a unit (one, except for history).
    pub(crate) fn unit_members(&self, u: u32) -> Vec<usize> {
        if self.history {
            let (s, e) = (
                self.unit_start[u as usize] as usize,
                self.unit_start[u as usize + 1] as usize,
            );
            self.events[s..e].iter().map(|(_, i)| *i as usize).collect()
        } else {
            vec![u as usize]
        }
    }

    /// An entry of a unit (the first play, for history).
    pub(crate) fn unit_rep(&self, u: u32) -> usize {
        if self.history {
            self.events[self.unit_start[u as usize] as usize].1 as usize
        } else {
            u as usize
        }
    }

    /// The entry a (non-history) unit stands for.
    pub(crate) fn unit_entry(&self, u: u32) -> usize {
        debug_assert!(!self.history);
        u as usize
    }

    /// History: the play of unit `u` closest to `ts`, if within `tol` seconds.
    pub(crate) fn play_near(&self, u: u32, ts: i64, tol: u64) -> Option<usize> {
        let (s, e) = (
            self.unit_start[u as usize] as usize,
            self.unit_start[u as usize + 1] as usize,
        );
        let ev = &self.events[s..e];
        let pos = ev.partition_point(|(t, _)| *t < ts);
        let mut best: Option<(u64, u32)> = None;
        for cand in [pos.checked_sub(1), Some(pos)].into_iter().flatten() {
            if let Some((t, idx)) = ev.get(cand) {
                let d = t.abs_diff(ts);
                if d <= tol && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, *idx));
                }
            }
        }
        best.map(|(_, i)| i as usize)
    }

    /// The entry on this side matching entry `i` of `other`: the same title, and for
    /// history a play within `tol` seconds.
    pub(crate) fn find_match(&self, other: &Prepared<'_>, i: usize, tol: u64) -> Option<usize> {
        if !self.history {
            return self.find_unit_of(other, i).map(|u| self.unit_entry(u));
        }
        // One title may be filed as several units (plays recorded under different ids):
        // look for a play near `ts` in every unit the key or a token leads to.
        let ts = watched_at(other.entries[i].1)?;
        let first = self.by_tok.get(other.key_h(i));
        let mut tried: [u32; 4] = [u32::MAX; 4];
        let mut n = 0;
        let cands = first
            .into_iter()
            .chain(other.tokens(i).iter().filter_map(|t| self.by_tok.get(*t)));
        for u in cands {
            if tried[..n.min(4)].contains(&u) {
                continue;
            }
            if n < 4 {
                tried[n] = u;
            }
            n += 1;
            if let Some(hit) = self.play_near(u, ts, tol) {
                return Some(hit);
            }
        }
        None
    }

    /// History: the latest play of the title that entry `i` of `other` belongs to, over
    /// every unit its key or tokens lead to, leaving out the plays `skip` names: `(time,
    /// entry index)`. `None` when this side holds no (other) play of the title.
    pub(crate) fn latest_play_of(
        &self,
        other: &Prepared<'_>,
        i: usize,
        skip: impl Fn(usize) -> bool,
    ) -> Option<(i64, usize)> {
        if !self.history {
            return None;
        }
        let mut tried: Vec<u32> = Vec::new();
        let mut best: Option<(i64, usize)> = None;
        let cands = self
            .by_tok
            .get(other.key_h(i))
            .into_iter()
            .chain(other.tokens(i).iter().filter_map(|t| self.by_tok.get(*t)));
        for u in cands {
            if tried.contains(&u) {
                continue;
            }
            tried.push(u);
            let (s, e) = (
                self.unit_start[u as usize] as usize,
                self.unit_start[u as usize + 1] as usize,
            );
            // Plays are sorted by time: the last one not skipped is the unit's latest.
            if let Some((t, idx)) = self.events[s..e]
                .iter()
                .rev()
                .find(|(_, idx)| !skip(*idx as usize))
                && best.is_none_or(|(bt, _)| *t > bt)
            {
                best = Some((*t, *idx as usize));
            }
        }
        best
    }

    /// History: whether entry `i` is the latest play of its title on this side.
    pub(crate) fn is_latest_in_unit(&self, i: usize) -> bool {
        if !self.history {
            return true;
        }
        let u = self.unit_of[i] as usize;
        let end = self.unit_start[u + 1] as usize;
        end > 0 && self.events[end - 1].1 as usize == i
    }

    /// History: the time of play `i`.
    pub(crate) fn play_time(&self, i: usize) -> Option<i64> {
        watched_at(self.entries[i].1)
    }

    /// Whether entry `j` of this side and entry `i` of `other` really share a key or token
    /// (confirms a table match before anything is removed on its strength).
    pub(crate) fn shares_token(&self, j: usize, other: &Prepared<'_>, i: usize) -> bool {
        let mine = self.tokens(j);
        let has = |t: u64| t == self.key_h(j) || mine.contains(&t);
        has(other.key_h(i)) || other.tokens(i).iter().any(|t| has(*t))
    }

    pub(crate) fn is_history(&self) -> bool {
        self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::identity::AliasIndex;
    use ferry_core::{Feature, Ids, Timestamp};

    fn ids(p: &[(IdKind, &str)]) -> Ids {
        Ids::from_pairs(p.iter().copied())
    }

    #[test]
    fn agrees_with_the_core_alias_index_on_the_core_cases() {
        let a = Item::movie(
            "M",
            2000,
            ids(&[(IdKind::Tmdb, "603"), (IdKind::Imdb, "tt0133093")]),
        );
        let b = Item::movie(
            "M",
            2000,
            ids(&[(IdKind::Imdb, "tt0133093"), (IdKind::Slug, "x")]),
        );
        let c = Item::movie("C", 2000, ids(&[(IdKind::Simkl, "77"), (IdKind::Mal, "5")]));
        let c2 = Item::movie("C", 2000, ids(&[(IdKind::Simkl, "77")]));
        let d = Item::movie("D", 2000, ids(&[(IdKind::Tmdb, "1")]));
        let show = Item::show("S", 2000, ids(&[(IdKind::Tmdb, "603")]));
        let left = ferry_testkit::snap(
            Feature::Watchlist,
            [Entry::watchlist(a.clone()), Entry::watchlist(c.clone())],
        );
        let p = Prepared::new(&left);
        let core = AliasIndex::build(left.iter().map(|(k, e)| (k, &e.item)));
        for q in [a, b, c2, d, show] {
            let right = ferry_testkit::snap(Feature::Watchlist, [Entry::watchlist(q.clone())]);
            let pq = Prepared::new(&right);
            let mine = p.find_match(&pq, 0, 0).map(|i| p.entries[i].0.to_owned());
            let theirs = core.find(&q.key(), &q).map(str::to_owned);
            assert_eq!(mine, theirs, "{q:?}");
        }
    }

    #[test]
    fn inherited_show_ids_never_match_two_episodes() {
        let show = ids(&[(IdKind::Tvdb, "1")]);
        let mut e1 = Item::episode("S", show.clone(), 1, 1);
        e1.ids = show.clone();
        let mut e2 = Item::episode("S", show.clone(), 1, 2);
        e2.ids = show;
        let s1 = ferry_testkit::snap(Feature::Watchlist, [Entry::watchlist(e1)]);
        let s2 = ferry_testkit::snap(Feature::Watchlist, [Entry::watchlist(e2)]);
        let (p1, p2) = (Prepared::new(&s1), Prepared::new(&s2));
        assert_eq!(p1.find_match(&p2, 0, 0), None);
    }

    #[test]
    fn plays_match_within_the_tolerance() {
        let m = Item::movie("M", 2000, ids(&[(IdKind::Tmdb, "1")]));
        let at = |t| Entry::watch(m.clone(), Timestamp::from_unix(t));
        let left = ferry_testkit::snap(Feature::History, [at(1000), at(5000)]);
        let p = Prepared::new(&left);
        for (t, expect) in [
            (1000, true),
            (1059, true),
            (941, true),
            (1061, false),
            (5030, true),
            (3000, false),
        ] {
            let right = ferry_testkit::snap(Feature::History, [at(t)]);
            let q = Prepared::new(&right);
            assert_eq!(p.find_match(&q, 0, 60).is_some(), expect, "{t}");
        }
    }
}
