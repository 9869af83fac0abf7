// SPDX-License-Identifier: GPL-2.0
//! Deficit round robin: the decisions of the `vsq` qdisc.
//!
//! Each class is a net-share pool (a VS with a detached net share and the VSs that inherit
//! it); its packets wait in a FIFO the qdisc keeps. Classes with packets are served in turn;
//! each turn a class may send up to its deficit, which grows by its quantum (bytes, in
//! proportion to the pool's net share) every time it is passed over. This is Shreedhar and
//! Varghese's DRR as `net/sched/sch_drr.c` does it: byte-accurate over rounds whatever the
//! packet sizes (a GSO packet counts all its bytes), O(1) per packet, and work-conserving,
//! since only classes with packets take turns.
//!
//! The state is one [`DrrClass`] per class in storage the caller owns (allocated when the
//! qdisc is created), so nothing here allocates: enqueue and dequeue run in softirq.

/// No class: the end of the active list.
const NONE: u16 = u16::MAX;

/// Quanta below this would make a class with a large packet at its head loop for long.
pub const DRR_MIN_QUANTUM: u32 = 64;

/// One class's round-robin state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrrClass {
    /// Bytes the class may still send this turn.
    pub deficit: u32,
    /// Bytes added to its deficit each turn.
    pub quantum: u32,
    /// Next class in the active list.
    next: u16,
    /// In the active list (it has packets).
    active: bool,
}

impl Default for DrrClass {
    fn default() -> Self {
        Self {
            deficit: 0,
            quantum: DRR_MIN_QUANTUM,
            next: NONE,
            active: false,
        }
    }
}

/// The active list and the classes.
pub struct Drr<S> {
    classes: S,
    head: u16,
    tail: u16,
    active: usize,
}

impl<S: core::ops::DerefMut<Target = [DrrClass]>> Drr<S> {
    /// Take `classes` (cleared); class indices are `0..classes.len()`, at most 65535.
    pub fn new(mut classes: S) -> Self {
        for c in classes.iter_mut() {
            *c = DrrClass::default();
        }
        Self {
            classes,
            head: NONE,
            tail: NONE,
            active: 0,
        }
    }

    /// Classes with packets.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Whether class `c` has packets (is in the active list).
    pub fn is_active(&self, c: usize) -> bool {
        self.classes.get(c).is_some_and(|k| k.active)
    }

    /// A class's state, for tests and dumps.
    pub fn class(&self, c: usize) -> Option<&DrrClass> {
        self.classes.get(c)
    }

    /// A packet was queued for class `c`, whose quantum is now `quantum` bytes: a class that
    /// had none joins the end of the round with one quantum to spend. Out-of-range: ignored.
    pub fn enqueued(&mut self, c: usize, quantum: u32) {
        let Some(k) = self.classes.get_mut(c) else {
            return;
        };
        k.quantum = quantum.max(DRR_MIN_QUANTUM);
        if k.active {
            return;
        }
        k.active = true;
        k.deficit = k.quantum;
        k.next = NONE;
        let c = c as u16;
        match self.classes.get_mut(usize::from(self.tail)) {
            Some(t) => t.next = c,
            None => self.head = c,
        }
        self.tail = c;
        self.active += 1;
    }

    /// Take the first class off the active list.
    fn pop_head(&mut self) -> Option<usize> {
        let c = usize::from(self.head);
        let k = self.classes.get_mut(c)?;
        self.head = k.next;
        k.next = NONE;
        k.active = false;
        if self.head == NONE {
            self.tail = NONE;
        }
        self.active -= 1;
        Some(c)
    }

    /// Move the first class to the end of the round.
    fn rotate(&mut self) {
        if self.head == self.tail {
            return;
        }
        let c = self.head;
        let Some(k) = self.classes.get_mut(usize::from(c)) else {
            return;
        };
        self.head = k.next;
        k.next = NONE;
        if let Some(t) = self.classes.get_mut(usize::from(self.tail)) {
            t.next = c;
        }
        self.tail = c;
    }

    /// The class whose head packet is sent next, charged for it. `head_len(c)` is the length
    /// in bytes of class `c`'s first packet, or `None` if its queue is empty (such a class
    /// leaves the round). The caller dequeues that packet, then calls [`Self::dequeued`].
    pub fn pick(&mut self, mut head_len: impl FnMut(usize) -> Option<u32>) -> Option<usize> {
        // Each pass over a class either returns, drops an empty class, or adds a quantum
        // (>= DRR_MIN_QUANTUM) to a deficit short of a packet of at most u32::MAX bytes, so
        // the loop ends; real packets (<= 64 KiB GSO) need at most 1024 passes per class.
        loop {
            let c = usize::from(self.head);
            let k = *self.classes.get(c)?;
            match head_len(c) {
                None => {
                    self.pop_head();
                }
                Some(len) if len <= k.deficit => {
                    if let Some(k) = self.classes.get_mut(c) {
                        k.deficit -= len;
                    }
                    return Some(c);
                }
                Some(_) => {
                    if let Some(k) = self.classes.get_mut(c) {
                        k.deficit = k.deficit.saturating_add(k.quantum);
                    }
                    self.rotate();
                }
            }
        }
    }

    /// The packet [`Self::pick`] chose was dequeued; `empty`: class `c` has no more packets.
    pub fn dequeued(&mut self, c: usize, empty: bool) {
        if empty && usize::from(self.head) == c {
            self.pop_head();
        } else if empty {
            self.remove(c);
        }
    }

    /// Class `c`'s packets were dropped: it leaves the round.
    pub fn remove(&mut self, c: usize) {
        if !self.is_active(c) {
            return;
        }
        let c16 = c as u16;
        if self.head == c16 {
            self.pop_head();
            return;
        }
        let mut prev = self.head;
        // The list holds each active class once, so this walk ends within `active` steps.
        for _ in 0..self.active {
            let Some(next) = self.classes.get(usize::from(prev)).map(|k| k.next) else {
                return;
            };
            if next == c16 {
                let after = self.classes.get(c).map_or(NONE, |k| k.next);
                if let Some(p) = self.classes.get_mut(usize::from(prev)) {
                    p.next = after;
                }
                if self.tail == c16 {
                    self.tail = prev;
                }
                if let Some(k) = self.classes.get_mut(c) {
                    k.next = NONE;
                    k.active = false;
                }
                self.active -= 1;
                return;
            }
            prev = next;
        }
    }

    /// Every queue was purged.
    pub fn reset(&mut self) {
        while self.pop_head().is_some() {}
    }
}
