//! Native code for components, compiled once and kept on disk, keyed by
//! the component's content hash and the engine's compatibility hash, so a
//! restart (or a second node sharing the directory) never recompiles.
#![allow(unsafe_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::atomic_file::{write_atomically, Durability};
use crate::error::LoadError;

pub(crate) struct ArtifactCache {
    dir: Dir,
    path: PathBuf,
    engine_hash: String,
}

/// SHA-256 of a component: the identity of a strategy version's code.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `load` compiled or found the artifact; reported to callers so
/// the cache's effect is observable (and tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
}

impl ArtifactCache {
    pub(crate) fn open(path: &Path, engine: &Engine) -> Result<Self, LoadError> {
        let cache_error = |source| LoadError::Cache { path: path.display().to_string(), source };
        std::fs::create_dir_all(path).map_err(cache_error)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(cache_error)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir, path: path.to_owned(), engine_hash: format!("{:016x}", hasher.finish()) })
    }

    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> Result<(Component, String, CacheOutcome), LoadError> {
        let hash = content_hash(bytes);
        let file = self.file_name(&hash);
        if self.dir.is_file(&file) {
            // SAFETY: the file was written by `precompile_component` below
            // for this engine configuration (its name carries both hashes),
            // whole before it was renamed into place and never changed
            // after (see `map`), and the cache directory belongs to the
            // platform, not to tenants. A damaged file fails to
            // deserialize and is rebuilt.
            match unsafe { self.map(engine, &file) } {
                Ok(component) => return Ok((component, hash, CacheOutcome::Hit)),
                Err(error) => tracing::warn!(%file, %error, "discarding unreadable cached artifact"),
            }
        }
        if !has_component_header(bytes) {
            return Err(LoadError::NotAComponent(
                "the file does not start with the component-model header; \
                 core modules and other files are not accepted"
                    .into(),
            ));
        }
        let artifact = engine
            .precompile_component(bytes)
            .map_err(|error| LoadError::NotAComponent(format!("{error:#}")))?;
        write_atomically(&self.dir, &file, &artifact, Durability::Synced)
            .map_err(|source| LoadError::Cache { path: self.path.display().to_string(), source })?;
        drop(artifact);
        // SAFETY: produced just above by this engine and written whole.
        let component = unsafe { self.map(engine, &file) }.map_err(|error| LoadError::NotAComponent(format!("{error:#}")))?;
        Ok((component, hash, CacheOutcome::Compiled))
    }
}

impl ArtifactCache {
    /// The component of an artifact in the cache, mapped from its file
    /// rather than read: its code and its memory images are then the page
    /// cache's, shared by every instance and reclaimable, not a copy in
    /// each process's anonymous memory (docs/BENCHMARKS.md, "Memory per
    /// tenant").
    ///
    /// # Safety
    /// The file must have been written by this engine's
    /// `precompile_component` and must never change while mapped: files are
    /// only ever written beside and renamed into place
    /// (`write_atomically`), or removed, which leaves a mapping intact.
    unsafe fn map(&self, engine: &Engine, file: &str) -> wasmtime::Result<Component> {
        // wasmtime 48 maps components by path only. `file` is a name made
        // of two hex hashes (`file_name`), so it cannot leave the directory.
        unsafe { Component::deserialize_file(engine, self.path.join(file)) }
    }

    fn file_name(&self, hash: &str) -> String {
        format!("{hash}-{}.cwasm", self.engine_hash)
    }

    /// Removes the compiled artifact of a component, if this engine made one.
    pub(crate) fn remove(&self, hash: &str) -> std::io::Result<()> {
        match self.dir.remove_file(self.file_name(hash)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// The component-model binary header: magic, then version 0x0d with layer 1.
fn has_component_header(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [0x01, 0x00]
}
