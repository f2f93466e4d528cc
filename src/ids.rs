//! Identifiers. meterpay's ULIDs are monotonic within the process, so ids
//! created one after another sort in creation order even inside one
//! millisecond (list endpoints sort by id and users expect that order).

use std::sync::Mutex;

use ulid::{Generator, Ulid};

static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

/// A new ULID, greater than every ULID this process generated before.
pub fn new_ulid() -> Ulid {
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match generator.generate() {
        Ok(id) => id,
        Err(overflow) => overflow.commit_overflow_increment(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_increase() {
        let ids: Vec<_> = (0..1000).map(|_| super::new_ulid()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
