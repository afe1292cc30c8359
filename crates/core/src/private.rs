//! Files and directories of termloom's state that only their owner may read: session logs and
//! snapshots hold what was typed and printed, the audit log every tool call's arguments (text
//! sent, environment values), the registry the sessions' names and commands. Directories are
//! made `0700` and files `0600` when termloom creates them (Unix; existing ones keep their
//! modes).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` and its missing parents, readable by their owner only.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    builder().recursive(true).create(dir)
}

/// Creates `dir` (not its parents), readable by its owner only.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    builder().create(dir)
}

fn builder() -> DirBuilder {
    let mut b = DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b
}

/// Options that create a file readable and writable by its owner only.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates (or truncates) `path` for writing, readable by its owner only.
pub fn create(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Writes `data` to `path` like `fs::write`, creating the file readable by its owner only.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    create(path)?.write_all(data)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn what_is_created_is_its_owners_only() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        write(&file, b"secret").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"secret");
    }
}
