//! The request a `run` starts: read from a spec file (or standard input), or built from flags
//! for the common case, then completed by the flags that apply to both (tokens, TLS files,
//! webhook, options) and validated like any other request.

use std::path::{Path, PathBuf};

use super::args::RunArgs;
use super::exit::{invalid, Failure};
use crate::domain::{
    ClusterSpec, CollectionSpec, DatabaseSpec, FieldError, MigrationRequest, Options, Secret,
    TlsSpec, WebhookSpec,
};

/// Builds the request from `run`'s flags or spec file.
pub fn request_from_args(args: &RunArgs) -> Result<MigrationRequest, Failure> {
    let mut request = match &args.spec {
        Some(path) => from_spec(path)?,
        None => from_flags(args)?,
    };
    apply_flags(args, &mut request);
    request
        .refuse_service_fields()
        .and_then(|_| request.validate(chrono::Utc::now()))
        .map_err(|e| spec_error(args.spec.as_deref().unwrap_or("flags".as_ref()), &e))?;
    Ok(request)
}

/// The request in a spec file (`-` for standard input).
fn from_spec(path: &Path) -> Result<MigrationRequest, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| invalid(format!("cannot read the spec from standard input: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read spec {}: {e}", path.display())))?
    };
    MigrationRequest::from_json(&text).map_err(|e| spec_error(path, &e))
}

/// The request for `--source-uri`, `--target-uri`, `--database` and `--collection`.
fn from_flags(args: &RunArgs) -> Result<MigrationRequest, Failure> {
    let side = |uri: &Option<String>, id: &Option<String>| match (uri, id) {
        (Some(uri), _) => Some(ClusterSpec::new(uri.clone())),
        (None, Some(id)) => Some(ClusterSpec::by_id(id.clone())),
        (None, None) => None,
    };
    let source = side(&args.source_uri, &args.source_cluster_id).ok_or_else(|| {
        invalid("give --spec FILE, or --source-uri (or --source-cluster-id) and --target-uri (or --target-cluster-id)")
    })?;
    let target = side(&args.target_uri, &args.target_cluster_id)
        .ok_or_else(|| invalid("--target-uri (or --target-cluster-id) is missing"))?;
    let collections = args
        .collection
        .iter()
        .map(|c| match c.split_once(':') {
            Some((name, target)) => CollectionSpec {
                target_name: Some(target.into()),
                ..CollectionSpec::named(name)
            },
            None => CollectionSpec::named(c.as_str()),
        })
        .collect();
    Ok(MigrationRequest {
        idempotency_key: None,
        dry_run: false,
        source,
        target,
        databases: vec![DatabaseSpec {
            name: args.database.clone().unwrap_or_else(|| "default".into()),
            target_name: args.target_database.clone(),
            collections,
        }],
        options: Options::default(),
        webhook: None,
    })
}

/// The flags that complete any request: options, tokens, TLS files and the webhook. A value
/// the spec gives already is kept.
fn apply_flags(args: &RunArgs, request: &mut MigrationRequest) {
    if let Some(key) = &args.idempotency_key {
        request.idempotency_key = Some(key.clone());
    }
    let o = &mut request.options;
    o.batch_size = args.batch_size.unwrap_or(o.batch_size);
    o.max_workers = args.run.workers.unwrap_or(o.max_workers);
    o.load_after |= args.load_after;
    o.wait_for_index |= args.wait_for_index;
    o.verify = args.verify.unwrap_or(o.verify);
    o.verify_sample_size = args.verify_sample_size.unwrap_or(o.verify_sample_size);
    o.not_after = args.not_after.or(o.not_after);
    o.on_count_mismatch = args.on_count_mismatch.unwrap_or(o.on_count_mismatch);
    o.max_repairs = args.max_repairs.unwrap_or(o.max_repairs);
    o.count_ranges &= !args.no_range_counts;
    o.max_write_mb_per_s = args.max_write_mb_per_s.or(o.max_write_mb_per_s);
    o.max_outage = args.max_outage.unwrap_or(o.max_outage);
    o.write_mode = args.write_mode.unwrap_or(o.write_mode);
    o.staging = args.staging.clone().or(o.staging.take());
    o.import_file_mb = args.import_file_mb.unwrap_or(o.import_file_mb);
    let token = |t: &Option<String>| t.clone().map(Secret::new);
    if request.source.token.is_none() {
        request.source.token = token(&args.run.source_token);
    }
    if request.target.token.is_none() {
        request.target.token = token(&args.run.target_token);
    }
    tls_from_flags(
        &mut request.source,
        [
            &args.source_ca_cert,
            &args.source_client_cert,
            &args.run.source_client_key,
        ],
    );
    tls_from_flags(
        &mut request.target,
        [
            &args.target_ca_cert,
            &args.target_client_cert,
            &args.run.target_client_key,
        ],
    );
    if let Some(url) = &args.webhook_url {
        request.webhook = Some(WebhookSpec {
            url: url.clone(),
            secret: token(&args.run.webhook_secret),
            secret_arn: None,
            progress_every_seconds: args.webhook_progress_every,
            sealed_secret: None,
        });
    } else if let Some(w) = request.webhook.as_mut() {
        if w.secret.is_none() && w.secret_arn.is_none() {
            w.secret = token(&args.run.webhook_secret);
        }
    }
}

/// Fills a cluster's TLS file settings from `--{role}-ca-cert`, `--{role}-client-cert` and
/// `--{role}-client-key` where the spec gives none. The record keeps the paths, so `resume`
/// reads the files again.
fn tls_from_flags(spec: &mut ClusterSpec, [ca, cert, key]: [&Option<PathBuf>; 3]) {
    if ca.is_none() && cert.is_none() && key.is_none() {
        return;
    }
    let tls = spec.tls.get_or_insert_with(TlsSpec::default);
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if tls.ca_cert.is_none() && tls.ca_cert_secret_arn.is_none() {
        tls.ca_cert_file = path(ca).or(tls.ca_cert_file.take());
    }
    if tls.client_cert.is_none() {
        tls.client_cert_file = path(cert).or(tls.client_cert_file.take());
    }
    if !tls.has_client_key() {
        tls.client_key_file = path(key);
    }
}

/// An invalid request, naming where it came from and the field.
fn spec_error(path: &Path, e: &FieldError) -> Failure {
    let at = if e.field.is_empty() {
        String::new()
    } else {
        format!(" at `{}`", e.field)
    };
    invalid(format!(
        "invalid request in {}{at}: {}",
        path.display(),
        e.message
    ))
}

/// A stored token is only ever the redaction marker: ask for it again if one was used.
pub(super) fn token_for(
    spec: &ClusterSpec,
    given: Option<&str>,
    role: &str,
) -> Result<Option<Secret>, Failure> {
    match (given, &spec.token) {
        (Some(t), _) => Ok(Some(Secret::new(t))),
        (None, Some(_)) => Err(invalid(format!(
            "the job was started with a {role} token, which is never stored; pass --{role}-token or set VECMIGRATE_{}_TOKEN",
            role.to_uppercase()
        ))),
        (None, None) => Ok(None),
    }
}
