//! CloudWatch metrics without an API call: Embedded Metric Format (EMF) lines, JSON objects
//! that CloudWatch Logs turns into metrics of the namespace `vecmigrate` when the function
//! writes them to stdout. Dimensions stay few (the function, and a job's outcome or a cluster's
//! role where they apply); the job id is a property of each line, searchable in Logs Insights,
//! never a dimension.

use serde_json::{json, Map, Value};

/// The metrics' namespace.
pub const NAMESPACE: &str = "vecmigrate";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// Bytes per second.
    BytesPerSecond,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Seconds => "Seconds",
            Self::BytesPerSecond => "Bytes/Second",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// The metric's name (`EntitiesCopied`, `JobsEnded`, …).
    pub name: &'static str,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Metric {
    /// A count.
    pub fn count(name: &'static str, value: u64) -> Self {
        Self {
            name,
            value: value as f64,
            unit: Unit::Count,
        }
    }
}

/// Where a process's EMF lines go, and the function they are about.
pub struct Metrics {
    function: String,
    out: Box<dyn Fn(&str) + Send + Sync>,
}

impl Metrics {
    /// Lines to stdout, as the Lambda function writes them (CloudWatch reads them there).
    pub fn stdout(function: impl Into<String>) -> Self {
        Self::to(function, |line| println!("{line}"))
    }

    /// Lines to `out` (the tests read them back).
    pub fn to(function: impl Into<String>, out: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            function: function.into(),
            out: Box::new(out),
        }
    }

    /// Emits `metrics` of `job_id` in one line, under the function and `dimension` if given.
    pub fn emit(&self, job_id: &str, dimension: Option<(&str, &str)>, metrics: &[Metric]) {
        if metrics.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        (self.out)(&line(&self.function, job_id, dimension, metrics, now));
    }
}

/// One EMF line (see the module).
pub fn line(
    function: &str,
    job_id: &str,
    dimension: Option<(&str, &str)>,
    metrics: &[Metric],
    timestamp_ms: i64,
) -> String {
    let mut dimensions = vec!["Function"];
    let mut body = Map::new();
    body.insert("Function".into(), function.into());
    if let Some((name, value)) = dimension {
        dimensions.push(name);
        body.insert(name.into(), value.into());
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    for m in metrics {
        body.insert(m.name.into(), m.value.into());
    }
    body.insert("job_id".into(), job_id.into());
    body.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_its_metrics_and_dimensions_and_carries_their_values() {
        let text = line(
            "vecmigrate-fn",
            "mig-1",
            Some(("Outcome", "succeeded")),
            &[
                Metric::count("JobsEnded", 1),
                Metric {
                    name: "OutageSeconds",
                    value: 2.5,
                    unit: Unit::Seconds,
                },
            ],
            1_700_000_000_000,
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let aws = &v["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000i64);
        let cw = &aws["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "vecmigrate");
        assert_eq!(cw["Dimensions"], json!([["Function", "Outcome"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "JobsEnded", "Unit": "Count"}, {"Name": "OutageSeconds", "Unit": "Seconds"}])
        );
        assert_eq!(
            (&v["Function"], &v["Outcome"], &v["job_id"]),
            (
                &json!("vecmigrate-fn"),
                &json!("succeeded"),
                &json!("mig-1")
            )
        );
        assert_eq!(
            (&v["JobsEnded"], &v["OutageSeconds"]),
            (&json!(1.0), &json!(2.5))
        );
    }
}
