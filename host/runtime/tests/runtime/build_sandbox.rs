//! The build runs the strategy's top-level code: it must see nothing of
//! the host but its own sources and a read-only standard library, change
//! nothing outside its own temporary directory, and stay within its CPU,
//! memory and time limits, each reported as such.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stratagem_runtime::{BuildError, BuildLimits, StrategySource};

use crate::support::{builder, repo_root};

/// Every directory on the host a build could have reached before (the
/// package directories of the system's Python and of the tool chain's)
/// and the host's temporary directory.
fn host_package_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/lib/python3/dist-packages", "/usr/local/lib/python3.11/dist-packages", "/tmp"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for python in ["python3".into(), repo_root().join(".venv/bin/python")] {
        let Ok(output) = std::process::Command::new(&python)
            .args(["-c", "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"])
            .output()
        else {
            continue;
        };
        dirs.extend(String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from));
    }
    dirs.retain(|dir| dir.is_dir());
    dirs.sort();
    dirs.dedup();
    dirs
}

async fn build_error_with(limits: BuildLimits, source: &str) -> BuildError {
    let source = StrategySource::single("app.py", format!("{source}\n\nasync def run(contact, existing_contact, logger, **kwargs):\n    return contact\n"));
    builder().with_limits(limits).build(&source).await.expect_err("the build fails")
}

async fn build_error(source: &str) -> BuildError {
    build_error_with(BuildLimits::default(), source).await
}

#[tokio::test]
async fn errors_when_build_time_code_reaches_for_the_host_and_the_host_is_unchanged() {
    let dirs = host_package_dirs();
    assert!(!dirs.is_empty());
    for dir in &dirs {
        let _ = std::fs::remove_file(dir.join("stratagem_escape_probe.pth"));
    }
    let source = StrategySource::from_path(&repo_root().join("host/runtime/tests/strategies/build_escape.py")).expect("source");
    let error = builder().build(&source).await.expect_err("the probe always fails its build");
    let BuildError::Python(python) = &error else { panic!("{error:?}") };
    let report: serde_json::Value =
        serde_json::from_str(python.message.strip_prefix("REPORT ").expect("the probe's report")).expect("JSON report");

    // Nothing of the host is visible: no root, no host path, no host file.
    for path in ["/", "/usr/lib/python3/dist-packages", "/usr/local/lib", "/etc", "/root", "/tmp", "/proc/self", "/build"] {
        assert_eq!(report["list"][path]["ok"], false, "listing {path}: {}", report["list"][path]);
        assert_eq!(report["write"][path]["ok"], false, "writing into {path}: {}", report["write"][path]);
    }
    for path in ["/etc/passwd", "/etc/shadow", "/proc/self/environ", "/root/.bash_history", "/build/out.wasm"] {
        assert_eq!(report["read"][path]["ok"], false, "reading {path}: {}", report["read"][path]);
    }
    // The Python path is the build's own sources and the platform's package
    // directory (the time zone database only), both read-only.
    for path in ["/0", "/1"] {
        assert_eq!(report["list"][path]["ok"], true, "{path} is the build's own: {}", report["list"][path]);
        assert_eq!(report["write"][path]["ok"], false, "{path} is read-only: {}", report["write"][path]);
    }
    assert_eq!(report["list"]["/1"]["result"], serde_json::json!(["tzdata"]), "no host packages are visible");
    let sources = report["list"]["/0"]["result"].as_array().expect("the sources directory").clone();
    assert!(sources.contains(&"stratagem_user_sources.py".into()), "{sources:?}");
    assert_eq!(report["list"]["/2"]["ok"], false, "no third entry on the Python path: {}", report["list"]["/2"]);

    // The probe tried to write its file into every place it could name;
    // none of the host's package directories has it.
    for dir in &dirs {
        assert!(!dir.join("stratagem_escape_probe.pth").exists(), "{}", dir.display());
    }
}

#[tokio::test]
async fn errors_when_build_time_code_tries_to_start_a_process() {
    let marker = std::env::temp_dir().join("stratagem-build-fork-marker");
    let _ = std::fs::remove_file(&marker);
    for (code, type_name) in [
        ("import os\nos.fork()", "AttributeError"),
        (&*format!("import subprocess\nsubprocess.run(['/bin/sh', '-c', 'touch {}'])", marker.display()), "OSError"),
    ] {
        let error = build_error(code).await;
        let BuildError::Python(python) = &error else { panic!("{code}: {error:?}") };
        assert_eq!((python.type_name.as_str(), python.line), (type_name, Some(2)), "{code}: {error}");
    }
    assert!(!Path::new(&marker).exists());
}

#[tokio::test]
async fn errors_with_the_memory_limit_when_build_time_code_allocates_too_much() {
    let limits = BuildLimits { memory_bytes: 1 << 30, ..BuildLimits::default() };
    for code in ["BLOB = b'x' * (1200 << 20)", "BLOB = bytearray(4 << 30)"] {
        let error = build_error_with(limits, code).await;
        let BuildError::MemoryLimit { limit_bytes, python: Some(python) } = &error else { panic!("{code}: {error:?}") };
        assert_eq!(*limit_bytes, 1 << 30);
        assert_eq!((python.file.as_deref(), python.line), (Some("app.py"), Some(1)), "{error}");
        assert!(error.to_string().starts_with("memory limit: the build needed more than 1024 MiB of memory"), "{error}");
    }
}

#[tokio::test]
async fn errors_when_the_top_level_state_is_too_large_to_snapshot() {
    let error = build_error("BLOB = b'x' * (600 << 20)").await;
    assert!(matches!(error, BuildError::SnapshotTooLarge), "{error:?}");
    assert!(error.to_string().contains("build large values inside the hook functions"), "{error}");
}

#[tokio::test]
async fn errors_with_the_cpu_limit_when_build_time_code_loops() {
    let limits = BuildLimits { cpu: Duration::from_secs(5), timeout: Duration::from_secs(120), ..BuildLimits::default() };
    let error = build_error_with(limits, "while True:\n    pass").await;
    assert!(matches!(error, BuildError::CpuLimit(cpu) if cpu == Duration::from_secs(5)), "{error:?}");
    assert_eq!(error.to_string(), "the build used all of its 5 s of CPU time; does the strategy's top-level code loop forever?");
}

#[tokio::test]
async fn errors_with_the_timeout_when_build_time_code_sleeps() {
    let limits = BuildLimits { timeout: Duration::from_secs(8), ..BuildLimits::default() };
    let error = build_error_with(limits, "import time\ntime.sleep(3600)").await;
    assert!(matches!(error, BuildError::Timeout(limit) if limit == Duration::from_secs(8)), "{error:?}");
}

#[tokio::test]
async fn works_when_a_build_stays_within_its_limits() {
    // The same limits as above, with top-level work that fits them.
    let limits = BuildLimits { cpu: Duration::from_secs(60), timeout: Duration::from_secs(120), memory_bytes: 1 << 30 };
    let source = StrategySource::single(
        "app.py",
        "TABLE = [i * i for i in range(100_000)]\n\nasync def run(contact, existing_contact, logger, **kwargs):\n    return contact\n",
    );
    let bytes = crate::support::builder_without_cache().with_limits(limits).build(&source).await.expect("builds");
    assert!(bytes.starts_with(b"\0asm"));
}
