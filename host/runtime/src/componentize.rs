//! Python source → WebAssembly component, through componentize-py.
//!
//! The WIT contract and the `stratagem` SDK are compiled into this binary,
//! so a build needs only the componentize-py executable. The strategy's
//! sources are embedded as string literals in a generated module rather
//! than bundled as files: no user-chosen path ever reaches the filesystem,
//! and tracebacks still name the user's files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use tokio::sync::OnceCell;

use crate::atomic_file::{write_atomically, Durability};
use crate::build_sandbox::{limit_hit, BuildLimits, Sandbox, ToolchainMounts, BUILD_ROOT};
use crate::error::{BuildError, PythonBuildError};
use crate::python_library::PythonLibrary;

// `WIT` and `SDK`: (relative path, text) of every file in `wit/` and of
// the SDK's modules, listed by build.rs.
include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Module names the build itself uses; a strategy file may not shadow them.
const RESERVED_MODULES: &[&str] = &[
    "stratagem",
    "stratagem_app",
    "stratagem_platform",
    "stratagem_user_sources",
    "wit_world",
    "componentize_py_types",
    "componentize_py_runtime",
    "componentize_py_async_support",
    "poll_loop",
];

const MAX_SOURCE_BYTES: usize = 1 << 20;
/// What a source bundle starts with ([`StrategySource::to_bundle`]).
const BUNDLE_HEADER: &[u8] = b"stratagem-sources/1\n";
/// The platform's own component (`platform.rs`).
const PLATFORM: &str = include_str!("platform.py");
/// A strategy's own component: its sources are loaded while it is built.
const STRATEGY_APP: &str = "import stratagem_user_sources as sources\n\
from stratagem import _guest\n\
from stratagem._guest import Hooks  # noqa: F401\n\
\n\
_guest.load_or_report(sources.FILES, sources.ENTRY)\n";

/// What componentize-py builds: a strategy, or the platform's component.
enum Target<'a> {
    Strategy(&'a StrategySource),
    Platform,
}

impl Target<'_> {
    fn world(&self) -> &'static str {
        match self {
            Target::Strategy(_) => "strategy",
            Target::Platform => "platform",
        }
    }

    fn app_module(&self) -> &'static str {
        match self {
            Target::Strategy(_) => "stratagem_app",
            Target::Platform => "stratagem_platform",
        }
    }
}
const BUILD_ERROR_MARKER: &str = "STRATAGEM-BUILD-ERROR: ";

/// A strategy's Python sources: one entry file and any modules it imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategySource {
    pub entry: String,
    pub files: BTreeMap<String, String>,
}

impl StrategySource {
    pub fn single(file_name: impl Into<String>, source: impl Into<String>) -> Self {
        let entry = file_name.into();
        Self { files: BTreeMap::from([(entry.clone(), source.into())]), entry }
    }

    /// A `.py` file, or a directory of `.py` files whose entry is `main.py`.
    pub fn from_path(path: &Path) -> Result<Self, BuildError> {
        let invalid = |message: String| BuildError::InvalidSource(message);
        if path.is_dir() {
            let dir = Dir::open_ambient_dir(path, ambient_authority())
                .map_err(|error| invalid(format!("{}: {error}", path.display())))?;
            let mut files = BTreeMap::new();
            collect_py_files(&dir, "", &mut files)?;
            if !files.contains_key("main.py") {
                return Err(invalid(format!(
                    "{}: a strategy directory needs a main.py with the hook functions",
                    path.display()
                )));
            }
            let source = Self { entry: "main.py".into(), files };
            source.validate()?;
            return Ok(source);
        }
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| invalid(format!("{}: not a file name", path.display())))?;
        let bytes = std::fs::read(path).map_err(|error| invalid(format!("{}: {error}", path.display())))?;
        let source = Self::single(name, decode_utf8(name, bytes)?);
        source.validate()?;
        Ok(source)
    }

    pub fn validate(&self) -> Result<(), BuildError> {
        let invalid = |message: String| Err(BuildError::InvalidSource(message));
        if !self.files.contains_key(&self.entry) {
            return invalid(format!("the entry file `{}` is not among the sources", self.entry));
        }
        let total: usize = self.files.values().map(String::len).sum();
        if total > MAX_SOURCE_BYTES {
            return invalid(format!("the sources are {total} bytes; the limit is {MAX_SOURCE_BYTES}"));
        }
        for name in self.files.keys() {
            let Some(stem) = name.strip_suffix(".py") else {
                if is_native_code(name) {
                    return Err(native_code(name));
                }
                return invalid(format!("`{name}` is not a .py file"));
            };
            let segments: Vec<&str> = stem.split('/').collect();
            let identifier = |s: &str| {
                s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            };
            if !segments.iter().all(|segment| identifier(segment)) {
                return invalid(format!(
                    "`{name}` is not a valid module path: use letters, digits and _ separated by /"
                ));
            }
            if name != &self.entry && RESERVED_MODULES.contains(&segments[0]) {
                return invalid(format!("`{name}` would shadow the platform module `{}`; rename it", segments[0]));
            }
        }
        Ok(())
    }

    /// The sources as a version stores them when they run in the
    /// platform's component ([`crate::Platform::strategy`]) rather than as
    /// a component of their own: a header no component starts with, then
    /// the sources as JSON.
    pub fn to_bundle(&self) -> Vec<u8> {
        let mut bytes = BUNDLE_HEADER.to_vec();
        let body = serde_json::json!({"entry": self.entry, "files": self.files});
        serde_json::to_writer(&mut bytes, &body).expect("strings serialize");
        bytes
    }

    /// The sources of [`StrategySource::to_bundle`]'s bytes, checked as an
    /// upload's are; `None` when the bytes are not a bundle (a component).
    pub fn from_bundle(bytes: &[u8]) -> Option<Result<Self, BuildError>> {
        let body = bytes.strip_prefix(BUNDLE_HEADER)?;
        #[derive(serde::Deserialize)]
        struct Bundle {
            entry: String,
            files: BTreeMap<String, String>,
        }
        Some(match serde_json::from_slice::<Bundle>(body) {
            Ok(bundle) => {
                let source = Self { entry: bundle.entry, files: bundle.files };
                source.validate().map(|()| source)
            }
            Err(error) => Err(BuildError::InvalidSource(format!("an unreadable source bundle: {error}"))),
        })
    }

    /// The generated `stratagem_user_sources` module. JSON string literals
    /// are valid Python string literals, so serde_json does the escaping.
    fn sources_module(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(name, source)| format!("{}: {}", json_string(name), json_string(source)))
            .collect();
        format!("ENTRY = {}\nFILES = {{\n{}\n}}\n", json_string(&self.entry), files.join(",\n"))
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn decode_utf8(name: &str, bytes: Vec<u8>) -> Result<String, BuildError> {
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        BuildError::InvalidSource(format!(
            "{name}, line {line}, column {column}: not valid UTF-8; save the file as UTF-8"
        ))
    })
}

fn collect_py_files(dir: &Dir, prefix: &str, files: &mut BTreeMap<String, String>) -> Result<(), BuildError> {
    let io = |error: std::io::Error| BuildError::InvalidSource(format!("{prefix}: {error}"));
    for entry in dir.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() && name != "__pycache__" && !name.starts_with('.') {
            collect_py_files(&entry.open_dir().map_err(io)?, &format!("{path}/"), files)?;
        } else if kind.is_file() && name.ends_with(".py") {
            let bytes = dir.read(&name).map_err(io)?;
            files.insert(path.clone(), decode_utf8(&path, bytes)?);
        } else if kind.is_file() && is_native_code(&name) {
            return Err(native_code(&path));
        }
    }
    Ok(())
}

/// A compiled extension module (or library) of the host's platform.
fn is_native_code(name: &str) -> bool {
    [".so", ".pyd", ".dylib", ".dll"].iter().any(|suffix| name.ends_with(suffix)) || name.contains(".so.")
}

fn native_code(path: &str) -> BuildError {
    BuildError::InvalidSource(format!(
        "`{path}` is native code (a compiled extension): strategies run in a WebAssembly sandbox and can use pure-Python \
         packages only. Vendor a pure-Python package instead, or the package's pure-Python version (many have one)"
    ))
}

/// Runs componentize-py, confined (see [`crate::build_sandbox`]).
#[derive(Debug, Clone)]
pub struct Builder {
    componentize_py: PathBuf,
    bubblewrap: PathBuf,
    limits: BuildLimits,
    cache_dir: Option<PathBuf>,
    /// The most the cache directory holds; the least recently used
    /// components go first.
    cache_limit_bytes: u64,
    /// Found on the first build, then kept: the tool chain does not move.
    mounts: Arc<OnceCell<ToolchainMounts>>,
    /// Its packages are the build's site-packages (`tzdata`, so a
    /// strategy's top level can use `zoneinfo`).
    library: Option<PythonLibrary>,
}

impl Builder {
    pub fn new(componentize_py: impl Into<PathBuf>) -> Self {
        Self {
            componentize_py: componentize_py.into(),
            bubblewrap: "bwrap".into(),
            limits: BuildLimits::default(),
            cache_dir: None,
            cache_limit_bytes: DEFAULT_CACHE_LIMIT_BYTES,
            mounts: Arc::default(),
            library: None,
        }
    }

    /// Builds see `library`'s packages as their site-packages, as the
    /// runtime's guests do ([`crate::RuntimeConfig::python_library`]).
    pub fn with_python_library(mut self, library: PythonLibrary) -> Self {
        self.library = Some(library);
        self
    }

    pub fn with_limits(mut self, limits: BuildLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The bubblewrap executable (default: `bwrap` in /usr/local/bin,
    /// /usr/bin or /bin).
    pub fn with_bubblewrap(mut self, bwrap: impl Into<PathBuf>) -> Self {
        self.bubblewrap = bwrap.into();
        self
    }

    /// Keep built components in `dir`, keyed by [`Builder::cache_key`], so
    /// identical sources are built once.
    pub fn with_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The most the build cache keeps (default 2 GiB).
    pub fn with_cache_limit(mut self, bytes: u64) -> Self {
        self.cache_limit_bytes = bytes;
        self
    }

    /// The componentize-py this builder runs, and its version (`--version`):
    /// what `serve` checks once at start-up and `doctor` reports.
    /// `Err` says what is wrong and how to fix it.
    pub async fn toolchain(&self) -> Result<(PathBuf, String), String> {
        let output = tokio::process::Command::new(&self.componentize_py)
            .arg("--version")
            .env_clear()
            .output()
            .await
            .map_err(|error| self.missing(error))?;
        if !output.status.success() {
            return Err(format!(
                "`{} --version` failed ({}): {}; reinstall it with `make setup`",
                self.componentize_py.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok((self.componentize_py.clone(), String::from_utf8_lossy(&output.stdout).trim().to_owned()))
    }

    /// SHA-256 over everything that determines the output: the sources, the
    /// embedded SDK and contract, and the componentize-py version.
    pub async fn cache_key(&self, source: &StrategySource) -> Result<String, BuildError> {
        self.key(&Target::Strategy(source)).await
    }

    async fn key(&self, target: &Target<'_>) -> Result<String, BuildError> {
        let (_, version) = self.toolchain().await.map_err(BuildError::Toolchain)?;
        let mut hasher = Sha256::new();
        for (name, text) in WIT.iter().chain(SDK) {
            hasher.update(format!("{name}\0{}\0{text}\0", text.len()));
        }
        hasher.update(version.as_bytes());
        if let Some(library) = &self.library {
            hasher.update(library.site_packages().to_string_lossy().as_bytes());
        }
        match target {
            Target::Strategy(source) => hasher.update(source.sources_module()),
            Target::Platform => hasher.update(format!("platform\0{PLATFORM}")),
        }
        Ok(hex::encode(hasher.finalize()))
    }

    fn missing(&self, error: std::io::Error) -> String {
        format!(
            "cannot run `{}` ({error}): install componentize-py next to the stratagem binary, in .venv/bin (`make setup`) or on the PATH, or point `--componentize-py` (STRATAGEM_COMPONENTIZE_PY) at it",
            self.componentize_py.display()
        )
    }

    /// Builds the component (or takes it from the cache); the bytes are
    /// ready for `Runtime::load`.
    pub async fn build(&self, source: &StrategySource) -> Result<Vec<u8>, BuildError> {
        source.validate()?;
        self.build_target(&Target::Strategy(source)).await
    }

    /// The platform's own component (the `platform` world), for
    /// `Runtime::load_platform`: built once per toolchain and cached like
    /// a strategy.
    pub async fn build_platform(&self) -> Result<Vec<u8>, BuildError> {
        self.build_target(&Target::Platform).await
    }

    async fn build_target(&self, target: &Target<'_>) -> Result<Vec<u8>, BuildError> {
        let Some(cache_dir) = &self.cache_dir else {
            return self.componentize(target).await;
        };
        let cache_error = |e: std::io::Error| BuildError::Toolchain(format!("build cache {}: {e}", cache_dir.display()));
        std::fs::create_dir_all(cache_dir).map_err(cache_error)?;
        let dir = Dir::open_ambient_dir(cache_dir, ambient_authority()).map_err(cache_error)?;
        let file = format!("{}.wasm", self.key(target).await?);
        if let Ok(bytes) = dir.read(&file) {
            // Recently used: the last to be evicted.
            let _ = std::fs::File::options()
                .append(true)
                .open(cache_dir.join(&file))
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(bytes);
        }
        let bytes = self.componentize(target).await?;
        write_atomically(&dir, &file, &bytes, Durability::Synced).map_err(cache_error)?;
        if let Err(error) = evict_oldest(&dir, self.cache_limit_bytes) {
            tracing::warn!(dir = %cache_dir.display(), %error, "could not trim the build cache");
        }
        Ok(bytes)
    }

    async fn componentize(&self, target: &Target<'_>) -> Result<Vec<u8>, BuildError> {
        let mounts = self.mounts.get_or_try_init(|| ToolchainMounts::discover(&self.componentize_py)).await?;
        let workdir = tempfile::tempdir().map_err(|e| BuildError::Toolchain(format!("temporary directory: {e}")))?;
        write_tree(workdir.path(), target)
            .map_err(|e| BuildError::Toolchain(format!("writing the build tree: {e}")))?;

        // componentize-py maps `py/` and the active virtual environment's
        // site-packages into the guest: point it at the build's own, empty
        // one (both read-only) instead of the host's package directories.
        let sandbox = Sandbox {
            bubblewrap: &self.bubblewrap,
            mounts,
            limits: &self.limits,
            workdir: workdir.path(),
            read_only: &["wit", "py", "env"],
            env: &[("VIRTUAL_ENV", &format!("{BUILD_ROOT}/env"))],
            site_packages: self.library.as_ref().map(PythonLibrary::site_packages),
        };
        let args = ["-d", "wit", "-w", target.world(), "componentize", "-p", "py", target.app_module(), "-o", "out.wasm"];
        let child = sandbox
            .command(&mounts.tool, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                BuildError::Toolchain(format!(
                    "cannot start the build sandbox ({error}); strategy builds need prlimit (util-linux) and bubblewrap \
                     (`{}`; Debian: apt-get install bubblewrap)",
                    self.bubblewrap.display()
                ))
            })?;
        let output = tokio::time::timeout(self.limits.timeout, child.wait_with_output())
            .await
            .map_err(|_| BuildError::Timeout(self.limits.timeout))?
            .map_err(|e| BuildError::Toolchain(e.to_string()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(report) = stderr.lines().find_map(|line| {
            line.find(BUILD_ERROR_MARKER).map(|at| &line[at + BUILD_ERROR_MARKER.len()..])
        }) {
            let python = parse_build_error(report)?;
            if is_out_of_memory(&python.type_name, &python.message) {
                return Err(BuildError::MemoryLimit { limit_bytes: self.limits.memory_bytes, python: Some(Box::new(python)) });
            }
            return Err(BuildError::Python(Box::new(python)));
        }
        if !output.status.success() {
            if let Some(limit) = limit_hit(&self.limits, output.status, &stderr) {
                return Err(limit);
            }
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(BuildError::Toolchain(format!("exit status {}: {}", output.status, tail.join("\n"))));
        }
        let dir = Dir::open_ambient_dir(workdir.path(), ambient_authority())
            .map_err(|e| BuildError::Toolchain(e.to_string()))?;
        dir.read("out.wasm").map_err(|e| BuildError::Toolchain(format!("reading out.wasm: {e}")))
    }
}

const DEFAULT_CACHE_LIMIT_BYTES: u64 = 2 << 30;

/// Deletes the least recently used components until the cache holds at
/// most `limit` bytes.
fn evict_oldest(dir: &Dir, limit: u64) -> std::io::Result<()> {
    let mut files = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata()?;
        if metadata.is_file() && name.ends_with(".wasm") {
            files.push((metadata.modified()?.into_std(), metadata.len(), name));
        }
    }
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, name) in files {
        if total <= limit {
            break;
        }
        dir.remove_file(&name)?;
        total -= len;
    }
    Ok(())
}

/// Whether a Python exception means the interpreter ran out of memory:
/// `MemoryError`, or a size that does not fit wasm32's address space at
/// all (CPython says `OverflowError` where a 64-bit host would allocate).
pub(crate) fn is_out_of_memory(type_name: &str, message: &str) -> bool {
    type_name == "MemoryError"
        || (type_name == "OverflowError"
            && (message.contains("index-sized integer") || message.contains("too large") || message.contains("too long")))
}

pub(crate) fn write_build_tree(root: &Path, source: &StrategySource) -> std::io::Result<()> {
    write_tree(root, &Target::Strategy(source))
}

fn write_tree(root: &Path, target: &Target<'_>) -> std::io::Result<()> {
    let dir = Dir::open_ambient_dir(root, ambient_authority())?;
    dir.create_dir_all("env/lib/site-packages")?;
    dir.create_dir_all("scratch")?;
    dir.create_dir_all("wit")?;
    for (name, text) in WIT {
        write_with_parents(&dir, &format!("wit/{name}"), text)?;
    }
    dir.create_dir_all("py/stratagem")?;
    for (name, text) in SDK {
        write_with_parents(&dir, &format!("py/stratagem/{name}"), text)?;
    }
    match target {
        Target::Strategy(source) => {
            dir.write("py/stratagem_app.py", STRATEGY_APP)?;
            dir.write("py/stratagem_user_sources.py", source.sources_module())
        }
        Target::Platform => dir.write(format!("py/{}.py", target.app_module()), PLATFORM),
    }
}

fn write_with_parents(dir: &Dir, path: &str, text: &str) -> std::io::Result<()> {
    if let Some((parent, _)) = path.rsplit_once('/') {
        dir.create_dir_all(parent)?;
    }
    dir.write(path, text)
}

fn parse_build_error(report: &str) -> Result<PythonBuildError, BuildError> {
    #[derive(serde::Deserialize)]
    struct Report {
        r#type: String,
        message: String,
        traceback: String,
        file: Option<String>,
        line: Option<u32>,
        column: Option<u32>,
        source: Option<String>,
    }
    let report: Report = serde_json::from_str(report)
        .map_err(|e| BuildError::Toolchain(format!("unreadable build error report ({e}): {report}")))?;
    Ok(PythonBuildError {
        type_name: report.r#type,
        message: report.message,
        file: report.file,
        line: report.line,
        column: report.column,
        source: report.source.map(|line| line.trim_end().to_owned()),
        traceback: report.traceback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_when_a_file_name_escapes_or_shadows() {
        for name in ["../x.py", "/etc/x.py", "a-b.py", "x.txt", "stratagem.py"] {
            let mut source = StrategySource::single("app.py", "");
            source.files.insert(name.into(), String::new());
            assert!(matches!(source.validate(), Err(BuildError::InvalidSource(_))), "{name}");
        }
    }

    #[test]
    fn errors_with_line_and_column_when_source_is_not_utf8() {
        let error = decode_utf8("app.py", b"x = 1\ny = '\xff'\n".to_vec()).expect_err("invalid utf-8");
        assert_eq!(error.to_string(), "invalid strategy source: app.py, line 2, column 6: not valid UTF-8; save the file as UTF-8");
    }

    #[test]
    fn works_when_a_bundle_gives_back_its_sources_and_errors_when_it_is_not_one() {
        let mut source = StrategySource::single("main.py", "from rates import r\n");
        source.files.insert("rates.py".into(), "r = '\u{e9}\"'\n".into());
        let bundle = source.to_bundle();
        assert_eq!(StrategySource::from_bundle(&bundle).expect("a bundle").expect("valid"), source);
        assert!(StrategySource::from_bundle(b"\0asm\x0d\0\x01\0").is_none(), "a component is not a bundle");
        let mut shadowing = source.clone();
        shadowing.files.insert("stratagem_platform.py".into(), String::new());
        assert!(matches!(StrategySource::from_bundle(&shadowing.to_bundle()), Some(Err(BuildError::InvalidSource(_)))));
        let mut cut = bundle.clone();
        cut.truncate(bundle.len() - 2);
        assert!(matches!(StrategySource::from_bundle(&cut), Some(Err(BuildError::InvalidSource(_)))));
    }

    #[test]
    fn works_when_sources_contain_quotes_and_escapes() {
        let source = StrategySource::single("app.py", "s = \"a'b\\n\u{e9}\"\n");
        assert!(source.sources_module().contains(r#""app.py": "s = \"a'b\\n"#));
    }

    #[test]
    fn works_when_every_contract_file_and_sdk_module_is_embedded() {
        let listed = |dir: &str, extension: &str| {
            let mut names: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                .expect("the directory")
                .map(|entry| entry.expect("an entry").file_name().into_string().expect("UTF-8"))
                .filter(|name| name.ends_with(extension))
                .collect();
            names.sort();
            names
        };
        let embedded = |table: &[(&str, &str)]| table.iter().map(|(name, _)| name.to_string()).collect::<Vec<_>>();
        assert_eq!(embedded(WIT), listed("../../wit", ".wit"));
        let mut sdk = listed("../../guest-sdk-python/src/stratagem", ".py");
        sdk.retain(|name| name != "testing.py");
        assert_eq!(embedded(SDK), sdk);
        assert!(SDK.iter().any(|(name, text)| *name == "_guest.py" && text.contains("class Hooks")));
    }
}
