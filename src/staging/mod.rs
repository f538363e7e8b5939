//! Staging for bulk import: where a job's pages are written as files for the target to
//! import, and the Parquet encoding they are written in.
//!
//! A staging area is either an absolute directory the target's server reads (a self-hosted
//! Milvus with local storage, or a filesystem both mount), or an S3 prefix
//! (`s3://bucket/prefix`) that Zilliz Cloud reads with short-lived read-only credentials for
//! the job's files alone. A file is written locally (in S3's case to a scratch directory, then
//! uploaded when sealed). Each file is named for its job and task and is unique, so a file that
//! was imported is never written again.

use std::path::{Path, PathBuf};

pub mod parquet;
mod s3;

pub use s3::ReadGrant;

/// Where `options.staging` says files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute directory.
    Directory(PathBuf),
    /// An S3 bucket and a key prefix (without slashes at either end; may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix the job's files go under.
        prefix: String,
    },
}

impl Location {
    /// Parses `options.staging`: `s3://bucket[/prefix]` or an absolute directory path. The
    /// error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !valid {
                return Err(format!(
                    "`{}` is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)",
                    crate::domain::cluster::printable(bucket)
                ));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if text.contains("://") {
            return Err("give s3://bucket/prefix or an absolute directory path".into());
        }
        if !Path::new(text).is_absolute() {
            return Err(format!(
                "`{}` is not an absolute directory path (the target's server reads files by absolute path)",
                crate::domain::cluster::printable(text)
            ));
        }
        Ok(Self::Directory(PathBuf::from(text)))
    }

    /// True for an S3 prefix.
    pub fn is_s3(&self) -> bool {
        matches!(self, Self::S3 { .. })
    }
}

/// Why staging a file failed.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// `options.staging` is not a staging location.
    #[error("options.staging: {0}")]
    Location(String),
    /// A local file could not be written, read or removed.
    #[error("cannot write staged file {file}: {source}; check that options.staging (or, for S3, the temporary directory) is a directory this process can write, with room for a file")]
    Local {
        /// The file.
        file: String,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// An S3 or STS call failed.
    #[error("staging in S3 cannot {what}: {detail}")]
    Aws {
        /// What was being done (`upload s3://…`).
        what: String,
        /// The service's error code and message.
        detail: String,
        /// Whether trying again may succeed (throttling, a 5xx, no answer).
        transient: bool,
    },
}

impl StagingError {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Aws {
                transient: true,
                ..
            }
        )
    }
}

/// One staged file: where this process writes it, and the name the target imports it by (the
/// same path for a directory; `s3://bucket/key` for S3).
#[derive(Debug, Clone)]
pub struct StagedPath {
    /// The local file written.
    pub local: PathBuf,
    /// What the task records and the target is given.
    pub name: String,
}

/// A job's staging area.
#[derive(Debug, Clone)]
pub enum Staging {
    /// An absolute directory the target reads.
    Directory(PathBuf),
    /// An S3 prefix, written through a local scratch directory.
    S3(s3::Bucket),
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

/// The directory (or key segment) of a job's files.
fn job_dir(job_id: &str) -> String {
    format!("vecmigrate-{}", slug(job_id))
}

impl Staging {
    /// The staging area `options.staging` names; `read_role` is the IAM role whose
    /// credentials, narrowed to a job's files, are handed to a target that reads S3.
    pub async fn open(location: &str, read_role: Option<&str>) -> Result<Self, StagingError> {
        match Location::parse(location).map_err(StagingError::Location)? {
            Location::Directory(root) => Ok(Self::Directory(root)),
            Location::S3 { bucket, prefix } => {
                Ok(Self::S3(s3::Bucket::open(bucket, prefix, read_role).await))
            }
        }
    }

    /// A new file for one of `task_id`'s files: never a name used before.
    pub fn new_file(&self, job_id: &str, task_id: &str) -> StagedPath {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let file = format!("{}-{}.parquet", slug(task_id), &unique[..12]);
        match self {
            Self::Directory(root) => {
                let local = root.join(job_dir(job_id)).join(file);
                StagedPath {
                    name: local.to_string_lossy().into_owned(),
                    local,
                }
            }
            Self::S3(b) => b.new_file(&job_dir(job_id), &file),
        }
    }

    /// Creates `path`'s local file (and its directory) for writing.
    pub fn create(&self, path: &StagedPath) -> Result<std::fs::File, StagingError> {
        let local = |source| StagingError::Local {
            file: path.local.display().to_string(),
            source,
        };
        if let Some(dir) = path.local.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        std::fs::File::create(&path.local).map_err(local)
    }

    /// Drops a file that was never published (a turn that stopped while staging it).
    pub fn discard(&self, path: &StagedPath) {
        remove_local(&path.local);
    }

    /// Makes a sealed file readable by the target under its name: nothing to do for a
    /// directory; for S3, uploads it and removes the local copy.
    pub async fn publish(&self, path: &StagedPath) -> Result<(), StagingError> {
        match self {
            Self::Directory(_) => Ok(()),
            Self::S3(b) => b.publish(path).await,
        }
    }

    /// Short-lived credentials that read the job's files and nothing else, for a target that
    /// reads S3 (`None` for a directory).
    pub async fn read_grant(&self, job_id: &str) -> Result<Option<ReadGrant>, StagingError> {
        match self {
            Self::Directory(_) => Ok(None),
            Self::S3(b) => b.read_grant(&job_dir(job_id)).await.map(Some),
        }
    }

    /// Whether a staged file is still there for the target to read, by the name a task
    /// recorded.
    pub async fn exists(&self, name: &str) -> Result<bool, StagingError> {
        match self {
            Self::Directory(_) => Ok(Path::new(name).exists()),
            Self::S3(b) => b.exists(name).await,
        }
    }

    /// Removes a file the target has imported (or that will never be imported), by the name
    /// a task recorded; a file already gone is fine.
    pub async fn remove(&self, name: &str) {
        match self {
            Self::Directory(_) => remove_local(Path::new(name)),
            Self::S3(b) => b.remove(name).await,
        }
    }

    /// Removes what is left of a job's files (a crashed worker's unfinished ones).
    pub async fn remove_job(&self, job_id: &str) {
        let dir = job_dir(job_id);
        match self {
            Self::Directory(root) => remove_local_dir(&root.join(dir)),
            Self::S3(b) => b.remove_job(&dir).await,
        }
    }
}

/// Removes a local file; one already gone is fine.
fn remove_local(file: &Path) {
    if let Err(e) = std::fs::remove_file(file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("could not remove staged file {}: {e}", file.display());
        }
    }
}

/// Removes a local directory and what it holds; one already gone is fine.
fn remove_local_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("could not remove staging directory {}: {e}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_locations_parse_and_name_what_is_wrong() {
        assert_eq!(
            Location::parse("s3://vm-stage/jobs/").unwrap(),
            Location::S3 {
                bucket: "vm-stage".into(),
                prefix: "jobs".into()
            }
        );
        assert_eq!(
            Location::parse("s3://vm-stage").unwrap(),
            Location::S3 {
                bucket: "vm-stage".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("/srv/stage").unwrap(),
            Location::Directory("/srv/stage".into())
        );
        for (bad, words) in [
            ("s3://Bad_Bucket/p", "not an S3 bucket name"),
            ("s3://", "not an S3 bucket name"),
            ("gs://b/p", "s3://bucket/prefix"),
            ("stage", "not an absolute directory"),
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }
}
