//! The generic replay buffer with its selection policies and exact, saveable state.

use std::collections::BTreeMap;

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{BufferError, Result};

/// Anything the buffer can hold must say its class (used by class-balanced selection and
/// reported in statistics).
pub trait Labelled {
    /// The class label.
    fn label(&self) -> u32;
}

impl<T> Labelled for (T, u32) {
    fn label(&self) -> u32 {
        self.1
    }
}

/// Which stored item (if any) an incoming item replaces once the buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionPolicy {
    /// Reservoir sampling over the whole stream (the reference, mammoth's `reservoir`): the
    /// n-th item seen (0-based) is kept with probability `capacity / (n + 1)`, replacing a
    /// uniformly chosen slot. Every item of the stream is equally likely to be in the buffer.
    #[default]
    Reservoir,
    /// First in, first out: the oldest item is overwritten.
    Ring,
    /// Class-balanced reservoir (CBRS, Chrysakis & Moens 2020): an item of a class that is not
    /// among the largest stored classes replaces a random item of a largest class (ties among
    /// largest classes broken at random); an item of a largest class goes through reservoir
    /// sampling within its own class (kept with probability stored_c / seen_c).
    ClassBalanced,
}

/// What [`ReplayBuffer::observe`] did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// Appended at this slot (the buffer was not full).
    Appended(usize),
    /// Replaced the item at this slot.
    Replaced(usize),
    /// Not stored.
    Discarded,
}

impl Insertion {
    /// The slot written, if any.
    pub fn slot(self) -> Option<usize> {
        match self {
            Insertion::Appended(i) | Insertion::Replaced(i) => Some(i),
            Insertion::Discarded => None,
        }
    }
}

/// The exact state of a ChaCha8 generator: seed, stream and position in the key stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    /// Position in the key stream, in 32-bit words.
    pub word_pos: u128,
}

impl RngState {
    /// Captures `rng`'s state.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// A generator continuing exactly where the captured one was.
    pub fn restore(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// Everything but the items: enough, with the items in slot order, to resume exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BufferMeta {
    pub capacity: usize,
    pub policy: SelectionPolicy,
    /// Items offered to `observe` so far.
    pub seen: u64,
    /// Items seen per class (class-balanced selection).
    pub seen_per_class: BTreeMap<u32, u64>,
    pub rng: RngState,
}

/// A fixed-capacity replay memory with a seeded generator it owns, so that selection and
/// minibatch sampling are reproducible and resume exactly from a saved state.
#[derive(Clone, Debug)]
pub struct ReplayBuffer<T> {
    capacity: usize,
    policy: SelectionPolicy,
    items: Vec<T>,
    seen: u64,
    seen_per_class: BTreeMap<u32, u64>,
    rng: ChaCha8Rng,
}

impl<T: Labelled> ReplayBuffer<T> {
    /// An empty buffer of `capacity` items whose generator is seeded with `seed`.
    pub fn new(capacity: usize, policy: SelectionPolicy, seed: u64) -> Result<Self> {
        Self::with_rng(capacity, policy, ChaCha8Rng::seed_from_u64(seed))
    }

    /// An empty buffer using `rng` (e.g. derived from the run seed).
    pub fn with_rng(capacity: usize, policy: SelectionPolicy, rng: ChaCha8Rng) -> Result<Self> {
        if capacity == 0 {
            return Err(BufferError::InvalidArgument(
                "buffer capacity must be > 0".into(),
            ));
        }
        Ok(Self {
            capacity,
            policy,
            items: Vec::with_capacity(capacity.min(1 << 16)),
            seen: 0,
            seen_per_class: BTreeMap::new(),
            rng,
        })
    }

    /// Offers one item of the stream; returns where (whether) it was stored.
    pub fn observe(&mut self, item: T) -> Insertion {
        let n = self.seen;
        let label = item.label();
        self.seen += 1;
        *self.seen_per_class.entry(label).or_insert(0) += 1;
        if self.items.len() < self.capacity {
            self.items.push(item);
            return Insertion::Appended(self.items.len() - 1);
        }
        let slot = match self.policy {
            SelectionPolicy::Reservoir => {
                let j = self.rng.random_range(0..=n);
                (j < self.capacity as u64).then_some(j as usize)
            }
            SelectionPolicy::Ring => Some((n % self.capacity as u64) as usize),
            SelectionPolicy::ClassBalanced => self.class_balanced_slot(label),
        };
        match slot {
            Some(i) => {
                self.items[i] = item;
                Insertion::Replaced(i)
            }
            None => Insertion::Discarded,
        }
    }

    /// Alias of [`ReplayBuffer::observe`].
    pub fn add(&mut self, item: T) -> Insertion {
        self.observe(item)
    }

    fn class_balanced_slot(&mut self, label: u32) -> Option<usize> {
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for it in &self.items {
            *counts.entry(it.label()).or_insert(0) += 1;
        }
        let largest = counts.values().copied().max().unwrap_or(0);
        let stored_c = counts.get(&label).copied().unwrap_or(0);
        if stored_c < largest {
            let big: Vec<u32> = counts
                .iter()
                .filter(|(_, &c)| c == largest)
                .map(|(&l, _)| l)
                .collect();
            let victim_class = big[self.rng.random_range(0..big.len())];
            return Some(self.random_slot_of(victim_class, largest));
        }
        let seen_c = self.seen_per_class[&label];
        let u: f64 = self.rng.random();
        if u <= stored_c as f64 / seen_c as f64 {
            Some(self.random_slot_of(label, stored_c))
        } else {
            None
        }
    }

    fn random_slot_of(&mut self, class: u32, count: usize) -> usize {
        let k = self.rng.random_range(0..count);
        self.items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.label() == class)
            .nth(k)
            .map(|(i, _)| i)
            .expect("class count matches items")
    }

    /// `min(n, len)` distinct slot indices drawn uniformly without replacement with the
    /// buffer's generator (mammoth: `np.random.choice(len, n, replace=False)`).
    pub fn sample_indices(&mut self, n: usize) -> Vec<usize> {
        let amount = n.min(self.items.len());
        index::sample(&mut self.rng, self.items.len(), amount).into_vec()
    }

    /// A random minibatch of `min(n, len)` distinct items (the buffer's generator).
    pub fn sample(&mut self, n: usize) -> Vec<&T> {
        let idx = self.sample_indices(n);
        idx.into_iter().map(|i| &self.items[i]).collect()
    }

    /// A random minibatch drawn with an external generator (the buffer's is untouched).
    pub fn sample_with<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<&T> {
        let amount = n.min(self.items.len());
        index::sample(rng, self.items.len(), amount)
            .into_iter()
            .map(|i| &self.items[i])
            .collect()
    }

    /// Number of stored items by class.
    pub fn class_counts(&self) -> BTreeMap<u32, usize> {
        let mut counts = BTreeMap::new();
        for it in &self.items {
            *counts.entry(it.label()).or_insert(0) += 1;
        }
        counts
    }
}

impl<T> ReplayBuffer<T> {
    /// Stored items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True before the first item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Maximum number of items.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The selection policy.
    pub fn policy(&self) -> SelectionPolicy {
        self.policy
    }

    /// All items in slot order (e.g. for calibration on the whole buffer).
    pub fn all(&self) -> &[T] {
        &self.items
    }

    /// Iterator over all items in slot order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The item in `slot`.
    pub fn get(&self, slot: usize) -> Option<&T> {
        self.items.get(slot)
    }

    /// Mutable access to every item (e.g. to update something derived; SAMM never refreshes
    /// stored logits).
    pub fn items_mut(&mut self) -> &mut [T] {
        &mut self.items
    }

    /// The counters and generator state (items excluded).
    pub fn meta(&self) -> BufferMeta {
        BufferMeta {
            capacity: self.capacity,
            policy: self.policy,
            seen: self.seen,
            seen_per_class: self.seen_per_class.clone(),
            rng: RngState::capture(&self.rng),
        }
    }

    /// Splits into state and items (slot order).
    pub fn into_parts(self) -> (BufferMeta, Vec<T>) {
        (self.meta(), self.items)
    }

    /// Rebuilds a buffer from [`ReplayBuffer::into_parts`] output; continues exactly.
    pub fn from_parts(meta: BufferMeta, items: Vec<T>) -> Result<Self> {
        if meta.capacity == 0 || items.len() > meta.capacity {
            return Err(BufferError::InvalidArgument(format!(
                "{} items for capacity {}",
                items.len(),
                meta.capacity
            )));
        }
        if (items.len() as u64) > meta.seen {
            return Err(BufferError::InvalidArgument(format!(
                "{} items but only {} seen",
                items.len(),
                meta.seen
            )));
        }
        Ok(Self {
            capacity: meta.capacity,
            policy: meta.policy,
            items,
            seen: meta.seen,
            seen_per_class: meta.seen_per_class,
            rng: meta.rng.restore(),
        })
    }
}

impl<'a, T> IntoIterator for &'a ReplayBuffer<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
