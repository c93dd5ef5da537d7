//! The confinement of one build process.
//!
//! A strategy's top-level code runs while componentize-py builds it, and
//! componentize-py maps every directory on its Python path into the guest
//! with write access. So a build gets a fresh directory of its own, and
//! the tool runs under bubblewrap: new user, PID, IPC, UTS, cgroup and
//! network namespaces, no capabilities, the system and the tool chain
//! mounted read-only, the build's sources read-only, and only the build
//! directory's scratch space writable. Resource limits (data segment, CPU
//! time, no core dumps) are set with `prlimit` before bubblewrap starts,
//! so they bind the tool and everything it runs; the caller's timeout
//! kills bubblewrap, which takes the sandbox with it (`--die-with-parent`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::error::BuildError;

/// Where the build directory appears inside the sandbox.
pub(crate) const BUILD_ROOT: &str = "/build";

/// Per-build resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildLimits {
    /// Wall-clock time before the build is killed.
    pub timeout: Duration,
    /// CPU time over all of the tool chain's threads.
    pub cpu: Duration,
    /// Writable memory of the build process (its data segment: heap and
    /// every writable private mapping, the guest's linear memory included).
    pub memory_bytes: u64,
}

impl Default for BuildLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(120), cpu: Duration::from_secs(90), memory_bytes: 1 << 30 }
    }
}

/// The read-only directories the tool chain needs besides `/usr`: the
/// Python installation and virtual environment componentize-py runs from.
#[derive(Debug, Clone)]
pub(crate) struct ToolchainMounts {
    /// componentize-py itself, resolved.
    pub(crate) tool: PathBuf,
    paths: Vec<PathBuf>,
}

impl ToolchainMounts {
    /// Asks the tool's own interpreter where it lives. The tool is the
    /// operator's, not a tenant's, so this runs unconfined, once per node.
    pub(crate) async fn discover(componentize_py: &Path) -> Result<Self, BuildError> {
        let missing = |detail: String| {
            BuildError::Toolchain(format!("cannot find componentize-py `{}`: {detail}", componentize_py.display()))
        };
        let tool = resolve_program(componentize_py).ok_or_else(|| missing("not found".into()))?;
        let tool = tool.canonicalize().map_err(|error| missing(error.to_string()))?;
        let mut paths: Vec<PathBuf> = tool.parent().map(Path::to_path_buf).into_iter().collect();
        if let Some(interpreter) = shebang_interpreter(&tool).map_err(|error| missing(error.to_string()))? {
            let probe = Command::new(&interpreter)
                .args(["-I", "-c", PROBE])
                .env_clear()
                .output()
                .await
                .map_err(|error| missing(format!("its interpreter {}: {error}", interpreter.display())))?;
            if !probe.status.success() {
                return Err(missing(format!(
                    "its interpreter {} cannot import componentize_py: {}",
                    interpreter.display(),
                    String::from_utf8_lossy(&probe.stderr).trim()
                )));
            }
            paths.push(interpreter);
            paths.extend(String::from_utf8_lossy(&probe.stdout).lines().map(PathBuf::from));
        }
        Ok(Self { tool, paths: normalize(paths) })
    }
}

/// Prints the directories a componentize-py run reads from.
const PROBE: &str = "import sys, os, componentize_py\n\
for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, \
os.path.dirname(os.path.dirname(componentize_py.__file__)), os.path.realpath(sys.executable)):\n    print(p)";

fn resolve_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    ["/usr/local/bin", "/usr/bin", "/bin"].iter().map(|dir| Path::new(dir).join(program)).find(|path| path.is_file())
}

/// `#!/path/to/python` of a script, or `None` for a binary.
fn shebang_interpreter(tool: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let read = std::fs::File::open(tool)?.read(&mut head)?;
    let head = &head[..read];
    let Some(rest) = head.strip_prefix(b"#!") else { return Ok(None) };
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    Ok(line.split_whitespace().next().map(PathBuf::from))
}

/// Existing directories (files count by their parent), outside `/usr`
/// (mounted whole), each once, parents before children.
fn normalize(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = paths
        .into_iter()
        .filter_map(|path| path.canonicalize().ok())
        .map(|path| if path.is_dir() { path } else { path.parent().map(Path::to_path_buf).unwrap_or(path) })
        .filter(|path| !path.starts_with("/usr") && path != Path::new("/"))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if !kept.iter().any(|parent| dir.starts_with(parent)) {
            kept.push(dir);
        }
    }
    kept
}

/// One confined run: `workdir` appears as [`BUILD_ROOT`], writable;
/// `read_only` names subdirectories of it the build may only read.
pub(crate) struct Sandbox<'a> {
    pub bubblewrap: &'a Path,
    pub mounts: &'a ToolchainMounts,
    pub limits: &'a BuildLimits,
    pub workdir: &'a Path,
    pub read_only: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// Mounted read-only over the build's own, empty site-packages.
    pub site_packages: Option<PathBuf>,
}

impl Sandbox<'_> {
    /// The command that runs `program args…` inside the sandbox, with
    /// `BUILD_ROOT/scratch` as its home and temporary directory.
    pub(crate) fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("prlimit");
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .arg(format!("--data={}", self.limits.memory_bytes))
            .arg(format!("--cpu={}", self.limits.cpu.as_secs().max(1)))
            .arg("--core=0")
            .arg("--")
            .arg(self.bubblewrap)
            .args(["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL"])
            .args(["--uid", "65534", "--gid", "65534", "--clearenv"])
            .args(["--ro-bind", "/usr", "/usr"]);
        // Debian's merged /usr has /bin, /lib… as links; other systems have directories.
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64"] {
            match std::fs::read_link(top) {
                Ok(target) => {
                    command.arg("--symlink").arg(target).arg(top);
                }
                Err(_) if Path::new(top).is_dir() => {
                    command.args(["--ro-bind", top, top]);
                }
                Err(_) => {}
            }
        }
        // Before the tool chain's binds: a tool chain under /tmp (a
        // checkout there) would otherwise be hidden by the empty /tmp.
        command.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        for path in &self.mounts.paths {
            command.arg("--ro-bind").arg(path).arg(path);
        }
        command.arg("--bind").arg(self.workdir).arg(BUILD_ROOT);
        for dir in self.read_only {
            command.arg("--ro-bind").arg(self.workdir.join(dir)).arg(format!("{BUILD_ROOT}/{dir}"));
        }
        if let Some(packages) = &self.site_packages {
            command.arg("--ro-bind").arg(packages).arg(format!("{BUILD_ROOT}/env/lib/site-packages"));
        }
        let scratch = format!("{BUILD_ROOT}/scratch");
        command
            .args(["--chdir", BUILD_ROOT])
            .args(["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"])
            .args(["--setenv", "HOME", &scratch, "--setenv", "TMPDIR", &scratch]);
        for (name, value) in self.env {
            command.args(["--setenv", name, value]);
        }
        command.arg("--").arg(program).args(args);
        command
    }
}

/// What a failed confined run ran into, from its exit status and output.
pub(crate) fn limit_hit(limits: &BuildLimits, status: std::process::ExitStatus, stderr: &str) -> Option<BuildError> {
    use std::os::unix::process::ExitStatusExt;
    // bubblewrap passes on the tool's exit code; a signal shows as 128 + signal.
    let signal = status.signal().or_else(|| status.code().filter(|code| *code > 128).map(|code| code - 128));
    if stderr.contains("memory allocation of") || stderr.contains("Cannot allocate memory") {
        return Some(BuildError::MemoryLimit { limit_bytes: limits.memory_bytes, python: None });
    }
    if stderr.contains("fuel allocated for hostcalls has been exhausted") {
        return Some(BuildError::SnapshotTooLarge);
    }
    match signal {
        // SIGKILL or SIGXCPU: the CPU limit (the timeout is reported by the caller).
        Some(9) | Some(24) => Some(BuildError::CpuLimit(limits.cpu)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_mounts_are_deduplicated_and_usr_is_left_out() {
        let temp = tempfile::tempdir().expect("temp dir");
        let base = temp.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(base.join("venv/lib")).expect("dirs");
        std::fs::write(base.join("venv/lib/python"), "").expect("file");
        let kept = normalize(vec![
            base.join("venv/lib/python"),
            base.join("venv"),
            base.join("venv/lib"),
            "/usr/lib".into(),
            base.join("missing"),
        ]);
        assert_eq!(kept, vec![base.join("venv")]);
    }

    #[test]
    fn works_when_a_script_names_its_interpreter() {
        let temp = tempfile::tempdir().expect("temp dir");
        let script = temp.path().join("tool");
        std::fs::write(&script, "#!/opt/py/bin/python3 -E\nprint(1)\n").expect("script");
        assert_eq!(shebang_interpreter(&script).expect("reads"), Some(PathBuf::from("/opt/py/bin/python3")));
        std::fs::write(&script, b"\x7fELF\x02").expect("binary");
        assert_eq!(shebang_interpreter(&script).expect("reads"), None);
    }
}
