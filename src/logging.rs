//! How the binaries log: human lines (the CLI's default) or one JSON object per line (the
//! Lambda function, whose `LoggingConfig` asks for JSON, and `vecmigrate --log-format json`).
//!
//! A JSON line carries `timestamp`, `level`, `message` and `target`, then the fields of every
//! span the event happened in (the invocation's `request_id`, the step's `job_id`, `step` and
//! `phase`, the task's `task` and `collection`), then the event's own fields: all at the top
//! level, so that a CloudWatch Logs Insights query filters on `job_id` directly.

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json` (any case: Lambda's `AWS_LAMBDA_LOG_FORMAT` says `JSON`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Installs the process's logger: `format`, at the levels `filter` lets through, to stderr;
/// text lines coloured only when `ansi`, and timed only when `timed` (CloudWatch times text
/// lines itself). `xray`, when given, sees every step whatever the filter (see [`crate::xray`]).
pub fn init(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    timed: bool,
    xray: Option<crate::xray::XrayLayer>,
) {
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match (format, timed) {
        (LogFormat::Json, _) => lines.fmt_fields(JsonFields).event_format(JsonLines).boxed(),
        (LogFormat::Text, true) => lines.with_ansi(ansi).boxed(),
        (LogFormat::Text, false) => lines.with_ansi(ansi).without_time().boxed(),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(xray)
        .init();
}

/// The filter of `VECMIGRATE_LOG` (tracing's directives, such as `debug` or
/// `vecmigrate=debug`), or `default` when it is unset or unreadable.
pub fn filter_from_env(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("VECMIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default))
}

/// Writes each event as one JSON object (see the module).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), level_name(*meta.level()).into());
        line.insert("message".into(), Value::String(String::new()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str(fields.as_str()) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        line.insert("target".into(), meta.target().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Lambda's level names (`AWS_LAMBDA_LOG_LEVEL` filters on them).
fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Keeps each span's fields as a JSON object, for [`JsonLines`] to merge into its lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut Fields(&mut map));
        write!(writer, "{}", Value::Object(map))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut map = match serde_json::from_str(current.as_str()) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        fields.record(&mut Fields(&mut map));
        current.fields.clear();
        current.fields.write_str(&Value::Object(map).to_string())
    }
}

/// Records fields into a JSON object: numbers and booleans as themselves, the rest as text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the logger writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_line_carries_its_spans_fields_at_the_top_level() {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("info"))
            .with_writer(move || sink.clone())
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let step = tracing::info_span!("step", job_id = "j-1", phase = tracing::field::Empty);
            let _step = step.enter();
            step.record("phase", "copy");
            let _task =
                tracing::info_span!("task", task = "db/c/p/0", collection = "db.c").entered();
            tracing::warn!(pages = 3, "a \"quoted\" message");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "a \"quoted\" message");
        assert_eq!(line["job_id"], "j-1");
        assert_eq!(line["phase"], "copy");
        assert_eq!(line["task"], "db/c/p/0");
        assert_eq!(line["collection"], "db.c");
        assert_eq!(line["pages"], 3);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn formats_are_read_in_any_case() {
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("Text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
