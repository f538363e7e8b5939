//! Staging in S3: files written in a local scratch directory are uploaded when sealed (in
//! parts of [`PART_BYTES`] past that size), removed once imported, and read by the target with
//! credentials from [`Bucket::read_grant`]: the read role assumed for an hour with a session
//! policy that allows reading the job's own files and nothing else.
//!
//! A custom S3 endpoint (`AWS_ENDPOINT_URL_S3`: MinIO, another S3-compatible store, an
//! emulator) is addressed path-style, as such stores expect; AWS itself virtual-hosted.

use std::path::PathBuf;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use chrono::{DateTime, Utc};

use super::{remove_local, remove_local_dir, StagedPath, StagingError};
use crate::domain::Secret;

/// Files up to this size go up in one request; larger ones in parts of this size.
const PART_BYTES: u64 = 16 * 1024 * 1024;
/// How long handed-out read credentials last (the most a role assumed by a role may have).
const GRANT_SECONDS: i32 = 3600;

/// Credentials that read one job's staged files, for a target that imports from S3. Only the
/// access key id prints; the secret key and the session token are [`Secret`]s.
#[derive(Debug, Clone)]
pub struct ReadGrant {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token.
    pub session_token: Secret,
    /// When they expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The session policy of a read grant: reading the objects under `files` (a key prefix ending
/// in `/`) of `bucket`, and listing that prefix; nothing else.
fn read_policy(partition: &str, bucket: &str, files: &str) -> serde_json::Value {
    let bucket_arn = format!("arn:{partition}:s3:::{bucket}");
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [format!("{bucket_arn}/{files}*")]},
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn],
             "Condition": {"StringLike": {"s3:prefix": [format!("{files}*")]}}},
        ]
    })
}

/// An S3 staging prefix and the clients that use it.
#[derive(Debug, Clone)]
pub struct Bucket {
    bucket: String,
    prefix: String,
    read_role: Option<String>,
    scratch: PathBuf,
    s3: aws_sdk_s3::Client,
    sts: aws_sdk_sts::Client,
    partition: &'static str,
}

impl Bucket {
    /// The prefix `prefix` of `bucket`, with clients from the environment's AWS configuration.
    pub(super) async fn open(bucket: String, prefix: String, read_role: Option<&str>) -> Self {
        let config = crate::aws::config().await;
        let custom_endpoint = crate::env::text("AWS_ENDPOINT_URL_S3")
            .or_else(|| crate::env::text("AWS_ENDPOINT_URL"))
            .is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(custom_endpoint)
                .build(),
        );
        let partition = match config.region().map(|r| r.as_ref().to_owned()) {
            Some(r) if r.starts_with("cn-") => "aws-cn",
            Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
            _ => "aws",
        };
        Self {
            scratch: std::env::temp_dir().join("vecmigrate-staging"),
            sts: aws_sdk_sts::Client::new(&config),
            s3,
            bucket,
            prefix,
            read_role: read_role.map(str::to_owned),
            partition,
        }
    }

    /// The key of a file of the job directory `dir`.
    fn key(&self, dir: &str, file: &str) -> String {
        if self.prefix.is_empty() {
            format!("{dir}/{file}")
        } else {
            format!("{}/{dir}/{file}", self.prefix)
        }
    }

    /// The key prefix of the job directory `dir` (with its slash).
    fn dir_prefix(&self, dir: &str) -> String {
        self.key(dir, "")
    }

    pub(super) fn new_file(&self, dir: &str, file: &str) -> StagedPath {
        StagedPath {
            local: self.scratch.join(dir).join(file),
            name: format!("s3://{}/{}", self.bucket, self.key(dir, file)),
        }
    }

    /// The key and scratch file of a name this bucket gave.
    fn parts_of<'a>(&self, name: &'a str) -> Option<(&'a str, PathBuf)> {
        let key = name
            .strip_prefix("s3://")?
            .strip_prefix(self.bucket.as_str())?
            .strip_prefix('/')?;
        let mut tail = key.rsplitn(3, '/');
        let (file, dir) = (tail.next()?, tail.next()?);
        Some((key, self.scratch.join(dir).join(file)))
    }

    fn failed<E, R>(what: String, e: &aws_sdk_s3::error::SdkError<E, R>) -> StagingError
    where
        E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        StagingError::Aws {
            what,
            detail: crate::aws::error_line(e),
            transient: crate::aws::is_transient(e),
        }
    }

    pub(super) async fn publish(&self, path: &StagedPath) -> Result<(), StagingError> {
        let Some((key, _)) = self.parts_of(&path.name) else {
            return Err(StagingError::Location(format!(
                "{} is not a file of s3://{}",
                path.name, self.bucket
            )));
        };
        let size = std::fs::metadata(&path.local)
            .map_err(|source| StagingError::Local {
                file: path.local.display().to_string(),
                source,
            })?
            .len();
        let what = || format!("upload {}", path.name);
        if size <= PART_BYTES {
            let body =
                ByteStream::from_path(&path.local)
                    .await
                    .map_err(|e| StagingError::Local {
                        file: path.local.display().to_string(),
                        source: std::io::Error::other(e),
                    })?;
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map_err(|e| Self::failed(what(), &e))?;
        } else {
            self.upload_parts(key, &path.local, size).await?;
        }
        remove_local(&path.local);
        Ok(())
    }

    /// A multipart upload of `local` (`size` bytes) to `key`; an upload that fails is aborted.
    async fn upload_parts(
        &self,
        key: &str,
        local: &std::path::Path,
        size: u64,
    ) -> Result<(), StagingError> {
        let what = || format!("upload s3://{}/{key}", self.bucket);
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Self::failed(what(), &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let uploaded = async {
            let mut parts = Vec::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < size {
                let length = PART_BYTES.min(size - offset);
                let body = ByteStream::read_from()
                    .path(local)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| StagingError::Local {
                        file: local.display().to_string(),
                        source: std::io::Error::other(e),
                    })?;
                let part = self
                    .s3
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Self::failed(what(), &e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                );
                offset += length;
                number += 1;
            }
            self.s3
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| Self::failed(what(), &e))?;
            Ok(())
        }
        .await;
        if uploaded.is_err() {
            // The bucket's lifecycle rule aborts what this leaves too.
            let _ = self
                .s3
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        uploaded
    }

    pub(super) async fn read_grant(&self, dir: &str) -> Result<ReadGrant, StagingError> {
        let Some(role) = &self.read_role else {
            return Err(StagingError::Location(
                "a target that imports from S3 needs read credentials for the staged files: set VECMIGRATE_STAGING_READ_ROLE_ARN to a role this process may assume that can read the staging bucket (template.yaml creates one)".into(),
            ));
        };
        let files = self.dir_prefix(dir);
        let policy = read_policy(self.partition, &self.bucket, &files);
        let session: String = format!("vecmigrate-{dir}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(*c))
            .take(64)
            .collect();
        let answer = self
            .sts
            .assume_role()
            .role_arn(role)
            .role_session_name(session)
            .policy(policy.to_string())
            .duration_seconds(GRANT_SECONDS)
            .send()
            .await
            .map_err(|e| Self::failed(format!("assume {role} to read {files}"), &e))?;
        let Some(c) = answer.credentials() else {
            return Err(StagingError::Aws {
                what: format!("assume {role}"),
                detail: "STS answered without credentials".into(),
                transient: false,
            });
        };
        Ok(ReadGrant {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Secret::new(c.secret_access_key()),
            session_token: Secret::new(c.session_token()),
            expires_at: DateTime::from_timestamp(c.expiration().secs(), 0),
        })
    }

    pub(super) async fn exists(&self, name: &str) -> Result<bool, StagingError> {
        let Some((key, _)) = self.parts_of(name) else {
            return Ok(false);
        };
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(Self::failed(format!("look for {name}"), &e)),
        }
    }

    pub(super) async fn remove(&self, name: &str) {
        let Some((key, local)) = self.parts_of(name) else {
            tracing::warn!("{name} is not a staged file of s3://{}", self.bucket);
            return;
        };
        remove_local(&local);
        if let Err(e) = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            tracing::warn!(
                "could not remove staged file {name} (the bucket's lifecycle rule will): {}",
                crate::aws::error_line(&e)
            );
        }
    }

    pub(super) async fn remove_job(&self, dir: &str) {
        remove_local_dir(&self.scratch.join(dir));
        let prefix = self.dir_prefix(dir);
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(
                        "could not list s3://{}/{prefix} to remove what is left (the bucket's lifecycle rule will): {}",
                        self.bucket,
                        crate::aws::error_line(&e)
                    );
                    return;
                }
            };
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let name = format!("s3://{}/{key}", self.bucket);
                    self.remove(&name).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_grant_reads_the_jobs_own_files_and_nothing_else() {
        let p = read_policy("aws", "stage-b", "staging/vecmigrate-mig-1/");
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Action"], serde_json::json!(["s3:GetObject"]));
        assert_eq!(
            statements[0]["Resource"],
            serde_json::json!(["arn:aws:s3:::stage-b/staging/vecmigrate-mig-1/*"])
        );
        assert_eq!(
            statements[1]["Action"],
            serde_json::json!(["s3:ListBucket"])
        );
        assert_eq!(
            statements[1]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["staging/vecmigrate-mig-1/*"])
        );
        assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
    }
}
