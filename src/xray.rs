//! AWS X-Ray: a subsegment per engine step, under the function's segment of the invocation.
//!
//! With `Tracing: Active`, Lambda records a segment for each invocation and hands the function
//! its trace header (`Root=…;Parent=…;Sampled=1`). [`XrayLayer`] watches the tracing spans the
//! code already opens (the `invocation` span carries the header as `xray_trace`, each `step`
//! span its `job_id`, `step` and `phase`) and, when a step span closes in a sampled trace,
//! sends its subsegment to the X-Ray daemon Lambda runs beside the function: one UDP datagram,
//! `{"format":"json","version":1}` then the subsegment document, to `AWS_XRAY_DAEMON_ADDRESS`.
//! Sending never blocks and never fails a step: a lost datagram is a missing subsegment.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The header every datagram to the daemon starts with.
const DAEMON_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";

/// Sends a subsegment to the X-Ray daemon for every engine step (see the module).
#[derive(Debug)]
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl XrayLayer {
    /// The layer for the daemon at `AWS_XRAY_DAEMON_ADDRESS`, or `None` outside a traced
    /// Lambda (the variable is unset or unreadable).
    pub fn from_env() -> Option<Self> {
        Self::to(&std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?)
    }

    /// The layer for the daemon at `address`: `host:port`, or the `tcp:… udp:…` pair Lambda
    /// may give (the UDP one is used).
    pub fn to(address: &str) -> Option<Self> {
        let udp = address
            .split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))
            .unwrap_or(address);
        let daemon = udp.to_socket_addrs().ok()?.next()?;
        let bind: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(bind).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Self { socket, daemon })
    }
}

/// The parts of a trace header (`Root=1-…;Parent=…;Sampled=1`) a subsegment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    root: String,
    parent: String,
}

impl Trace {
    /// The sampled trace an `invocation` span's `xray_trace` field carries.
    fn of(fields: &Map<String, Value>) -> Option<Self> {
        Self::sampled(fields.get("xray_trace")?.as_str()?)
    }

    /// The trace of a sampled header; `None` when it is not sampled or lacks a part.
    fn sampled(header: &str) -> Option<Self> {
        let part = |name: &str| {
            header
                .split(';')
                .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
        };
        (part("Sampled")? == "1")
            .then(|| Self {
                root: part("Root").unwrap_or_default().to_owned(),
                parent: part("Parent").unwrap_or_default().to_owned(),
            })
            .filter(|t| !t.root.is_empty() && !t.parent.is_empty())
    }
}

/// What a step span keeps until it closes.
#[derive(Debug, Default)]
struct Step {
    start: f64,
    fields: Map<String, Value>,
}

/// Collects a span's fields as strings.
struct Strings<'a>(&'a mut Map<String, Value>);

impl Visit for Strings<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A random 64-bit subsegment id, as 16 hex digits.
fn segment_id() -> String {
    let bytes = uuid::Uuid::new_v4();
    bytes.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<S> Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        match attrs.metadata().name() {
            "invocation" => {
                let mut fields = Map::new();
                attrs.record(&mut Strings(&mut fields));
                if let Some(trace) = Trace::of(&fields) {
                    span.extensions_mut().insert(trace);
                }
            }
            "step" => {
                let mut step = Step {
                    start: now(),
                    fields: Map::new(),
                };
                attrs.record(&mut Strings(&mut step.fields));
                span.extensions_mut().insert(step);
            }
            _ => {}
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(step) = extensions.get_mut::<Step>() {
            values.record(&mut Strings(&mut step.fields));
        } else if span.name() == "invocation" {
            let mut fields = Map::new();
            values.record(&mut Strings(&mut fields));
            if let Some(trace) = Trace::of(&fields) {
                extensions.replace(trace);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(step) = span.extensions_mut().remove::<Step>() else {
            return;
        };
        // The trace of the nearest invocation, if it is sampled.
        let Some(trace) = span
            .scope()
            .skip(1)
            .find(|s| s.name() == "invocation")
            .and_then(|s| s.extensions().get::<Trace>().cloned())
        else {
            return;
        };
        let name = step
            .fields
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or("step");
        let document = json!({
            "type": "subsegment",
            "name": format!("step {name}"),
            "id": segment_id(),
            "trace_id": trace.root,
            "parent_id": trace.parent,
            "start_time": step.start,
            "end_time": now(),
            "annotations": step.fields,
        });
        let datagram = format!("{DAEMON_HEADER}{document}");
        // Fire and forget: tracing must never slow or fail a step.
        let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn headers_are_read_only_when_sampled() {
        let t = Trace::sampled(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(t.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(t.parent, "53995c3f42cd8ad8");
        assert_eq!(
            Trace::sampled(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
            ),
            None
        );
        assert_eq!(Trace::sampled("Root=1-a;Sampled=1"), None);
        assert!(XrayLayer::to("tcp:127.0.0.1:2000 udp:127.0.0.1:2001")
            .is_some_and(|l| l.daemon.port() == 2001));
        assert!(XrayLayer::to("not an address").is_none());
    }

    /// A real UDP socket stands for the daemon: a step span under a sampled invocation sends
    /// one subsegment in the daemon's wire format; an unsampled one sends nothing.
    #[test]
    fn a_step_span_becomes_a_subsegment_of_the_invocation() {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let layer = XrayLayer::to(&daemon.local_addr().unwrap().to_string()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let header =
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
            // As the bootstrap does: the header recorded once the span exists.
            let invocation = tracing::info_span!(
                "invocation",
                request_id = "r-1",
                xray_trace = tracing::field::Empty
            );
            invocation.record("xray_trace", header);
            let _i = invocation.enter();
            let step = tracing::info_span!(
                "step",
                job_id = "mig-1",
                step = "work",
                phase = tracing::field::Empty
            );
            step.record("phase", "copy");
            drop(step.entered());
            let unsampled = tracing::info_span!(
                "invocation",
                request_id = "r-2",
                xray_trace = "Root=1-a-b;Parent=c;Sampled=0"
            );
            let _u = unsampled.enter();
            drop(tracing::info_span!("step", job_id = "mig-2", step = "plan").entered());
        });
        let mut buf = [0u8; 4096];
        let n = daemon.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(header).unwrap(),
            json!({"format": "json", "version": 1})
        );
        let doc: Value = serde_json::from_str(body).unwrap();
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["name"], "step work");
        assert_eq!(doc["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(
            doc["annotations"],
            json!({"job_id": "mig-1", "step": "work", "phase": "copy"})
        );
        assert_eq!(doc["id"].as_str().unwrap().len(), 16);
        assert!(doc["end_time"].as_f64().unwrap() >= doc["start_time"].as_f64().unwrap());
        // Nothing for the unsampled invocation.
        daemon
            .set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        assert!(daemon.recv(&mut buf).is_err());
    }
}
