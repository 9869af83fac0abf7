// SPDX-License-Identifier: GPL-2.0
//! The in-kernel rule table and its index.
//!
//! Rules are tried in id order and the first that matches decides, as in the paper. Scanning
//! them at every fork would make classification cost grow with the table, so the table keeps
//! an index sorted by `(event, cur, req, path hash, id)`: a classification looks up at most
//! eight keys (the task's VS or `*`, the requester's VS or `*`, the exec path or none) by
//! binary search and takes the smallest id among the first hits: O(log n) however many rules.
//!
//! Exec rules name a file by path, but match the file itself: the path is resolved in the
//! initial mount namespace (by the kernel glue, outside the state lock) to a [`FileId`], and
//! an exec matches only when both its path and its file's identity agree. A user who
//! bind-mounts another program over the path in a private mount namespace (`unshare -rm`)
//! shows the right path with the wrong file, and stays where they are. A path whose file
//! changed since it was resolved (a package upgrade renames a new file into place) is
//! reported through [`RuleTable::take_stale`], so the glue resolves the paths again.
//!
//! Storage is two caller-provided arrays of the same capacity (rules by id, the index), so
//! nothing here allocates; an insert or delete shifts entries (a memmove), fine for an
//! administrative operation.

use crate::abi::{
    vs_event_has_req, VsRule, VS_ANY, VS_EV_EXEC, VS_EV_MAX, VS_PATH_LEN, VS_TARGET_KEEP,
    VS_TARGET_REQ,
};
use crate::tree::{Error, Result};

/// The identity of a file: its filesystem's device number and its inode number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    pub dev: u32,
    pub ino: u64,
}

impl FileId {
    /// Not resolved (yet), or the path names no file: matches no exec.
    pub const NONE: FileId = FileId { dev: 0, ino: 0 };
}

/// The executable at an exec gate: the path it was reached by (in the exec'ing task's mount
/// namespace) and the file itself.
#[derive(Clone, Copy, Debug)]
pub struct Exe<'a> {
    pub path: &'a [u8],
    pub file: FileId,
}

impl Exe<'_> {
    /// Gates other than exec.
    pub const NONE: Exe<'static> = Exe {
        path: b"",
        file: FileId::NONE,
    };
}

/// A rule as installed: the user's rule plus what the kernel resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub spec: VsRule,
    /// Registry slot of the target VS (unused for `req`/`keep` targets).
    pub target_slot: u16,
    pub path_hash: u32,
    /// Exec rules with a path: the file the path named when last resolved.
    pub file: FileId,
}

impl Rule {
    /// An empty array element.
    pub const BLANK: Rule = Rule {
        spec: VsRule::BLANK,
        target_slot: 0,
        path_hash: 0,
        file: FileId::NONE,
    };
}

/// One index entry; ordered by all fields in declaration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry {
    pub event: u32,
    pub cur: u32,
    pub req: u32,
    pub path_hash: u32,
    pub id: u32,
}

/// One entry of the decision cache (see [`RuleTable::with_cache`]): for this event, current
/// VS and requester (`has_req` false: the event has none), the position of the first
/// matching rule, or `NO_RULE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    cur: u32,
    req: u32,
    pos: u32,
    event: u8,
    has_req: bool,
    valid: bool,
}

const NO_RULE: u32 = u32::MAX;

impl Default for Decision {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Decision {
    pub const EMPTY: Decision = Decision {
        event: 0,
        cur: 0,
        req: 0,
        has_req: false,
        valid: false,
        pos: NO_RULE,
    };

    fn matches(&self, event: u32, cur: u32, req: Option<u32>) -> bool {
        self.valid
            && (u32::from(self.event), self.cur, self.has_req, self.req)
                == (event, cur, req.is_some(), req.unwrap_or(0))
    }

    /// The entry for this key in a cache of `len` entries (a power of two).
    fn at(event: u32, cur: u32, req: Option<u32>, len: usize) -> usize {
        let h = (cur.wrapping_mul(0x9E37_79B9) ^ req.unwrap_or(0).wrapping_mul(0x85EB_CA6B))
            .wrapping_add(event.wrapping_mul(0x27D4_EB2F));
        (h >> 16) as usize & len.wrapping_sub(1)
    }
}

/// What a classification decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Move the task to the VS in this registry slot.
    Slot(usize),
    /// Move the task to the requester's VS.
    Req,
    /// Leave the task where it is.
    Keep,
}

/// The path bytes before the NUL.
fn path_bytes(p: &[u8; VS_PATH_LEN]) -> &[u8] {
    let n = p.iter().position(|&b| b == 0).unwrap_or(VS_PATH_LEN);
    &p[..n]
}

/// FNV-1a of a path; 0 is reserved for "no path".
pub fn path_hash(path: &[u8]) -> u32 {
    if path.is_empty() {
        return 0;
    }
    let h = path.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h.max(1)
}

/// Batches up to this size are inserted into the index one by one (O(batch × rules)); larger
/// ones are appended and sorted.
const SORTED_INSERT_MAX: usize = 32;

/// `D`: the decision cache's storage (none: `RuleTable::new`).
pub struct RuleTable<R, I, D = &'static mut [Decision]> {
    rules: R,
    index: I,
    len: usize,
    next_id: u32,
    /// Rules per event, so that a gate can tell in O(1) that no rule can concern it.
    per_event: [u32; VS_EV_MAX as usize + 1],
    /// Bit `1 << event` for each event whose `per_event` is not 0.
    mask: u32,
    /// Rules per event that take any requester (`req=` left out), and the mask of those
    /// events: such a rule may apply to every requester, tagged or not.
    per_event_any_req: [u32; VS_EV_MAX as usize + 1],
    any_req_mask: u32,
    /// Recent decisions of the gates that have no path (all but exec), so that a task that
    /// keeps reading a tagged pipe or accepting connections does not search the index each
    /// time. Cleared whenever a rule is added or deleted (positions and matches change);
    /// nothing else changes what a rule matches, since rules name VSs by id. A power of two
    /// entries long, or empty (no cache). Kept off the struct: the state it is part of is
    /// built on the stack at module init.
    decisions: D,
    /// Bumped by every add and delete (for caches of what the rules decide: `unlocked.rs`).
    gen: u64,
    /// An exec showed a rule's path with a file other than the one resolved: resolve again.
    stale: bool,
}

impl<R, I> RuleTable<R, I>
where
    R: core::ops::DerefMut<Target = [Rule]>,
    I: core::ops::DerefMut<Target = [IndexEntry]>,
{
    /// Take the two arrays; the capacity is the shorter one's length. No decision cache.
    pub fn new(rules: R, index: I) -> Self {
        Self::with_cache(rules, index, &mut [])
    }
}

impl<R, I, D> RuleTable<R, I, D>
where
    R: core::ops::DerefMut<Target = [Rule]>,
    I: core::ops::DerefMut<Target = [IndexEntry]>,
    D: core::ops::DerefMut<Target = [Decision]>,
{
    /// [`new`](RuleTable::new) with a decision cache of `decisions` (used only if its length
    /// is a power of two; cleared).
    pub fn with_cache(rules: R, index: I, mut decisions: D) -> Self {
        decisions.fill(Decision::EMPTY);
        Self {
            rules,
            index,
            len: 0,
            next_id: 1,
            per_event: [0; VS_EV_MAX as usize + 1],
            mask: 0,
            per_event_any_req: [0; VS_EV_MAX as usize + 1],
            any_req_mask: 0,
            decisions,
            gen: 0,
            stale: false,
        }
    }

    /// Bit `1 << event` set for every event that has at least one rule (kept up to date by
    /// `add` and `delete`: the module reads it after every locked section).
    pub fn event_mask(&self) -> u32 {
        self.mask
    }

    /// Changes with every rule added or deleted.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Count rule `spec` in (`added`) or out of the per-event counts and masks.
    fn count_event(&mut self, spec: &VsRule, added: bool) {
        let event = spec.event;
        self.decisions.fill(Decision::EMPTY);
        self.gen = self.gen.wrapping_add(1);
        let count = |counts: &mut [u32], mask: &mut u32| {
            if let Some(n) = counts.get_mut(event as usize) {
                *n = if added { *n + 1 } else { n.saturating_sub(1) };
                if *n == 0 {
                    *mask &= !(1 << event);
                } else {
                    *mask |= 1 << event;
                }
            }
        };
        count(&mut self.per_event, &mut self.mask);
        if spec.req == VS_ANY {
            count(&mut self.per_event_any_req, &mut self.any_req_mask);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.rules.len().min(self.index.len())
    }

    /// Installed rules in evaluation (id) order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> + '_ {
        self.rules[..self.len].iter()
    }

    /// Whether any rule names VS `id` (such a VS cannot be destroyed).
    pub fn references(&self, id: u32) -> bool {
        self.iter()
            .any(|r| r.spec.cur == id || r.spec.req == id || r.spec.target == id)
    }

    /// Check one rule; `slot_of` maps a VS id to its registry slot. Returns the target slot.
    fn validate(spec: &VsRule, slot_of: &impl Fn(u32) -> Option<usize>) -> Result<u16> {
        let ev = spec.event;
        if ev == 0 || ev > VS_EV_MAX || spec._pad != 0 {
            return Err(Error::Invalid);
        }
        let has_req = vs_event_has_req(ev);
        if !has_req && (spec.req != VS_ANY || spec.target == VS_TARGET_REQ) {
            return Err(Error::Invalid);
        }
        let path = path_bytes(&spec.path);
        if path.len() == VS_PATH_LEN
            || spec.path[path.len()..].iter().any(|&b| b != 0)
            || (!path.is_empty() && (ev != VS_EV_EXEC || path[0] != b'/'))
        {
            return Err(Error::Invalid);
        }
        for id in [spec.cur, spec.req] {
            if id != VS_ANY && slot_of(id).is_none() {
                return Err(Error::NotFound);
            }
        }
        match spec.target {
            VS_TARGET_REQ | VS_TARGET_KEEP => Ok(0),
            id => slot_of(id).map(|s| s as u16).ok_or(Error::NotFound),
        }
    }

    /// Add `batch` atomically: every rule is validated before any is installed. Returns the id
    /// of the first; the rest follow consecutively.
    pub fn add(&mut self, batch: &[VsRule], slot_of: impl Fn(u32) -> Option<usize>) -> Result<u32> {
        if batch.is_empty() {
            return Err(Error::Invalid);
        }
        for spec in batch {
            Self::validate(spec, &slot_of)?;
        }
        if self.len + batch.len() > self.capacity() {
            return Err(Error::NoSpace);
        }
        let first = self.next_id;
        if first.checked_add(batch.len() as u32).is_none() {
            return Err(Error::NoSpace);
        }
        for spec in batch {
            let target_slot = Self::validate(spec, &slot_of)?;
            let mut spec = *spec;
            spec.id = self.next_id;
            spec.hits = 0;
            self.next_id += 1;
            let path_hash = path_hash(path_bytes(&spec.path));
            // Ids only grow, so the new rule goes last.
            self.rules[self.len] = Rule {
                spec,
                target_slot,
                path_hash,
                file: FileId::NONE,
            };
            let key = IndexEntry {
                event: spec.event,
                cur: spec.cur,
                req: spec.req,
                path_hash,
                id: spec.id,
            };
            if batch.len() <= SORTED_INSERT_MAX {
                let pos = self.index[..self.len].partition_point(|e| *e < key);
                self.index.copy_within(pos..self.len, pos + 1);
                self.index[pos] = key;
            } else {
                self.index[self.len] = key;
            }
            self.len += 1;
            self.count_event(&spec, true);
        }
        // A large batch is appended, then the index sorted once: O(n log n) instead of the
        // O(n²) of one insertion each (this runs under the state lock, interrupts off).
        if batch.len() > SORTED_INSERT_MAX {
            self.index[..self.len].sort_unstable();
        }
        Ok(first)
    }

    /// Position of rule `id` in the rule array.
    fn position(&self, id: u32) -> Option<usize> {
        self.rules[..self.len]
            .binary_search_by_key(&id, |r| r.spec.id)
            .ok()
    }

    /// Add `n` hits counted elsewhere (`stay_cache`) to rule `id`, if it still exists.
    pub fn add_hits(&mut self, id: u32, n: u64) {
        if let Some(pos) = self.position(id) {
            let h = &mut self.rules[pos].spec.hits;
            *h = h.wrapping_add(n);
        }
    }

    /// Delete rule `id`.
    pub fn delete(&mut self, id: u32) -> Result<()> {
        let pos = self.position(id).ok_or(Error::NotFound)?;
        let r = self.rules[pos];
        self.rules.copy_within(pos + 1..self.len, pos);
        let key = IndexEntry {
            event: r.spec.event,
            cur: r.spec.cur,
            req: r.spec.req,
            path_hash: r.path_hash,
            id,
        };
        let ipos = self.index[..self.len]
            .binary_search(&key)
            .map_err(|_| Error::Invalid)?;
        self.index.copy_within(ipos + 1..self.len, ipos);
        self.len -= 1;
        self.count_event(&r.spec, false);
        Ok(())
    }

    /// Whether some rule of `event` names VS `cur` (or any VS) as the task's current VS:
    /// for the accept gate, whether an acceptor in `cur` is one that rules direct.
    pub fn applies(&self, event: u32, cur: u32) -> bool {
        let idx = &self.index[..self.len];
        [cur, VS_ANY].iter().any(|&c| {
            let i = idx.partition_point(|e| (e.event, e.cur) < (event, c));
            idx.get(i).is_some_and(|e| e.event == event && e.cur == c)
        })
    }

    /// Whether some rule of `event` takes VS `req` (or any VS) as the requester: for the
    /// unlocked gates, whether a pipe or message written in `req` may be one a rule looks at.
    /// A scan of the event's rules when none takes any requester: this runs once per VS and
    /// rule generation (the gate view's fill), not per gate.
    pub fn applies_req(&self, event: u32, req: u32) -> bool {
        if 1u32
            .checked_shl(event)
            .is_some_and(|b| self.any_req_mask & b != 0)
        {
            return true;
        }
        let idx = &self.index[..self.len];
        let start = idx.partition_point(|e| e.event < event);
        idx[start..]
            .iter()
            .take_while(|e| e.event == event)
            .any(|e| e.req == req)
    }

    /// The first rule (smallest id) for exactly this key whose path and file match, among the
    /// index entries at `range` (those of the key's event and current VS). A rule whose path
    /// matches but whose file does not marks the table stale.
    fn first_for(
        &mut self,
        range: core::ops::Range<usize>,
        key: IndexEntry,
        path: &[u8],
        file: FileId,
    ) -> Option<usize> {
        let idx = &self.index[range];
        let start = idx.partition_point(|e| *e < key);
        let mut stale = false;
        let found = idx[start..]
            .iter()
            .take_while(|e| (e.req, e.path_hash) == (key.req, key.path_hash))
            .filter_map(|e| self.position(e.id))
            .find(|&pos| {
                let r = &self.rules[pos];
                if key.path_hash == 0 {
                    return true;
                }
                if path_bytes(&r.spec.path) != path {
                    return false;
                }
                let same = r.file == file && r.file != FileId::NONE;
                stale |= !same;
                same
            });
        self.stale |= stale;
        found
    }

    /// Where the index entries of `event` with current VS `cur` are (maybe empty).
    fn entries_of(&self, event: u32, cur: u32) -> core::ops::Range<usize> {
        let idx = &self.index[..self.len];
        let start = idx.partition_point(|e| (e.event, e.cur) < (event, cur));
        let len = idx[start..].partition_point(|e| (e.event, e.cur) == (event, cur));
        start..start + len
    }

    /// Whether an exec found a path rule whose file was not the one resolved (since the last
    /// call): the caller should resolve the paths again ([`Self::exec_paths`], [`Self::set_file`]).
    pub fn take_stale(&mut self) -> bool {
        core::mem::take(&mut self.stale)
    }

    /// The exec rules that name a path: `(id, path)`, in id order.
    pub fn exec_paths(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.iter()
            .filter(|r| r.path_hash != 0)
            .map(|r| (r.spec.id, path_bytes(&r.spec.path)))
    }

    /// Record the file that rule `id`'s path resolved to; `path` is what was resolved (a rule
    /// deleted and its id never reused, so a mismatch means nothing to do).
    pub fn set_file(&mut self, id: u32, path: &[u8], file: FileId) {
        if let Some(pos) = self.position(id) {
            let r = &mut self.rules[pos];
            if path_bytes(&r.spec.path) == path {
                r.file = file;
            }
        }
    }

    /// Classify a task in VS `cur` at gate `event`, with requester `req` (if the event has
    /// one) and, for exec, the executable's `path` and `file`. Counts a hit on the deciding
    /// rule.
    pub fn classify(
        &mut self,
        event: u32,
        cur: u32,
        req: Option<u32>,
        path: &[u8],
        file: FileId,
    ) -> Option<(u32, Verdict)> {
        // Most gates have no rule at all (one load), and most tasks no rule of their event for
        // their own VS (one search): the common answer, "no rule", costs little.
        if self.per_event.get(event as usize).is_none_or(|&n| n == 0) {
            return None;
        }
        let cached = self.decisions.len().is_power_of_two();
        let pos = if event == VS_EV_EXEC || !cached {
            self.search(event, cur, req, path, file)?
        } else {
            let at = Decision::at(event, cur, req, self.decisions.len());
            let d = self.decisions.get(at).copied().unwrap_or(Decision::EMPTY);
            let pos = if d.matches(event, cur, req) {
                d.pos
            } else {
                let pos = self
                    .search(event, cur, req, &[], FileId::NONE)
                    .map_or(NO_RULE, |p| p as u32);
                if let Some(d) = self.decisions.get_mut(at) {
                    *d = Decision {
                        // Events are below VS_EV_MAX (classify returned above otherwise).
                        event: event as u8,
                        cur,
                        req: req.unwrap_or(0),
                        has_req: req.is_some(),
                        valid: true,
                        pos,
                    };
                }
                pos
            };
            if pos == NO_RULE {
                return None;
            }
            pos as usize
        };
        let rule = self.rules.get_mut(pos)?;
        rule.spec.hits = rule.spec.hits.wrapping_add(1);
        let verdict = match rule.spec.target {
            VS_TARGET_REQ => Verdict::Req,
            VS_TARGET_KEEP => Verdict::Keep,
            _ => Verdict::Slot(usize::from(rule.target_slot)),
        };
        Some((rule.spec.id, verdict))
    }

    /// The position of the first rule (smallest id) that matches, searching the index.
    fn search(
        &mut self,
        event: u32,
        cur: u32,
        req: Option<u32>,
        path: &[u8],
        file: FileId,
    ) -> Option<usize> {
        let hash = if event == VS_EV_EXEC {
            path_hash(path)
        } else {
            0
        };
        let mut best: Option<usize> = None;
        for c in [cur, VS_ANY] {
            let range = self.entries_of(event, c);
            if range.is_empty() {
                continue;
            }
            for r in [req.unwrap_or(VS_ANY), VS_ANY] {
                for h in [hash, 0] {
                    let key = IndexEntry {
                        event,
                        cur: c,
                        req: r,
                        path_hash: h,
                        id: 0,
                    };
                    if let Some(pos) = self.first_for(range.clone(), key, path, file) {
                        // Positions follow id order, so the smallest position wins.
                        best = Some(best.map_or(pos, |b| b.min(pos)));
                    }
                    if h == 0 {
                        break;
                    }
                }
                if req.is_none() {
                    break;
                }
            }
        }
        best
    }
}
