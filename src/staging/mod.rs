//! Staging for bulk import: where a job's pages are written as files for the target to
//! import, and the Parquet encoding they are written in.
//!
//! A staging area is an absolute directory the target's server reads (a self-hosted Milvus
//! with local storage, or a filesystem both mount). Each file is named for its job and task
//! and is unique, so a file that was imported is never written again.

use std::path::{Path, PathBuf};

pub mod parquet;

/// A job's staging area.
#[derive(Debug, Clone)]
pub struct Staging {
    root: PathBuf,
}

/// What makes a file name safe from a task id (`db/collection/partition#k/0`).
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Staging {
    /// The staging area under `root` (the request's `options.staging`, checked absolute).
    pub fn new(root: &str) -> Self {
        Self {
            root: PathBuf::from(root),
        }
    }

    /// The job's directory.
    fn job_dir(&self, job_id: &str) -> PathBuf {
        self.root.join(format!("vecmigrate-{}", slug(job_id)))
    }

    /// A new file for one of `task_id`'s files: never a name used before.
    pub fn new_file(&self, job_id: &str, task_id: &str) -> PathBuf {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        self.job_dir(job_id)
            .join(format!("{}-{}.parquet", slug(task_id), &unique[..12]))
    }

    /// Creates `path` (and its directory) for writing.
    pub fn create(&self, path: &Path) -> std::io::Result<std::fs::File> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::File::create(path)
    }

    /// Removes a file the target has imported (or that will never be imported); a file
    /// already gone is fine.
    pub fn remove(&self, file: &str) {
        if let Err(e) = std::fs::remove_file(file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("could not remove staged file {file}: {e}");
            }
        }
    }

    /// Removes what is left of a job's files (a crashed worker's unfinished ones).
    pub fn remove_job(&self, job_id: &str) {
        let dir = self.job_dir(job_id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("could not remove staging directory {}: {e}", dir.display());
            }
        }
    }
}
