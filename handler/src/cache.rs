//! The entity store's in-process cache, bounded by two generations.
//!
//! The cache holds at most `capacity` entities, in two generations of
//! `capacity / 2`. Fetches put entities into the current generation; when
//! it is full it becomes the previous generation, and the previous one is
//! dropped. An entity found in the previous generation moves back to the
//! current one. So an entity leaves the cache once two generations' worth
//! of other entities have been fetched since it was last fetched: roughly
//! least recently used, at the cost of one hash lookup or two per fetch.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::decide::Sequences;
use crate::entity::Version;

/// What is kept of an entity.
#[derive(Debug, Clone)]
pub(crate) struct Entry<E> {
    /// The entity as of `version`.
    pub(crate) entity: E,
    /// The position of the last event applied.
    pub(crate) version: Version,
    /// The version of the last snapshot written or read, so that a
    /// snapshot is written only once the interval has passed since.
    pub(crate) snapshot: Version,
    /// The commands the entity has applied.
    pub(crate) sequences: Sequences,
}

/// Entities by id, in two generations.
#[derive(Debug)]
pub(crate) struct Cache<E> {
    /// Entities per generation before it turns over.
    generation_size: usize,
    generations: Mutex<Generations<E>>,
}

#[derive(Debug)]
struct Generations<E> {
    current: HashMap<String, Entry<E>>,
    previous: HashMap<String, Entry<E>>,
}

impl<E: Clone> Cache<E> {
    /// A cache of at most `capacity` entities (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            generation_size: (capacity / 2).max(1),
            generations: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<E>> {
        // The maps are consistent between statements; a panic elsewhere
        // while holding the lock cannot leave one half-updated.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry for `id`, if cached.
    pub(crate) fn get(&self, id: &str) -> Option<Entry<E>> {
        let mut generations = self.lock();
        if let Some(entry) = generations.current.get(id) {
            return Some(entry.clone());
        }
        let entry = generations.previous.remove(id)?;
        let found = entry.clone();
        self.insert(&mut generations, id.to_owned(), entry);
        Some(found)
    }

    /// Keeps `entry` for `id`, unless a newer one is cached already (two
    /// fetches of one entity may finish in either order).
    pub(crate) fn put(&self, id: &str, entry: Entry<E>) {
        let mut generations = self.lock();
        let cached = generations
            .current
            .get(id)
            .or_else(|| generations.previous.get(id));
        if cached.is_some_and(|cached| cached.version > entry.version) {
            return;
        }
        generations.previous.remove(id);
        self.insert(&mut generations, id.to_owned(), entry);
    }

    fn insert(&self, generations: &mut Generations<E>, id: String, entry: Entry<E>) {
        if !generations.current.contains_key(&id)
            && generations.current.len() >= self.generation_size
        {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(id, entry);
    }

    /// How many entities are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let generations = self.lock();
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: i64) -> Entry<i64> {
        Entry {
            entity: version * 10,
            version: Version::At(version),
            snapshot: Version::NoStream,
            sequences: Sequences::default(),
        }
    }

    #[test]
    fn holds_at_most_its_capacity_and_keeps_what_is_fetched_often() {
        let cache = Cache::new(4);
        cache.put("hot", entry(0));
        for n in 0..100 {
            cache.put(&format!("cold-{n}"), entry(n));
            assert!(cache.len() <= 4, "{} entities", cache.len());
            // Fetched between every other entity: never two generations
            // away.
            assert!(cache.get("hot").is_some(), "after {n} others");
        }
        assert!(cache.get("cold-0").is_none(), "long unfetched: dropped");
        assert!(cache.get("cold-99").is_some());
    }

    #[test]
    fn an_older_entry_never_replaces_a_newer_one() {
        let cache = Cache::new(4);
        cache.put("a", entry(5));
        cache.put("a", entry(3));
        assert_eq!(cache.get("a").unwrap().version, Version::At(5));
        cache.put("a", entry(6));
        assert_eq!(cache.get("a").unwrap().entity, 60);
    }
}
