//! The interpreter's library at run time.
//!
//! componentize-py snapshots the modules a strategy imported while it was
//! built; a module imported later — inside a function, or by `zoneinfo` on
//! its first use — is read from files. Every guest gets the same read-only
//! view of them: the standard library of the componentize-py that built
//! it, with compiled `.pyc` files so an import costs no compile, at the
//! path it had during the build (`python`), and the IANA time zone
//! database of the `tzdata` package at `/usr/share/zoneinfo`, where
//! `zoneinfo` looks first. Nothing else of the host is visible, and
//! nothing is writable.
//!
//! The library is copied out of componentize-py by building the
//! platform's own strategy (`python_library.py`) once per toolchain, into
//! a directory keyed by the toolchain's version.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::componentize::{write_build_tree, StrategySource};

const DUMP: &str = include_str!("python_library.py");

/// A prepared library directory: `lib/` (the standard library) and
/// `site-packages/` (`tzdata`, when the toolchain's environment has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonLibrary {
    root: PathBuf,
}

impl PythonLibrary {
    /// The library of the componentize-py at `componentize_py`, in a
    /// directory of `under` named after its version: prepared on the first
    /// call (a build, some seconds), found on the next ones. `Err` says
    /// what failed.
    pub fn prepare(componentize_py: &Path, under: &Path) -> Result<PythonLibrary, String> {
        let root = Self::location(componentize_py, under)?;
        if root.join("lib/os.py").is_file() {
            return Ok(PythonLibrary { root });
        }
        let venv = environment_of(componentize_py);
        std::fs::create_dir_all(under).map_err(|error| format!("creating {}: {error}", under.display()))?;
        // Built beside its final place, then renamed into it: a process
        // preparing it at the same time finds it whole or not at all.
        let work = tempfile::tempdir_in(under).map_err(|error| format!("a temporary directory in {}: {error}", under.display()))?;
        write_build_tree(work.path(), &StrategySource::single("python_library.py", DUMP))
            .map_err(|error| format!("writing the library build: {error}"))?;
        let mut command = Command::new(componentize_py);
        command
            .current_dir(work.path())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", work.path().join("scratch"))
            .env("TMPDIR", work.path().join("scratch"))
            .args(["-d", "wit", "-w", "strategy", "componentize", "-p", "py", "stratagem_app", "-o", "out.wasm"]);
        // Its site-packages is guest path /1 during the build: where the
        // dump finds `tzdata`.
        command.env("VIRTUAL_ENV", venv.as_deref().unwrap_or(&work.path().join("env")));
        let output = command.output().map_err(|error| format!("cannot run `{}`: {error}", componentize_py.display()))?;
        let built = work.path().join("py/library");
        if !output.status.success() || !built.join("lib/os.py").is_file() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
            return Err(format!("copying the standard library out of componentize-py failed ({}): {}", output.status, tail.join(" / ")));
        }
        match std::fs::rename(&built, &root) {
            Ok(()) => {}
            // Another process was quicker: use its copy.
            Err(_) if root.join("lib/os.py").is_file() => {}
            Err(error) => return Err(format!("moving the library to {}: {error}", root.display())),
        }
        Ok(PythonLibrary { root })
    }

    /// The library [`PythonLibrary::prepare`] would give, if it is
    /// prepared already; `None` if not. Changes nothing.
    pub fn find(componentize_py: &Path, under: &Path) -> Result<Option<PythonLibrary>, String> {
        let root = Self::location(componentize_py, under)?;
        Ok(root.join("lib/os.py").is_file().then_some(PythonLibrary { root }))
    }

    /// Where the library of this toolchain lives under `under`: named after
    /// its version, the copying code and the `tzdata` release.
    fn location(componentize_py: &Path, under: &Path) -> Result<PathBuf, String> {
        let version = Command::new(componentize_py)
            .arg("--version")
            .env_clear()
            .output()
            .map_err(|error| format!("cannot run `{}`: {error}", componentize_py.display()))?;
        let mut hasher = Sha256::new();
        hasher.update(&version.stdout);
        hasher.update(DUMP);
        // A newer tzdata is a new library.
        if let Some(tzdata) = environment_of(componentize_py).as_deref().and_then(tzdata_init) {
            hasher.update(std::fs::read(tzdata).unwrap_or_default());
        }
        Ok(under.join(format!("python-library-{}", hex::encode(&hasher.finalize()[..8]))))
    }

    /// The standard library (guest path `python`).
    pub fn stdlib(&self) -> PathBuf {
        self.root.join("lib")
    }

    /// Packages every build and guest sees (guest path `1`, the build's
    /// site-packages): `tzdata`.
    pub fn site_packages(&self) -> PathBuf {
        self.root.join("site-packages")
    }

    /// The IANA time zone database (guest path `/usr/share/zoneinfo`), if
    /// the toolchain's environment has `tzdata` (`make setup` installs it).
    pub fn zoneinfo(&self) -> Option<PathBuf> {
        Some(self.site_packages().join("tzdata/zoneinfo")).filter(|dir| dir.is_dir())
    }
}

/// The virtual environment componentize-py is installed in (`make setup`'s
/// `.venv`), found through links: `<env>/bin/componentize-py`.
fn environment_of(componentize_py: &Path) -> Option<PathBuf> {
    let tool = componentize_py.canonicalize().ok()?;
    let env = tool.parent()?.parent()?;
    env.join("pyvenv.cfg").is_file().then(|| env.to_path_buf())
}

/// `tzdata/__init__.py` in the environment's site-packages (it names the
/// IANA release).
fn tzdata_init(env: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(env.join("lib")).ok()?;
    lib.flatten().map(|python| python.path().join("site-packages/tzdata/__init__.py")).find(|init| init.is_file())
}
