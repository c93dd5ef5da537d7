//! Cranelift's incremental compilation cache, on disk beside the
//! artifacts: the compiled code of each function, keyed by the hash of
//! what Cranelift compiles it from (its IR and the target's flags).
//!
//! Almost all of a strategy's code is the interpreter's and the SDK's,
//! the same function for function in every strategy built by one
//! toolchain (a strategy's Python is data in its snapshot, not code), so
//! a new strategy, or a new version of one, compiles only what differs
//! and takes the rest from here.
//!
//! Cranelift trusts an entry it finds under a key, so each entry carries
//! the SHA-256 of its bytes and one that does not match them (a write cut
//! short by a crash: entries are not synced, for speed) is a miss. The
//! directory belongs to the platform, as the artifacts' does.

use std::borrow::Cow;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::CacheStore;

use crate::atomic_file::{write_atomically, Durability};

/// The directory under the cache directory.
const DIR: &str = "functions";

#[derive(Debug)]
pub(crate) struct FunctionCache {
    dir: Dir,
}

impl FunctionCache {
    pub(crate) fn open(cache_dir: &Path) -> std::io::Result<Self> {
        let path = cache_dir.join(DIR);
        std::fs::create_dir_all(&path)?;
        Ok(Self { dir: Dir::open_ambient_dir(path, ambient_authority())? })
    }
}

/// An entry's file name: the key, hashed (Cranelift's keys are already
/// SHA-256, but any bytes are made a safe name).
fn file_name(key: &[u8]) -> String {
    hex::encode(Sha256::digest(key))
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut entry = self.dir.read(file_name(key)).ok()?;
        if entry.len() < 32 || Sha256::digest(&entry[32..])[..] != entry[..32] {
            return None;
        }
        entry.drain(..32);
        Some(Cow::Owned(entry))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entry = Sha256::digest(&value).to_vec();
        entry.extend_from_slice(&value);
        write_atomically(&self.dir, &file_name(key), &entry, Durability::Unsynced).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_an_entry_is_stored_and_found() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = FunctionCache::open(root.path()).expect("open");
        assert!(cache.get(b"key").is_none(), "nothing is stored yet");
        assert!(cache.insert(b"key", b"compiled code".to_vec()));
        assert_eq!(cache.get(b"key").as_deref(), Some(&b"compiled code"[..]));
        assert!(cache.get(b"other key").is_none());
    }

    /// A damaged entry is a miss (Cranelift compiles the function again),
    /// never code Cranelift would take as the function's.
    #[test]
    fn errors_when_an_entry_is_cut_short_or_damaged() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = FunctionCache::open(root.path()).expect("open");
        assert!(cache.insert(b"key", b"compiled code".to_vec()));
        let path = root.path().join(DIR).join(file_name(b"key"));
        let whole = std::fs::read(&path).expect("entry");
        std::fs::write(&path, &whole[..whole.len() - 3]).expect("cut short");
        assert!(cache.get(b"key").is_none(), "a cut entry is a miss");
        let mut damaged = whole.clone();
        *damaged.last_mut().expect("byte") ^= 1;
        std::fs::write(&path, &damaged).expect("damaged");
        assert!(cache.get(b"key").is_none(), "a damaged entry is a miss");
        std::fs::write(&path, &whole[..10]).expect("shorter than its digest");
        assert!(cache.get(b"key").is_none());
    }
}
