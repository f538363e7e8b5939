//! The jobs page (`vecmigrate serve`): a small HTTP server over a job store that shows the
//! jobs and each job as HTML ([`pages`]) and cancels a job on a same-origin POST. No script,
//! no build step, nothing fetched from elsewhere: the pages and their stylesheet come from
//! this binary.

mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::domain::{JobStatus, Report};
use crate::engine::Engine;
use crate::entrypoints::api_error::ApiError;
use crate::store::JobStore;

/// Jobs on one page of the list.
pub const PAGE_SIZE: usize = 20;
/// How long a connection may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The jobs page of one store: what it reads, the engine that cancels, and how the commands
/// it shows name the store.
pub struct JobsPage {
    engine: Engine,
    store: Arc<dyn JobStore>,
    /// The global flags that name this store on a command line (`--store PATH`, …).
    store_flags: String,
    /// Bound to a loopback address: only loopback host names are answered, so that a web page
    /// elsewhere cannot reach it through DNS rebinding.
    loopback: bool,
}

/// A page to answer with: its status and HTML, or a redirect.
enum Answer {
    Html(StatusCode, String),
    SeeOther(String),
}

impl JobsPage {
    /// The jobs page of `store`; `store_flags` name it in the commands the pages show.
    pub fn new(engine: Engine, store: Arc<dyn JobStore>, store_flags: String) -> Self {
        Self {
            engine,
            store,
            store_flags,
            loopback: true,
        }
    }

    /// Answers on `listener` until the process ends.
    pub async fn serve(mut self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.loopback = listener.local_addr()?.ip().is_loopback();
        let site = Arc::new(self);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, a reset before accept: the next one may do.
                    tracing::warn!("jobs page: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let site = site.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let site = site.clone();
                    async move { Ok::<_, Infallible>(site.answer(req).await) }
                });
                // A client that never finishes its headers is dropped, not kept for ever.
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!("jobs page connection: {e}");
                }
            });
        }
    }

    /// One request's response.
    async fn answer<B>(&self, req: Request<B>) -> Response<Full<Bytes>> {
        // Two Host headers could each pass a different check: a request has one (RFC 9112).
        if req.headers().get_all(HOST).iter().count() > 1 {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error(400, "a request has one Host header, not several"),
            );
        }
        if !self.host_allowed(header(&req, HOST)) {
            return html(
                StatusCode::MISDIRECTED_REQUEST,
                pages::error(
                    421,
                    "this jobs page answers only to localhost, 127.0.0.1 and [::1]",
                ),
            );
        }
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method().clone();
        let answer = match (&method, segments.as_slice()) {
            (&Method::GET, [""]) => self.list(&query).await,
            (&Method::GET, ["style.css"]) => {
                let mut r = Response::new(Full::new(Bytes::from_static(pages::STYLE.as_bytes())));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/css; charset=utf-8"),
                );
                return r;
            }
            (&Method::GET, ["jobs", id]) => self.job(id).await,
            (&Method::POST, ["jobs", id, "cancel"]) => match same_origin(&req) {
                Ok(()) => self.cancel(id).await,
                Err(why) => Err(ApiError::new(403, "cross_origin", why)),
            },
            (_, [""] | ["style.css"] | ["jobs", _]) | (_, ["jobs", _, "cancel"]) => Err(
                ApiError::new(405, "method", format!("{method} is not allowed here")),
            ),
            _ => Err(ApiError::new(
                404,
                "not_found",
                format!("there is no page at {path}"),
            )),
        };
        match answer {
            Ok(Answer::Html(status, body)) => html(status, body),
            Ok(Answer::SeeOther(to)) => {
                let mut r = html(StatusCode::SEE_OTHER, String::new());
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers_mut().insert(LOCATION, v);
                }
                r
            }
            Err(e) => html(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                pages::error(e.status, e.message()),
            ),
        }
    }

    /// `GET /?status=…&next=…`: a page of jobs, newest first.
    async fn list(&self, query: &str) -> Result<Answer, ApiError> {
        let mut status = None;
        let mut next = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "status" if !value.is_empty() => {
                    status = Some(JobStatus::parse(&value).ok_or_else(|| {
                        ApiError::field(
                            "status",
                            format!("status `{value}` is not one of PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED"),
                        )
                    })?);
                }
                "next" if !value.is_empty() => next = Some(value.into_owned()),
                _ => {}
            }
        }
        let page = self
            .store
            .list_jobs(status, PAGE_SIZE, next.as_deref())
            .await?;
        let now = Utc::now();
        let mut reports = Vec::with_capacity(page.jobs.len());
        for job in page.jobs {
            let tasks = self.store.list_tasks(&job.id).await?;
            reports.push(Report::new(job, &tasks, Vec::new(), now));
        }
        let view = pages::ListView {
            reports: &reports,
            status,
            next: page.next.as_deref(),
            later_page: next.is_some(),
        };
        Ok(Answer::Html(StatusCode::OK, pages::list(&view)))
    }

    /// `GET /jobs/{id}`: one job.
    async fn job(&self, id: &str) -> Result<Answer, ApiError> {
        let report = self.engine.report(id).await?;
        let tasks = self.store.list_tasks(id).await?;
        Ok(Answer::Html(
            StatusCode::OK,
            pages::job(&report, &tasks, &self.store_flags),
        ))
    }

    /// `POST /jobs/{id}/cancel`: the CLI's cancel; then back to the job.
    async fn cancel(&self, id: &str) -> Result<Answer, ApiError> {
        self.engine.cancel(id).await?;
        Ok(Answer::SeeOther(format!("/jobs/{id}")))
    }

    /// Whether the request's `Host` may be answered.
    fn host_allowed(&self, host: Option<&str>) -> bool {
        if !self.loopback {
            return true;
        }
        let Some(host) = host else {
            return false;
        };
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        matches!(
            name.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "::1"
        )
    }
}

/// A POST from the page itself: its `Origin` names the host the request was sent to (any
/// scheme, for a TLS proxy in front), or, when the browser sends no origin (or `null`), its
/// `Sec-Fetch-Site` (which no page can set) says `same-origin`.
fn same_origin<B>(req: &Request<B>) -> Result<(), String> {
    let host = header(req, HOST).unwrap_or_default();
    match header(req, ORIGIN).filter(|o| *o != "null") {
        Some(origin) => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if authority.is_some_and(|a| a.eq_ignore_ascii_case(host)) {
                Ok(())
            } else {
                Err(format!(
                    "a cancel must come from this page; this one came from {origin}"
                ))
            }
        }
        None if header(req, "sec-fetch-site") == Some("same-origin") => Ok(()),
        None => Err(
            "a cancel must come from this page's Cancel button (the request names no origin); use `vecmigrate cancel` from a terminal"
                .into(),
        ),
    }
}

fn header<B>(req: &Request<B>, name: impl hyper::header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// An HTML response with the headers every page has: no caching, no framing (the Cancel
/// button cannot be clicked through another site), nothing loaded from elsewhere.
fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Binds `listen` and serves the jobs page there; prints where.
pub async fn run(page: JobsPage, listen: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: the jobs page listens on {bound}, beyond this machine: it has no login, and anyone who reaches it can cancel jobs"
        );
    }
    println!("jobs page: http://{bound}/");
    page.serve(listener).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::post("/jobs/j/cancel");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn a_cancel_must_come_from_the_page_itself() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&post(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_origin(&post(&[host, ("origin", "https://127.0.0.1:8080")])).is_ok());
        assert!(same_origin(&post(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        let null = ("origin", "null");
        assert!(same_origin(&post(&[host, null, ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&post(&[host, null])).is_err());
        let err = same_origin(&post(&[host, ("origin", "http://evil.example")])).unwrap_err();
        assert!(err.contains("evil.example"), "{err}");
        assert!(same_origin(&post(&[host, ("origin", "http://127.0.0.1:9999")])).is_err());
        assert!(same_origin(&post(&[host, ("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&post(&[host])).is_err());
    }
}
