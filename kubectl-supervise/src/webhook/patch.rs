//! The RFC 6902 JSON Patch that turns one JSON document into another, as an admission webhook
//! must answer.
//!
//! Theory of operation. The API server applies the patch to the object it sent, so the patch
//! only has to be correct, not minimal: objects are compared key by key (a key gone is
//! `remove`d, a new one `add`ed, a changed one compared further), arrays of the same length
//! element by element, and anything else that differs - a scalar, an array that grew or shrank,
//! a value of another type - is `replace`d whole. What `inject` changes in a pod (a container's
//! `command`, a mount appended, an init container inserted, a volume added) comes out as a
//! handful of operations under `/spec`, and untouched fields produce none.

use serde_json::{Map, Value, json};

/// The operations that turn `before` into `after`, in an order that applies cleanly.
pub fn diff(before: &Value, after: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    walk(&mut String::new(), before, after, &mut ops);
    ops
}

fn walk(path: &mut String, before: &Value, after: &Value, ops: &mut Vec<Value>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => objects(path, a, b, ops),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(path, x, y, ops);
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        _ => ops.push(json!({"op": "replace", "path": path.as_str(), "value": after})),
    }
}

fn objects(
    path: &mut String,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    ops: &mut Vec<Value>,
) {
    for (key, x) in a {
        let len = path.len();
        push_token(path, key);
        match b.get(key) {
            None => ops.push(json!({"op": "remove", "path": path.as_str()})),
            Some(y) => walk(path, x, y, ops),
        }
        path.truncate(len);
    }
    for (key, y) in b {
        if !a.contains_key(key) {
            let len = path.len();
            push_token(path, key);
            ops.push(json!({"op": "add", "path": path.as_str(), "value": y}));
            path.truncate(len);
        }
    }
}

/// Appends `/key` with JSON Pointer escaping (RFC 6901: `~` is `~0`, `/` is `~1`).
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_and_keys_escaped() {
        let before = json!({
            "metadata": {"annotations": {"supervisor/inject": "true", "a~b": 1}},
            "spec": {"containers": [{"name": "a", "command": ["x"]}], "volumes": [{"name": "v"}]}
        });
        let after = json!({
            "metadata": {"annotations": {"supervisor/inject": "true", "a~b": 2}},
            "spec": {
                "containers": [{"name": "a", "command": ["s", "--", "x"], "volumeMounts": []}],
                "volumes": [{"name": "v"}, {"name": "w"}],
                "initContainers": [{"name": "i"}]
            }
        });
        assert_eq!(
            diff(&before, &after),
            vec![
                json!({"op": "replace", "path": "/metadata/annotations/a~0b", "value": 2}),
                json!({"op": "replace", "path": "/spec/containers/0/command", "value": ["s", "--", "x"]}),
                json!({"op": "add", "path": "/spec/containers/0/volumeMounts", "value": []}),
                json!({"op": "replace", "path": "/spec/volumes", "value": [{"name": "v"}, {"name": "w"}]}),
                json!({"op": "add", "path": "/spec/initContainers", "value": [{"name": "i"}]}),
            ]
        );
        let mut removed = after.clone();
        removed["metadata"]["annotations"]
            .as_object_mut()
            .map(|a| a.remove("supervisor/inject"));
        assert_eq!(
            diff(&after, &removed),
            vec![json!({"op": "remove", "path": "/metadata/annotations/supervisor~1inject"})]
        );
        assert_eq!(diff(&before, &before), Vec::<Value>::new());
        assert_eq!(
            diff(&json!(1), &json!("1")),
            vec![json!({"op": "replace", "path": "", "value": "1"})]
        );
    }
}
