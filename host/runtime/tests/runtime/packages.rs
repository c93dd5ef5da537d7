//! Third-party packages vendored into a strategy upload, as `pip install
//! --target` lays them out: a real pure-Python one from PyPI
//! (python-dateutil and its dependency six, installed by `make setup`)
//! builds and runs, modules imported inside a hook included; one with
//! native code is refused, naming the file.

use std::path::{Path, PathBuf};

use serde_json::json;
use stratagem_runtime::{BuildError, Hook, StrategySource};

use crate::support::{builder, contact, options, repo_root, runtime};

/// The site-packages of the project's environment.
fn site_packages() -> PathBuf {
    let lib = repo_root().join(".venv/lib");
    let python = std::fs::read_dir(&lib).expect(".venv/lib: run `make setup`").flatten().next().expect("a python directory");
    python.path().join("site-packages")
}

/// Copies the `.py` files of `from` (a file or a package) into `to`.
fn vendor(from: &Path, to: &Path) {
    if from.is_file() {
        std::fs::copy(from, to).expect("copy");
        return;
    }
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("package").flatten() {
        let name = entry.file_name();
        if entry.path().is_dir() || name.to_string_lossy().ends_with(".py") {
            vendor(&entry.path(), &to.join(name));
        }
    }
}

const MAIN: &str = r#"from dateutil import parser
from dateutil.relativedelta import relativedelta


async def run(contact, existing_contact, logger, **kwargs):
    due = parser.isoparse(contact.parameters["due"])
    # The last day of the next month, whatever its length.
    contact.internal_data["follow_up"] = (due + relativedelta(months=+1, day=31)).date().isoformat()
    from dateutil.easter import easter  # first imported here, at run time

    contact.internal_data["easter"] = easter(due.year + 1).isoformat()
    return contact
"#;

#[tokio::test]
async fn works_when_a_pure_python_package_from_pypi_is_vendored_into_the_strategy() {
    let dir = tempfile::tempdir().expect("dir");
    vendor(&site_packages().join("dateutil"), &dir.path().join("dateutil"));
    vendor(&site_packages().join("six.py"), &dir.path().join("six.py"));
    std::fs::write(dir.path().join("main.py"), MAIN).expect("main.py");
    let source = StrategySource::from_path(dir.path()).expect("a strategy package");
    assert!(source.files.len() > 10 && source.files.contains_key("dateutil/relativedelta.py"), "{:?}", source.files.keys());

    let component = builder().build(&source).await.unwrap_or_else(|error| panic!("{error}"));
    let (strategy, _) = runtime().load(&component).expect("loads");
    let hook = Hook::DataLoad { contact: contact(json!({"due": "2026-01-15"})), existing: None };
    let contact = strategy.invoke(&hook, &options()).await.result.unwrap_or_else(|error| panic!("{error}")).expect("contact");
    assert_eq!(contact.internal_data["follow_up"], "2026-02-28");
    assert_eq!(contact.internal_data["easter"], "2027-03-28");
}

#[tokio::test]
async fn errors_when_a_vendored_package_has_native_code() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("main.py"), "import fastjson\n").expect("main.py");
    std::fs::create_dir(dir.path().join("fastjson")).expect("package");
    std::fs::write(dir.path().join("fastjson/__init__.py"), "from ._speedups import loads\n").expect("init");
    std::fs::write(dir.path().join("fastjson/_speedups.cpython-311-x86_64-linux-gnu.so"), b"\x7fELF\x02\x01\x01").expect("so");
    match StrategySource::from_path(dir.path()) {
        Err(BuildError::InvalidSource(message)) => assert_eq!(
            message,
            "`fastjson/_speedups.cpython-311-x86_64-linux-gnu.so` is native code (a compiled extension): strategies run in a \
             WebAssembly sandbox and can use pure-Python packages only. Vendor a pure-Python package instead, or the package's \
             pure-Python version (many have one)"
        ),
        other => panic!("expected the native code to be refused, got {other:?}"),
    }
}
