//! Cache files written whole or not at all.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::{Dir, OpenOptions};

/// Whether a write waits for the disk before it is renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// It does: after a crash the file is whole or absent.
    Synced,
    /// It does not, for writes of many small files whose readers check
    /// them (`function_cache.rs`): after a crash the file may be cut short.
    Unsynced,
}

/// Writes `bytes` to `file` in `dir` through a partial file of this call's
/// own, renamed into place, so a reader never sees half a file. Several
/// writes of one file can run at once (two tenants upload the same
/// strategy, a node loads one component twice); a partial named only by the
/// process was shared by them, and one write's rename could publish
/// another's half-written bytes.
pub(crate) fn write_atomically(dir: &Dir, file: &str, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let partial = format!("{file}.{}-{}.partial", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed));
    let written = dir
        .open_with(&partial, OpenOptions::new().write(true).create_new(true))
        .and_then(|mut handle| {
            handle.write_all(bytes)?;
            match durability {
                Durability::Synced => handle.sync_data(),
                Durability::Unsynced => Ok(()),
            }
        })
        .and_then(|()| dir.rename(&partial, dir, file));
    if written.is_err() {
        let _ = dir.remove_file(&partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use cap_std::ambient_authority;

    use super::*;

    #[test]
    fn works_when_many_writes_of_one_file_run_at_once() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = Dir::open_ambient_dir(root.path(), ambient_authority()).expect("dir");
        let bytes: Vec<u8> = (0..(1 << 20)).map(|index| (index % 251) as u8).collect();
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..10).try_for_each(|_| write_atomically(&dir, "component.wasm", &bytes, Durability::Synced))))
                .collect();
            for writer in writers {
                writer.join().expect("writer").expect("every write lands");
            }
        });
        assert!(dir.read("component.wasm").expect("written") == bytes, "the file is one whole write");
        let names: Vec<String> = dir.entries().expect("entries").map(|entry| entry.expect("entry").file_name().into_string().expect("name")).collect();
        assert_eq!(names, ["component.wasm"], "no partial file is left");
    }
}
