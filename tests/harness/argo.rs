//! Argo's published API (`tests/fixtures/argo/swagger-subset.json`): what Portico sends to
//! Argo is checked against it, key by key and type by type.

use serde_json::Value;

/// Argo Workflows' Swagger, the subset Portico uses.
pub struct ArgoApi(Value);

impl ArgoApi {
    pub fn load() -> ArgoApi {
        let text = include_str!("../fixtures/argo/swagger-subset.json");
        ArgoApi(serde_json::from_str(text).expect("the Argo swagger fixture"))
    }

    /// Whether `value` fits the definition `name` (`io.argoproj.workflow.v1alpha1.Workflow`):
    /// every key a declared property, every value of the declared type, every required
    /// property present. Errors name the JSON path.
    pub fn check(&self, value: &Value, name: &str) -> Result<(), String> {
        self.fits(value, &serde_json::json!({"$ref": format!("#/definitions/{name}")}), "$")
    }

    /// Whether a request Portico sent fits an operation of the API: the path matches a path
    /// template, the method is an operation of it, every query parameter is declared, and the
    /// body (if the operation takes one) fits its schema.
    pub fn check_request(&self, method: &str, path: &str, query: &str, body: &Value) -> Result<(), String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.0["paths"].as_object().expect("paths");
        let (template, item) = paths
            .iter()
            .find(|(t, _)| {
                let t: Vec<&str> = t.trim_matches('/').split('/').collect();
                t.len() == parts.len() && t.iter().zip(&parts).all(|(t, p)| t.starts_with('{') || t == p)
            })
            .ok_or_else(|| format!("{method} {path}: no such path in Argo's API"))?;
        let operation = &item[method.to_ascii_lowercase()];
        if operation.is_null() {
            return Err(format!("{method} {template}: no such operation"));
        }
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or_default();
            if !parameters.iter().any(|p| p["in"] == "query" && p["name"] == name) {
                return Err(format!("{method} {template}: query parameter {name} is not declared"));
            }
        }
        match parameters.iter().find(|p| p["in"] == "body") {
            Some(p) => self.fits(body, &p["schema"], "$"),
            None if body.is_null() => Ok(()),
            None => Err(format!("{method} {template}: takes no body")),
        }
    }

    fn fits(&self, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/definitions/");
            let resolved = &self.0["definitions"][name];
            if resolved.is_null() {
                return Err(format!("{at}: {name} is not in the fixture"));
            }
            return self.fits(value, resolved, at);
        }
        let kind = schema["type"].as_str();
        let int_or_string = schema["format"] == "int-or-string";
        match (kind, value) {
            (Some("object") | None, Value::Object(map)) if schema["properties"].is_object() => {
                for (key, v) in map {
                    let property = &schema["properties"][key];
                    if property.is_null() {
                        return Err(format!("{at}.{key}: not a property of this object"));
                    }
                    self.fits(v, property, &format!("{at}.{key}"))?;
                }
                for required in schema["required"].as_array().into_iter().flatten() {
                    let name = required.as_str().unwrap_or_default();
                    if !map.contains_key(name) {
                        return Err(format!("{at}: required property {name} is missing"));
                    }
                }
                Ok(())
            }
            (Some("object"), Value::Object(map)) => match &schema["additionalProperties"] {
                Value::Object(_) => map
                    .iter()
                    .try_for_each(|(k, v)| self.fits(v, &schema["additionalProperties"], &format!("{at}.{k}"))),
                _ => Ok(()),
            },
            (Some("array"), Value::Array(items)) => {
                items.iter().enumerate().try_for_each(|(i, v)| self.fits(v, &schema["items"], &format!("{at}[{i}]")))
            }
            (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => Ok(()),
            (Some("string"), Value::Number(_)) if int_or_string => Ok(()),
            (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
            (Some("number"), Value::Number(_)) => Ok(()),
            // No declared type nor properties: any JSON (Argo's `Item`, `Any`).
            (None, _) if schema["properties"].is_null() => Ok(()),
            _ => Err(format!("{at}: expected {}, found {value}", kind.unwrap_or("an object"))),
        }
    }
}
