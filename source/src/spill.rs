//! Files for transactions too large to hold in memory, shared by both
//! sources: created in the spill directory (made when missing) and unlinked
//! at once, so the open descriptor is their only name and a crash leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::fs::{File, OpenOptions};

/// What failed, on which path.
#[derive(Debug)]
pub struct SpillError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A new, already unlinked, read-write file in `dir`; its former path
/// (`headwater-{kind}-{pid}-{nanos}.spill`) is returned for messages.
pub async fn create(dir: &Path, kind: &str) -> Result<(PathBuf, File), SpillError> {
    let failed = |op, path: &Path| {
        let path = path.to_owned();
        move |source| SpillError { op, path, source }
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(failed("creating the spill directory", dir))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = dir.join(format!(
        "headwater-{kind}-{}-{nanos:x}.spill",
        std::process::id()
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(failed("creating a spill file", &path))?;
    tokio::fs::remove_file(&path)
        .await
        .map_err(failed("unlinking the new spill file", &path))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    #[tokio::test]
    async fn creates_the_directory_and_leaves_no_name_behind() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spill").join("source");
        let (path, mut file) = create(&dir, "test").await.unwrap();
        assert!(path.starts_with(&dir));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        file.write_all(b"kept by the descriptor").await.unwrap();
        file.seek(std::io::SeekFrom::Start(0)).await.unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "kept by the descriptor");
    }
}
