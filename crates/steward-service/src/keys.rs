//! Private directories for Steward's state.

use std::fs;
use std::path::{Path, PathBuf};

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Where key files live by default.
#[must_use]
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Where the PostgreSQL backend keeps the subjects' wrapped data keys
/// (`steward_store::vault`); unused with SQLite.
pub fn subject_key_vault(data_dir: &Path) -> PathBuf {
    keys_dir(data_dir).join("subject-keys.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_dir(&dir.path().join("data"));
        create_private_dir(&keys).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        }
        create_private_dir(&keys).unwrap();
    }
}
