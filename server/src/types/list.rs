//! Lists: the value type behind `Value::List`, Redis 7.0's quicklist.
//!
//! ```text
//! List ── Box<Quicklist> ── nodes: VecDeque<Node>      count: total elements
//!                            Node::Packed(Listpack)   one allocation, Redis's listpack bytes
//!                            Node::Plain(Box<[u8]>)   one element of 1 GiB or more (7.0's
//!                                                     `packed_threshold`), stored as is
//! ```
//!
//! Redis 7.0 has one list encoding, `quicklist` (the `listpack` encoding for small lists came
//! in 7.2: `RPUSH l a` then `OBJECT ENCODING l` says `quicklist` on redis-server 7.0.15), a
//! linked list of listpack nodes whose size `list-max-listpack-size` bounds: negative N means
//! at most 4/8/16/32/64 KiB per node, positive N at most N entries (and 8 KiB). The decisions
//! when a node takes one more element, when a full node splits on LINSERT and when neighbours
//! merge are 7.0's `_quicklistNodeAllowInsert`, `_quicklistInsert` and `_quicklistMergeNodes`,
//! so the nodes here hold the same elements as redis-server's and the RDB writer can write
//! each node's bytes as they are (`RDB_TYPE_LIST_QUICKLIST_2`, see [`List::nodes`]).
//!
//! The handle is one pointer (`Value`'s size is pinned by a test). Every node is its own
//! allocation, so a push or pop while a snapshot child lives dirties the pages of the end node
//! only; a list of at most 8 KiB moves to new memory on its first write while a fork save's
//! child lives, so it dirties no shared page at all (see `List::unshare` and
//! [`super::should_move`]). Nothing here knows about the keyspace: commands change a list through
//! `Slot::list_mut` (the write path).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use forkdb_snapshot::blob::listpack::{self, Listpack, Where};
use forkdb_snapshot::blob::{BlobError, Elem};

/// 7.0's default `packed_threshold`: an element this large gets a plain node of its own.
pub const PACKED_THRESHOLD: usize = 1 << 30;
/// 7.0's largest threshold (`quicklistisSetPackedThreshold`): just under the 4 GiB a
/// listpack can hold.
const PACKED_THRESHOLD_MAX: u64 = (1 << 32) - (1 << 20);

/// The current `packed_threshold`. Redis keeps it in a process global that only DEBUG
/// QUICKLIST-PACKED-THRESHOLD changes (tests use it to make plain nodes of small elements);
/// an atomic is the safe Rust form of that global. The server has one thread, so `Relaxed`.
static PACKED: AtomicUsize = AtomicUsize::new(PACKED_THRESHOLD);

fn packed_threshold() -> usize {
    PACKED.load(Ordering::Relaxed)
}

/// DEBUG QUICKLIST-PACKED-THRESHOLD (7.0's `quicklistisSetPackedThreshold`): 0 restores the
/// default; false (nothing changed) above [`PACKED_THRESHOLD_MAX`]. Lists already built keep
/// their nodes, as in Redis.
pub fn set_packed_threshold(sz: u64) -> bool {
    if sz > PACKED_THRESHOLD_MAX {
        return false;
    }
    let sz = if sz == 0 { PACKED_THRESHOLD as u64 } else { sz };
    PACKED.store(sz as usize, Ordering::Relaxed);
    true
}
/// 7.0's `SIZE_SAFETY_LIMIT`: a node limited by count still stays within 8 KiB.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// 7.0.15's `SIZE_ESTIMATE_OVERHEAD` (see [`allow_insert`]).
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// 7.0's `optimization_level`: the byte limits of fill -1 ..= -5.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// One quicklist node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Packed(Listpack),
    Plain(Box<[u8]>),
}

/// A borrowed view of one node in the shape of Redis 7.0's `RDB_TYPE_LIST_QUICKLIST_2`: a
/// packed node is written as its listpack bytes (container 2), a plain one as the element
/// (container 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef<'a> {
    Packed(&'a [u8]),
    Plain(&'a [u8]),
}

impl Node {
    fn len(&self) -> usize {
        match self {
            Node::Packed(lp) => lp.len(),
            Node::Plain(_) => 1,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Node::Packed(lp) => lp.total_bytes(),
            Node::Plain(b) => b.len(),
        }
    }

    fn is_plain(&self) -> bool {
        matches!(self, Node::Plain(_))
    }

    /// Element `i` of the node (0-based from its head).
    fn get(&self, i: usize) -> Elem<'_> {
        match self {
            Node::Packed(lp) => lp.seek(i as i64).map(|p| lp.get(p)).unwrap_or(Elem::Int(0)),
            Node::Plain(b) => Elem::Str(b),
        }
    }

    /// A copy with the same spare capacity (a moved list keeps growing in place).
    fn clone_with_capacity(&self) -> Node {
        match self {
            Node::Packed(lp) => Node::Packed(lp.clone_with_capacity()),
            Node::Plain(b) => Node::Plain(b.clone()),
        }
    }

    fn single(e: &[u8]) -> Node {
        if e.len() >= packed_threshold() {
            Node::Plain(e.into())
        } else {
            let mut lp = Listpack::new();
            let _ = lp.append(e);
            Node::Packed(lp)
        }
    }
}

/// 7.0's `_quicklistNodeSizeMeetsOptimizationRequirement`.
fn size_meets_optimization(sz: usize, fill: i64) -> bool {
    if fill >= 0 {
        return false;
    }
    let offset = (-fill - 1) as usize;
    OPTIMIZATION_LEVEL.get(offset).is_some_and(|&l| sz <= l)
}

/// Whether a node of `sz` bytes and `count` entries is within the fill limits (the tail of
/// 7.0's `_quicklistNodeAllowInsert` / `_quicklistNodeAllowMerge`).
fn within_limits(sz: usize, count: usize, fill: i64, merge: bool) -> bool {
    if size_meets_optimization(sz, fill) {
        true
    } else if sz > SIZE_SAFETY_LIMIT {
        false
    } else if merge {
        (count as i64) <= fill
    } else {
        (count as i64) < fill
    }
}

/// 7.0's `_quicklistNodeAllowInsert`: may `node` take one more element of `sz` bytes?
fn allow_insert(node: Option<&Node>, fill: i64, sz: usize) -> bool {
    let Some(node) = node else { return false };
    if node.is_plain() || sz >= packed_threshold() {
        return false;
    }
    // 7.0.15's `SIZE_ESTIMATE_OVERHEAD`: a flat 8 bytes for the new entry's encoding and
    // back-length (the older ziplist-based estimate, 2 to 10 bytes by size, lets a node of
    // short elements take two or three more than redis-server's, so DUMP and RDB bytes differ).
    within_limits(
        node.bytes() + sz + SIZE_ESTIMATE_OVERHEAD,
        node.len(),
        fill,
        false,
    )
}

/// 7.0's `_quicklistNodeAllowMerge`.
fn allow_merge(a: &Node, b: &Node, fill: i64) -> bool {
    if a.is_plain() || b.is_plain() {
        return false;
    }
    // One listpack header and terminator go away (`LP_HDR_SIZE` + `LP_EOF`).
    let sz = (a.bytes() + b.bytes()).saturating_sub(7);
    within_limits(sz, a.len() + b.len(), fill, true)
}

/// The list: see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List {
    ql: Box<Quicklist>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Quicklist {
    nodes: VecDeque<Node>,
    count: usize,
}

impl Quicklist {
    /// Room for one more node. The first node gets a buffer of exactly one slot: most lists
    /// are one node (100 short items fit one 8 KiB listpack), and `VecDeque`'s first push
    /// would reserve four (96 bytes, a 112-byte chunk, where one slot is a 32-byte chunk:
    /// with the 48-byte `Quicklist` that is Redis's quicklist plus its one node, 80 bytes).
    /// Past one node the deque grows as it does by itself.
    fn reserve_for_push(&mut self) {
        if self.nodes.capacity() == 0 {
            self.nodes.reserve_exact(1);
        }
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

impl List {
    /// An empty list (a command puts one in the keyspace only once it holds an element).
    pub fn new() -> Self {
        Self::default()
    }

    /// A list of `elems` in order, packed as successive RPUSHes would pack them (the
    /// constructor for a list loaded element by element: linked list, ziplist, quicklist v1).
    pub fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>, fill: i64) -> Self {
        let mut l = List::new();
        for e in elems {
            l.push(End::Tail, e, fill);
        }
        l
    }

    /// Adopts nodes as an RDB `QUICKLIST_2` holds them: each a validated listpack (empty ones
    /// are skipped, as Redis's loader skips them) or a plain element. Node boundaries are kept,
    /// as Redis's `quicklistAppendListpack` keeps them.
    pub fn from_nodes(nodes: impl IntoIterator<Item = LoadedNode>) -> Self {
        let mut ql = Quicklist::default();
        for n in nodes {
            let node = match n {
                LoadedNode::Packed(lp) if lp.is_empty() => continue,
                LoadedNode::Packed(lp) => Node::Packed(lp),
                LoadedNode::Plain(b) => Node::Plain(b),
            };
            ql.count += node.len();
            ql.reserve_for_push();
            ql.nodes.push_back(node);
        }
        List { ql: Box::new(ql) }
    }

    /// The nodes from head to tail, borrowed, for the RDB writer (`QUICKLIST_2`: node count,
    /// then per node its container and its bytes). Nothing is copied.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = NodeRef<'_>> + '_ {
        self.ql.nodes.iter().map(|n| match n {
            Node::Packed(lp) => NodeRef::Packed(lp.as_bytes()),
            Node::Plain(b) => NodeRef::Plain(b),
        })
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.ql.count
    }

    /// True when empty (the keyspace never keeps an empty container: Redis deletes the key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding OBJECT ENCODING reports: always `quicklist` in Redis 7.0.
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    /// Bytes this value holds on the heap (for memory estimates): the quicklist header, node
    /// slots and each node's bytes.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Quicklist>()
            + self.ql.nodes.capacity() * std::mem::size_of::<Node>()
            + self.ql.nodes.iter().map(Node::bytes).sum::<usize>()
    }

    /// [`List::heap_size`], or any figure of at least `limit` once the sum reaches it: a write
    /// during a fork save asks only whether the list is small, without walking a long one.
    fn heap_size_up_to(&self, limit: usize) -> usize {
        let mut sum = std::mem::size_of::<Quicklist>()
            + self.ql.nodes.capacity() * std::mem::size_of::<Node>();
        for n in &self.ql.nodes {
            if sum >= limit {
                break;
            }
            sum += n.bytes();
        }
        sum
    }

    /// Called first by every method that changes the list. While a fork save's child lives, a
    /// small list's first write moves it to new memory (its header, node slots and listpacks,
    /// each with its spare capacity) and keeps the old one untouched until the child is gone
    /// (see [`super::should_move`]). In place, 10 000 lists of 100 elements under 4000
    /// LPUSH+LPOP pairs copied 1.2 pages a list written.
    fn unshare(&mut self) {
        // Outside a fork save nothing moves, and nothing is computed: this runs on every write
        // (LPUSH at -P 16 on a list of a million elements ran at 0.29x redis-server's rate when
        // each push summed the list's nodes here).
        if !super::fork_save_active() {
            return;
        }
        let at = &*self.ql as *const Quicklist as usize;
        if self.ql.nodes.capacity() == 0 {
            // A list made after the fork (or never pushed to): nothing of it is shared.
            super::made_after_fork(at);
            return;
        }
        if !super::should_move(at, self.heap_size_up_to(super::MOVE_MAX + 1)) {
            return;
        }
        let fresh = Box::new(Quicklist {
            nodes: self
                .ql
                .nodes
                .iter()
                .map(Node::clone_with_capacity)
                .collect(),
            count: self.ql.count,
        });
        let bytes = self.heap_size();
        let old = std::mem::replace(&mut self.ql, fresh);
        super::moved(&*self.ql as *const Quicklist as usize, old, bytes);
    }

    /// Pushes at one end (`quicklistPushHead`/`quicklistPushTail`).
    pub fn push(&mut self, end: End, e: &[u8], fill: i64) {
        self.unshare();
        let ql = &mut *self.ql;
        ql.count += 1;
        let fits = match end {
            End::Head => allow_insert(ql.nodes.front(), fill, e.len()),
            End::Tail => allow_insert(ql.nodes.back(), fill, e.len()),
        };
        let node = match end {
            End::Head => ql.nodes.front_mut(),
            End::Tail => ql.nodes.back_mut(),
        };
        if fits {
            if let Some(Node::Packed(lp)) = node {
                let r = match end {
                    End::Head => lp.prepend(e),
                    End::Tail => lp.append(e),
                };
                // Only past the format's 4 GiB: unreachable under `packed_threshold`.
                debug_assert!(r.is_ok());
                return;
            }
        }
        let n = Node::single(e);
        ql.reserve_for_push();
        match end {
            End::Head => ql.nodes.push_front(n),
            End::Tail => ql.nodes.push_back(n),
        }
    }

    /// Pops from one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.unshare();
        let ql = &mut *self.ql;
        let idx = match end {
            End::Head => 0,
            End::Tail => ql.nodes.len().checked_sub(1)?,
        };
        let node = ql.nodes.get_mut(idx)?;
        let out = match node {
            Node::Plain(_) => {
                let Some(Node::Plain(b)) = ql.nodes.remove(idx) else {
                    return None;
                };
                ql.count -= 1;
                return Some(b.into_vec());
            }
            Node::Packed(lp) => {
                let p = match end {
                    End::Head => lp.first(),
                    End::Tail => lp.last(),
                }?;
                let v = lp.get(p).to_vec();
                lp.delete(p);
                v
            }
        };
        ql.count -= 1;
        if node.len() == 0 {
            ql.nodes.remove(idx);
        }
        Some(out)
    }

    /// Node and offset of element `index` (negative counts from the tail), None when out of
    /// range.
    fn locate(&self, index: i64) -> Option<(usize, usize)> {
        let n = self.len() as i64;
        let i = if index < 0 {
            index.checked_add(n)?
        } else {
            index
        };
        if i < 0 || i >= n {
            return None;
        }
        let mut i = i as usize;
        if i < self.len() / 2 {
            for (ni, node) in self.ql.nodes.iter().enumerate() {
                if i < node.len() {
                    return Some((ni, i));
                }
                i -= node.len();
            }
        } else {
            let mut back = self.len() - 1 - i;
            for (ni, node) in self.ql.nodes.iter().enumerate().rev() {
                if back < node.len() {
                    return Some((ni, node.len() - 1 - back));
                }
                back -= node.len();
            }
        }
        None
    }

    /// The element at `index` (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<Elem<'_>> {
        let (ni, off) = self.locate(index)?;
        Some(self.ql.nodes[ni].get(off))
    }

    /// Replaces the element at `index` (LSET). False when out of range. As 7.0's
    /// `quicklistReplaceEntry`: a packed node takes a small element in place whatever its new
    /// size; a large one (`packed_threshold`) goes in a plain node of its own, splitting the
    /// packed node around the replaced element; a plain node takes a large element in place,
    /// and a small one is inserted after it (`_quicklistInsert`: into the next node when that
    /// has room, else in a new node) before the plain node is deleted.
    pub fn set(&mut self, index: i64, e: &[u8], fill: i64) -> bool {
        self.unshare();
        let Some((ni, off)) = self.locate(index) else {
            return false;
        };
        let large = e.len() >= packed_threshold();
        let nodes = &mut self.ql.nodes;
        match &mut nodes[ni] {
            Node::Packed(lp) if !large => {
                if let Some(p) = lp.seek(off as i64) {
                    let _ = lp.replace(p, e);
                }
            }
            Node::Packed(lp) => {
                // Nodes [0, off) | plain e | (off, end]; an empty side is no node.
                let (a, mut b) = split_lp(lp, off);
                if let Some(p) = b.first() {
                    b.delete(p);
                }
                let mut new = Vec::with_capacity(3);
                if !a.is_empty() {
                    new.push(Node::Packed(a));
                }
                new.push(Node::Plain(e.into()));
                if !b.is_empty() {
                    new.push(Node::Packed(b));
                }
                nodes.remove(ni);
                for (k, n) in new.into_iter().enumerate() {
                    nodes.insert(ni + k, n);
                }
            }
            Node::Plain(b) if large => *b = e.into(),
            Node::Plain(_) => {
                if allow_insert(nodes.get(ni + 1), fill, e.len()) {
                    if let Some(Node::Packed(next)) = nodes.get_mut(ni + 1) {
                        let _ = next.prepend(e);
                    }
                    nodes.remove(ni);
                } else {
                    nodes[ni] = Node::single(e);
                }
            }
        }
        true
    }

    /// Iterates the elements from `start` (0-based, must be in range or the iterator is
    /// empty), towards the tail or (`rev`) towards the head.
    pub fn iter_from(&self, start: i64, rev: bool) -> ListIter<'_> {
        let pos = self.locate(start);
        ListIter {
            list: self,
            pos,
            rev,
            cur: None,
        }
    }

    /// Iterates every element from the head.
    pub fn iter(&self) -> ListIter<'_> {
        self.iter_from(0, false)
    }

    /// LINSERT: inserts `e` before or after the first element equal to `pivot`. Returns false
    /// if there is no such element.
    pub fn insert(&mut self, pivot: &[u8], after: bool, e: &[u8], fill: i64) -> bool {
        self.unshare();
        let mut found = None;
        'outer: for (ni, node) in self.ql.nodes.iter().enumerate() {
            match node {
                Node::Packed(lp) => {
                    if let Some(first) = lp.first() {
                        if let Some(p) = lp.find(first, pivot, 0) {
                            let off = lp.iter_positions_before(p);
                            found = Some((ni, off));
                            break 'outer;
                        }
                    }
                }
                Node::Plain(b) => {
                    if &b[..] == pivot {
                        found = Some((ni, 0));
                        break 'outer;
                    }
                }
            }
        }
        let Some((ni, off)) = found else {
            return false;
        };
        self.insert_at(ni, off, after, e, fill);
        true
    }

    /// 7.0's `_quicklistInsert` at node `ni`, offset `off`.
    fn insert_at(&mut self, ni: usize, off: usize, after: bool, e: &[u8], fill: i64) {
        let ql = &mut *self.ql;
        ql.count += 1;
        let sz = e.len();
        let node_len = ql.nodes[ni].len();
        let full = !allow_insert(ql.nodes.get(ni), fill, sz);
        let at_tail = after && off + 1 == node_len;
        let at_head = !after && off == 0;
        let next = ni.checked_add(1).and_then(|i| ql.nodes.get(i));
        let prev = ni.checked_sub(1).and_then(|i| ql.nodes.get(i));
        let avail_next = at_tail && allow_insert(next, fill, sz);
        let avail_prev = at_head && allow_insert(prev, fill, sz);
        if sz >= packed_threshold() {
            // A large element: a plain node of its own, splitting a packed node (a small one
            // next to a plain node takes the general path below, where the plain node counts
            // as full).
            let new = Node::single(e);
            if let Node::Packed(lp) = &mut ql.nodes[ni] {
                if (after && !at_tail) || (!after && !at_head) {
                    let cut = if after { off + 1 } else { off };
                    let (a, b) = split_lp(lp, cut);
                    *lp = a;
                    ql.nodes.insert(ni + 1, Node::Packed(b));
                    ql.nodes.insert(ni + 1, new);
                    return;
                }
            }
            ql.nodes.insert(if after { ni + 1 } else { ni }, new);
            return;
        }
        if !full {
            if let Node::Packed(lp) = &mut ql.nodes[ni] {
                if let Some(p) = lp.seek(off as i64) {
                    let w = if after { Where::After } else { Where::Before };
                    let _ = lp.insert(p, w, e);
                }
            }
        } else if at_tail && avail_next {
            if let Some(Node::Packed(lp)) = ql.nodes.get_mut(ni + 1) {
                let _ = lp.prepend(e);
            }
        } else if at_head && avail_prev {
            if let Some(Node::Packed(lp)) = ql.nodes.get_mut(ni - 1) {
                let _ = lp.append(e);
            }
        } else if (at_tail && !avail_next) || (at_head && !avail_prev) {
            // At an end of a full node whose neighbour on that side (if any) is full too.
            ql.nodes
                .insert(if after { ni + 1 } else { ni }, Node::single(e));
        } else {
            // Split the full node: `after` keeps [0, off] and the new node takes the rest with
            // `e` first; before, the new node takes [0, off) with `e` last.
            let Node::Packed(lp) = &mut ql.nodes[ni] else {
                return;
            };
            let cut = if after { off + 1 } else { off };
            let (a, b) = split_lp(lp, cut);
            let center;
            if after {
                *lp = a;
                let mut b = b;
                let _ = b.prepend(e);
                ql.nodes.insert(ni + 1, Node::Packed(b));
                center = ni;
            } else {
                *lp = b;
                let mut a = a;
                let _ = a.append(e);
                ql.nodes.insert(ni, Node::Packed(a));
                center = ni + 1;
            }
            ql.merge_around(center, fill);
        }
    }

    /// LREM: removes up to `count` elements equal to `e` (all when 0; from the tail when
    /// negative). Returns how many it removed.
    pub fn remove(&mut self, count: i64, e: &[u8]) -> usize {
        self.unshare();
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().try_into().unwrap_or(usize::MAX)
        };
        let from_tail = count < 0;
        let mut removed = 0usize;
        let ql = &mut *self.ql;
        let order: Vec<usize> = if from_tail {
            (0..ql.nodes.len()).rev().collect()
        } else {
            (0..ql.nodes.len()).collect()
        };
        let mut emptied = Vec::new();
        for ni in order {
            if removed >= limit {
                break;
            }
            match &mut ql.nodes[ni] {
                Node::Plain(b) => {
                    if &b[..] == e {
                        removed += 1;
                        emptied.push(ni);
                    }
                }
                Node::Packed(lp) => {
                    if from_tail {
                        let mut p = lp.last();
                        while let Some(cur) = p {
                            if removed >= limit {
                                break;
                            }
                            let prev = lp.prev(cur);
                            if lp.get(cur).eq_bytes(e) {
                                lp.delete(cur);
                                removed += 1;
                            }
                            p = prev;
                        }
                    } else {
                        let mut p = lp.first();
                        while let Some(cur) = p {
                            if removed >= limit {
                                break;
                            }
                            p = match lp.find(cur, e, 0) {
                                Some(hit) => {
                                    removed += 1;
                                    lp.delete(hit)
                                }
                                None => None,
                            };
                        }
                    }
                    if lp.is_empty() {
                        emptied.push(ni);
                    }
                }
            }
        }
        emptied.sort_unstable();
        for ni in emptied.into_iter().rev() {
            ql.nodes.remove(ni);
        }
        ql.count -= removed;
        removed
    }

    /// Deletes `n` elements from index `start` (0-based, in range) towards the tail
    /// (`quicklistDelRange`; LTRIM). Nodes left are not merged, as in Redis.
    pub fn delete_range(&mut self, start: usize, n: usize) {
        self.unshare();
        let Some((mut ni, mut off)) = self.locate(start as i64) else {
            return;
        };
        let ql = &mut *self.ql;
        let mut left = n.min(ql.count - start);
        ql.count -= left;
        while left > 0 && ni < ql.nodes.len() {
            let len = ql.nodes[ni].len();
            let take = left.min(len - off);
            if take == len {
                ql.nodes.remove(ni);
            } else {
                if let Node::Packed(lp) = &mut ql.nodes[ni] {
                    lp.delete_range(off as i64, take);
                }
                ni += 1;
            }
            left -= take;
            off = 0;
        }
    }
}

/// A node as a loader hands it over (see [`List::from_nodes`]).
#[derive(Debug)]
pub enum LoadedNode {
    Packed(Listpack),
    Plain(Box<[u8]>),
}

/// Splits a listpack at `cut`: ([0, cut), [cut, len)).
fn split_lp(lp: &Listpack, cut: usize) -> (Listpack, Listpack) {
    let mut a = lp.clone();
    let mut b = lp.clone();
    let len = lp.len();
    a.delete_range(cut as i64, len - cut.min(len));
    b.delete_range(0, cut);
    (a, b)
}

/// Counting entries before a position, for LINSERT's offset.
trait PosIndex {
    fn iter_positions_before(&self, p: listpack::Pos) -> usize;
}

impl PosIndex for Listpack {
    fn iter_positions_before(&self, p: listpack::Pos) -> usize {
        let mut n = 0;
        let mut cur = self.first();
        while let Some(c) = cur {
            if c == p {
                break;
            }
            n += 1;
            cur = self.next(c);
        }
        n
    }
}

impl Quicklist {
    /// 7.0's `_quicklistMergeNodes` around the node at `center`.
    fn merge_around(&mut self, center: usize, fill: i64) {
        let mut center = center;
        // prev_prev + prev
        if center >= 2 && self.try_merge(center - 2, fill) {
            center -= 1;
        }
        // next + next_next
        if center + 2 < self.nodes.len() {
            self.try_merge(center + 1, fill);
        }
        // prev + center, then the result + next
        let target = if center >= 1 && self.try_merge(center - 1, fill) {
            center - 1
        } else {
            center
        };
        if target + 1 < self.nodes.len() {
            self.try_merge(target, fill);
        }
    }

    /// Merges node `i + 1` into node `i` when allowed.
    fn try_merge(&mut self, i: usize, fill: i64) -> bool {
        let (Some(a), Some(b)) = (self.nodes.get(i), self.nodes.get(i + 1)) else {
            return false;
        };
        if !allow_merge(a, b, fill) {
            return false;
        }
        let Some(Node::Packed(b)) = self.nodes.remove(i + 1) else {
            return false;
        };
        if let Some(Node::Packed(a)) = self.nodes.get_mut(i) {
            let r: Result<(), BlobError> = a.append_listpack(&b);
            debug_assert!(r.is_ok());
        }
        true
    }
}

/// Iterator over a list's elements (see [`List::iter_from`]).
pub struct ListIter<'a> {
    list: &'a List,
    /// Node and offset of the next element.
    pos: Option<(usize, usize)>,
    rev: bool,
    /// The listpack position of the next element in its node, when known.
    cur: Option<listpack::Pos>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        let (ni, off) = self.pos?;
        let node = self.list.ql.nodes.get(ni)?;
        let item = match node {
            Node::Plain(b) => {
                self.cur = None;
                Elem::Str(b)
            }
            Node::Packed(lp) => {
                let p = match self.cur {
                    Some(p) => p,
                    None => lp.seek(off as i64)?,
                };
                let e = lp.get(p);
                self.cur = if self.rev { lp.prev(p) } else { lp.next(p) };
                e
            }
        };
        // Advance to the next element's (node, offset).
        self.pos = if self.rev {
            if off > 0 {
                Some((ni, off - 1))
            } else {
                self.cur = None;
                ni.checked_sub(1)
                    .and_then(|p| self.list.ql.nodes.get(p).map(|n| (p, n.len() - 1)))
            }
        } else if off + 1 < node.len() {
            Some((ni, off + 1))
        } else {
            self.cur = None;
            (ni + 1 < self.list.ql.nodes.len()).then_some((ni + 1, 0))
        };
        Some(item)
    }
}

/// An element's bytes as Redis replies with it.
pub fn elem_bytes(e: Elem<'_>) -> Vec<u8> {
    e.to_vec()
}

/// The size an element adds to a listpack node (`lpEntrySizeString`), exported for tests.
pub fn entry_size(e: &[u8]) -> usize {
    listpack::entry_size(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{fork_save_ended, fork_save_started, moved_in_save, MOVE_MAX};

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    fn node_lens(l: &List) -> Vec<usize> {
        l.ql.nodes.iter().map(Node::len).collect()
    }

    fn header_at(l: &List) -> *const Quicklist {
        &*l.ql
    }

    fn node_at(l: &List) -> *const u8 {
        match &l.ql.nodes[0] {
            Node::Packed(lp) => lp.as_bytes().as_ptr(),
            Node::Plain(b) => b.as_ptr(),
        }
    }

    #[test]
    fn a_small_list_moves_once_per_fork_save_and_keeps_its_old_self() {
        let mut l = List::from_elems((0..100).map(|_| &b"0123456789abcdef"[..]), -2);
        let (h0, n0) = (header_at(&l), node_at(&l));
        // No save: LPUSH+LPOP keep the list where it is.
        l.push(End::Head, b"x", -2);
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"x"[..]));
        assert_eq!((header_at(&l), node_at(&l)), (h0, n0));

        let mut big = List::from_elems((0..2000).map(|_| &b"0123456789abcdef"[..]), -2);
        fork_save_started(1_000_000);
        // A list made during the save is not moved.
        let mut fresh = List::new();
        fresh.push(End::Tail, b"a", -2);
        let hf = header_at(&fresh);
        fresh.push(End::Tail, b"b", -2);
        assert_eq!(header_at(&fresh), hf);
        assert_eq!(moved_in_save(), 0);
        let before = items(&l);
        let size_at_fork = l.heap_size();
        l.push(End::Head, b"x", -2);
        let (h1, n1) = (header_at(&l), node_at(&l));
        assert_ne!(h1, h0);
        assert_ne!(n1, n0);
        assert_eq!(moved_in_save(), 1);
        // The old list is kept as it was at the fork.
        super::super::SHELTER.with(|s| {
            let s = s.borrow();
            let old = s.as_ref().unwrap().old[0]
                .downcast_ref::<Box<Quicklist>>()
                .unwrap();
            assert_eq!(&**old as *const Quicklist, h0);
            let kept = List { ql: old.clone() };
            assert_eq!(items(&kept), before);
        });
        // Moved once: later writes stay in place, spare capacity included.
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"x"[..]));
        l.push(End::Tail, b"y", -2);
        assert_eq!((header_at(&l), node_at(&l)), (h1, n1));
        assert_eq!(moved_in_save(), 1);
        assert_eq!(crate::types::kept_bytes(), size_at_fork);
        assert_eq!(l.len(), 101);

        // A list over MOVE_MAX is changed in place.
        assert!(big.heap_size() > MOVE_MAX);
        let hb = header_at(&big);
        big.pop(End::Tail);
        assert_eq!(header_at(&big), hb);
        assert_eq!(moved_in_save(), 1);

        fork_save_ended();
        assert_eq!(moved_in_save(), 0);
        l.push(End::Head, b"z", -2);
        assert_eq!(header_at(&l), h1);
    }

    #[test]
    fn a_one_node_list_reserves_one_node_slot() {
        let mut l = List::new();
        for i in 0..100 {
            l.push(End::Tail, format!("item-{i:04}").as_bytes(), -2);
        }
        assert_eq!(node_lens(&l), [100]);
        assert_eq!(l.ql.nodes.capacity(), 1);
        let loaded = List::from_nodes([LoadedNode::Packed(Listpack::new())]);
        assert_eq!(loaded.ql.nodes.capacity(), 0);
        // A second node grows the deque as it would by itself.
        for i in 0..1000 {
            l.push(End::Head, format!("item-{i:04}").as_bytes(), -2);
        }
        assert!(node_lens(&l).len() > 1);
        assert_eq!(l.len(), 1100);
    }

    #[test]
    fn push_pop_both_ends() {
        let mut l = List::new();
        l.push(End::Tail, b"b", -2);
        l.push(End::Head, b"a", -2);
        l.push(End::Tail, b"12", -2);
        assert_eq!(
            items(&l),
            vec![b"a".to_vec(), b"b".to_vec(), b"12".to_vec()]
        );
        assert_eq!(l.pop(End::Tail).unwrap(), b"12");
        assert_eq!(l.pop(End::Head).unwrap(), b"a");
        assert_eq!(l.pop(End::Head).unwrap(), b"b");
        assert!(l.pop(End::Head).is_none());
        assert!(l.is_empty());
        assert_eq!(l.ql.nodes.len(), 0);
    }

    #[test]
    fn size_limit_makes_new_nodes() {
        let mut l = List::new();
        let v = vec![b'x'; 100];
        for _ in 0..200 {
            l.push(End::Tail, &v, -2);
        }
        // Each entry is 100 + 1 (encoding 2 bytes? 12-bit string: 2) + backlen 1 = 103 bytes.
        assert!(l.ql.nodes.len() > 1);
        for n in &l.ql.nodes {
            assert!(n.bytes() <= 8192);
        }
        assert_eq!(l.len(), 200);
        assert_eq!(node_lens(&l).iter().sum::<usize>(), 200);
    }

    #[test]
    fn count_limit() {
        let mut l = List::new();
        for i in 0..10 {
            l.push(End::Tail, i.to_string().as_bytes(), 3);
        }
        assert_eq!(node_lens(&l), vec![3, 3, 3, 1]);
        for i in 0..10i64 {
            assert_eq!(l.get(i).unwrap().to_vec(), i.to_string().into_bytes());
            assert_eq!(l.get(i - 10).unwrap().to_vec(), i.to_string().into_bytes());
        }
        assert!(l.get(10).is_none());
        assert!(l.get(-11).is_none());
    }

    #[test]
    fn iter_both_ways_across_nodes() {
        let l = List::from_elems((0..10).map(|i| &b"0123456789"[i..i + 1]), 3);
        let fw: Vec<_> = l.iter_from(2, false).map(|e| e.to_vec()).collect();
        assert_eq!(fw.len(), 8);
        assert_eq!(fw[0], b"2");
        let bw: Vec<_> = l.iter_from(-1, true).map(|e| e.to_vec()).collect();
        assert_eq!(bw.len(), 10);
        assert_eq!(bw[0], b"9");
        assert_eq!(bw[9], b"0");
    }

    #[test]
    fn insert_splits_full_node_and_merges() {
        let mut l = List::from_elems((0..6).map(|i| &b"abcdef"[i..i + 1]), 3);
        assert_eq!(node_lens(&l), vec![3, 3]);
        assert!(l.insert(b"b", true, b"X", 3));
        assert_eq!(
            items(&l),
            ["a", "b", "X", "c", "d", "e", "f"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        assert_eq!(node_lens(&l).iter().sum::<usize>(), 7);
        assert!(node_lens(&l).iter().all(|&n| n <= 3));
        assert!(!l.insert(b"zz", false, b"Y", 3));
        assert!(l.insert(b"a", false, b"Y", 3));
        assert_eq!(l.get(0).unwrap().to_vec(), b"Y");
        assert_eq!(l.len(), 8);
    }

    #[test]
    fn set_remove_trim() {
        let mut l = List::from_elems(["a", "b", "a", "c", "a"].iter().map(|s| s.as_bytes()), 2);
        assert!(l.set(1, b"B", -2));
        assert!(!l.set(5, b"x", -2));
        assert_eq!(l.remove(-1, b"a"), 1);
        assert_eq!(items(&l).len(), 4);
        assert_eq!(l.remove(0, b"a"), 2);
        assert_eq!(items(&l), vec![b"B".to_vec(), b"c".to_vec()]);
        let mut l = List::from_elems((0..10).map(|i| &b"0123456789"[i..i + 1]), 3);
        l.delete_range(2, 5);
        assert_eq!(l.len(), 5);
        assert_eq!(
            items(&l),
            ["0", "1", "7", "8", "9"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn integers_compare_as_redis() {
        let mut l = List::from_elems(["12", "012"].iter().map(|s| s.as_bytes()), -2);
        assert_eq!(l.remove(0, b"12"), 1);
        assert_eq!(items(&l), vec![b"012".to_vec()]);
    }

    #[test]
    fn nodes_view_and_adopt() {
        let l = List::from_elems((0..10).map(|i| &b"0123456789"[i..i + 1]), 4);
        let loaded: Vec<LoadedNode> = l
            .nodes()
            .map(|n| match n {
                NodeRef::Packed(b) => LoadedNode::Packed(Listpack::from_bytes(b.to_vec()).unwrap()),
                NodeRef::Plain(b) => LoadedNode::Plain(b.into()),
            })
            .collect();
        let back = List::from_nodes(loaded);
        assert_eq!(back, l);
        assert_eq!(back.len(), 10);
    }

    /// Node counts and byte totals redis-server 7.0.15 reports (`DEBUG OBJECT`: `ql_nodes`,
    /// `ql_uncompressed_size`) for the same sequences of commands.
    #[test]
    fn node_layout_matches_redis() {
        let total = |l: &List| l.ql.nodes.iter().map(Node::bytes).sum::<usize>();
        // RPUSH a item-0 .. item-999 at -2: 2 nodes, 9904 bytes.
        let mut a = List::new();
        for i in 0..1000 {
            a.push(End::Tail, format!("item-{i}").as_bytes(), -2);
        }
        assert_eq!((a.ql.nodes.len(), total(&a)), (2, 9904));
        // LPUSH b 0, 1000, ..., 999000 at -2: 1 node.
        let mut b = List::new();
        for i in 0..1000 {
            b.push(End::Head, (i * 1000).to_string().as_bytes(), -2);
        }
        assert_eq!(b.ql.nodes.len(), 1);
        // At 5: RPUSH c 0..9, LINSERT c AFTER 2 X, BEFORE 0 Y, AFTER 4 Z: 3 nodes.
        let mut c = List::from_elems((0..10).map(|i| &b"0123456789"[i..i + 1]), 5);
        assert!(c.insert(b"2", true, b"X", 5));
        assert!(c.insert(b"0", false, b"Y", 5));
        assert!(c.insert(b"4", true, b"Z", 5));
        assert_eq!(c.ql.nodes.len(), 3);
        let want: Vec<Vec<u8>> = "Y 0 1 2 X 3 4 Z 5 6 7 8 9"
            .split(' ')
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(items(&c), want);
        // At 5: 400 RPUSHes of "v" x max(i % 70, 1): 80 nodes, 14696 bytes.
        let mut d = List::new();
        for i in 0..400 {
            d.push(End::Tail, "v".repeat((i % 70).max(1)).as_bytes(), 5);
        }
        assert_eq!((d.ql.nodes.len(), total(&d)), (80, 14696));
    }

    /// LINSERTs into full 8 KiB nodes (splits, then merges), as redis-server 7.0.15 lays them
    /// out: 2 nodes, 11140 bytes, the values at the same indices.
    #[test]
    fn insert_into_full_nodes_matches_redis() {
        let mut e = List::new();
        for i in 0..1000 {
            e.push(End::Tail, format!("item-{i}").as_bytes(), -2);
        }
        let v = vec![b'x'; 100];
        for p in [
            "item-300", "item-10", "item-850", "item-0", "item-999", "item-500",
        ] {
            assert!(e.insert(p.as_bytes(), true, &v, -2));
            assert!(e.insert(p.as_bytes(), false, &v, -2));
        }
        let total = e.ql.nodes.iter().map(Node::bytes).sum::<usize>();
        assert_eq!((e.ql.nodes.len(), total), (2, 11140));
        let at: Vec<usize> = e
            .iter()
            .enumerate()
            .filter(|(_, x)| x.eq_bytes(&v))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at, [0, 2, 12, 14, 304, 306, 506, 508, 858, 860, 1009, 1011]);
    }
}
