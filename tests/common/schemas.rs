//! The published schemas (`schemas/v1/`) as the tests hold the code to them: every webhook
//! body the receiver records and every HTTP answer the function gives is validated with a real
//! JSON Schema validator (the `jsonschema` crate, draft 2020-12, formats checked), so the
//! documents cannot drift from the code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Registry, Validator};
use serde_json::{json, Value};

/// The base the schema files are named under (their `$id`s).
const BASE: &str = "https://vecmigrate.invalid/schemas/v1/";

struct Schemas {
    registry: Registry<'static>,
    openapi: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = format!("{}/schemas/v1", env!("CARGO_MANIFEST_DIR"));
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(format!("{dir}/{name}"))
                .unwrap_or_else(|e| panic!("schemas/v1/{name}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("schemas/v1/{name}: {e}"))
        };
        let openapi = read("openapi.json");
        let mut registry = Registry::new()
            .add(format!("{BASE}openapi.json"), openapi.clone())
            .unwrap();
        let events = std::fs::read_dir(format!("{dir}/events"))
            .unwrap()
            .map(|e| format!("events/{}", e.unwrap().file_name().to_string_lossy()));
        for name in std::iter::once("vecmigrate.schema.json".to_owned()).chain(events) {
            let schema = read(&name);
            assert_eq!(
                schema["$id"],
                json!(format!("{BASE}{name}")),
                "{name}: its $id"
            );
            registry = registry.add(format!("{BASE}{name}"), schema).unwrap();
        }
        Schemas {
            registry: registry.prepare().unwrap(),
            openapi,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// Validates `instance` against the schema at `uri` (absolute, with a fragment), panicking
/// with every error and the instance.
fn validate(uri: &str, instance: &Value, what: &str) {
    let s = schemas();
    let cached = s.validators.lock().unwrap().get(uri).cloned();
    let validator = cached.unwrap_or_else(|| {
        let built = Arc::new(
            jsonschema::options()
                .with_registry(&s.registry)
                .offline()
                .should_validate_formats(true)
                .build(&json!({ "$ref": uri }))
                .unwrap_or_else(|e| panic!("the schema {uri} does not compile: {e}")),
        );
        s.validators
            .lock()
            .unwrap()
            .insert(uri.to_owned(), built.clone());
        built
    });
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its published schema ({uri}):\n  {}\n{instance:#}",
        errors.join("\n  ")
    );
}

/// Checks a webhook body against the schema of its event type (`events/<type>.schema.json`).
pub fn check_event(body: &Value) {
    let kind = body["type"].as_str().expect("a webhook body with a `type`");
    validate(
        &format!("{BASE}events/{kind}.schema.json"),
        body,
        &format!("the {kind} webhook body"),
    );
}

/// One segment of a JSON pointer: `~` and `/` escaped.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The OpenAPI path template that `path` matches (`/migrations/{id}` for `/migrations/mig-1`).
fn template_of<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    paths.keys().map(String::as_str).find(|template| {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
    })
}

/// Checks an HTTP answer against the OpenAPI document: the response the operation declares for
/// `status` (or its `4XX` / `5XX` range), else, for a route the document does not have, the
/// error shape of the family the path belongs to (the `/v2` routes answer in Zilliz's).
pub fn check_http(method: &str, path: &str, status: u64, body: &Value) {
    let s = schemas();
    let paths = s.openapi["paths"]
        .as_object()
        .expect("openapi.json has paths");
    let method = method.to_ascii_lowercase();
    let operation = template_of(paths, path).and_then(|t| {
        paths[t]
            .get(&method)
            .map(|_| format!("/paths/{}/{method}", escape(t)))
    });
    let Some(operation) = operation else {
        let error = if path.starts_with("/v2/") {
            "#/components/schemas/ZillizError"
        } else {
            "vecmigrate.schema.json#/$defs/Error"
        };
        assert!(
            status >= 400,
            "{method} {path} answered {status} on no documented route"
        );
        let uri = match error.strip_prefix('#') {
            Some(pointer) => format!("{BASE}openapi.json#{pointer}"),
            None => format!("{BASE}{error}"),
        };
        return validate(
            &uri,
            body,
            &format!("the {status} answer to {method} {path}"),
        );
    };
    let responses = &s
        .openapi
        .pointer(&format!("{operation}/responses"))
        .unwrap();
    let range = format!("{}XX", status / 100);
    let (key, mut response) = [status.to_string(), range]
        .into_iter()
        .find_map(|k| responses.get(&k).map(|r| (k, r)))
        .unwrap_or_else(|| panic!("openapi.json: {method} {path} declares no {status} answer"));
    let mut pointer = format!("{operation}/responses/{key}");
    // A response given by reference (`#/components/responses/…`).
    if let Some(target) = response.get("$ref").and_then(Value::as_str) {
        pointer = target.trim_start_matches('#').to_owned();
        response = s.openapi.pointer(&pointer).expect("a $ref that resolves");
    }
    assert!(
        response
            .pointer("/content/application~1json/schema")
            .is_some(),
        "openapi.json: the {status} answer to {method} {path} has no JSON schema"
    );
    // In a URI fragment, the braces of a path template are percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    validate(
        &format!("{BASE}openapi.json#{fragment}/content/application~1json/schema"),
        body,
        &format!("the {status} answer to {method} {path}"),
    );
}
