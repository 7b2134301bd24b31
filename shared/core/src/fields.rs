//! Reading fields out of a JSON object with errors that name the field and say what to send.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &str, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object whose fields are read one at a time, each with a precise error.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Fields { object }
    }

    /// Present and not null.
    fn present(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    pub fn required_string(&self, name: &str, max_len: usize) -> Result<String, FieldError> {
        match self.optional_string(name, max_len)? {
            Some(value) => Ok(value),
            None => Err(FieldError::new(name, "is required")),
        }
    }

    /// A non-empty string without control characters; `None` when absent or null.
    pub fn optional_string(
        &self,
        name: &str,
        max_len: usize,
    ) -> Result<Option<String>, FieldError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(FieldError::new(
                name,
                format!("must be a string, got {}", type_name(value)),
            ));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(FieldError::new(name, "must not be empty"));
        }
        if text.chars().count() > max_len {
            return Err(FieldError::new(
                name,
                format!("must be at most {max_len} characters"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(FieldError::new(name, "must not contain control characters"));
        }
        Ok(Some(text.to_string()))
    }

    /// An identifier some CI systems send as a number and others as a string.
    pub fn optional_identifier(
        &self,
        name: &str,
        max_len: usize,
    ) -> Result<Option<String>, FieldError> {
        match self.present(name) {
            Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
                Ok(Some(number.to_string()))
            }
            Some(Value::Number(_)) => {
                Err(FieldError::new(name, "must be a string or a whole number"))
            }
            Some(Value::String(_)) | None => self.optional_string(name, max_len),
            Some(other) => Err(FieldError::new(
                name,
                format!(
                    "must be a string or a whole number, got {}",
                    type_name(other)
                ),
            )),
        }
    }

    pub fn required_identifier(&self, name: &str, max_len: usize) -> Result<String, FieldError> {
        self.optional_identifier(name, max_len)?
            .ok_or_else(|| FieldError::new(name, "is required"))
    }

    /// A whole number that is zero or more.
    pub fn optional_non_negative(&self, name: &str, unit: &str) -> Result<Option<u64>, FieldError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        match value {
            Value::Number(number) => {
                if let Some(whole) = number.as_u64() {
                    Ok(Some(whole))
                } else if number.as_i64().is_some_and(|n| n < 0)
                    || number.as_f64().is_some_and(|n| n < 0.0)
                {
                    Err(FieldError::new(
                        name,
                        format!("must not be negative ({unit})"),
                    ))
                } else {
                    Err(FieldError::new(
                        name,
                        format!("must be a whole number of {unit}"),
                    ))
                }
            }
            other => Err(FieldError::new(
                name,
                format!("must be a whole number of {unit}, got {}", type_name(other)),
            )),
        }
    }

    pub fn optional_object(
        &self,
        name: &str,
    ) -> Result<Option<&'a Map<String, Value>>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(other) => Err(FieldError::new(
                name,
                format!("must be a JSON object, got {}", type_name(other)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn strings_are_trimmed_and_checked() {
        let obj = object(json!({"a": " x ", "b": "", "c": 5, "d": "a\u{7}b", "e": null}));
        let fields = Fields::new(&obj);
        assert_eq!(fields.required_string("a", 10).unwrap(), "x");
        assert!(
            fields
                .required_string("b", 10)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            fields
                .required_string("c", 10)
                .unwrap_err()
                .to_string()
                .contains("got a number")
        );
        assert!(
            fields
                .required_string("d", 10)
                .unwrap_err()
                .to_string()
                .contains("control")
        );
        assert!(
            fields
                .required_string("e", 10)
                .unwrap_err()
                .to_string()
                .contains("required")
        );
        assert_eq!(fields.optional_string("e", 10).unwrap(), None);
        assert!(fields.required_string("a", 0).is_err());
    }

    #[test]
    fn identifiers_accept_numbers_and_strings() {
        let obj = object(json!({"n": 42, "s": "I1", "f": 1.5, "b": true}));
        let fields = Fields::new(&obj);
        assert_eq!(fields.required_identifier("n", 10).unwrap(), "42");
        assert_eq!(fields.required_identifier("s", 10).unwrap(), "I1");
        assert!(fields.required_identifier("f", 10).is_err());
        assert!(fields.required_identifier("b", 10).is_err());
    }

    #[test]
    fn non_negative_numbers() {
        let obj = object(json!({"ok": 12, "neg": -1, "frac": 1.5, "text": "12"}));
        let fields = Fields::new(&obj);
        assert_eq!(fields.optional_non_negative("ok", "ms").unwrap(), Some(12));
        assert!(
            fields
                .optional_non_negative("neg", "ms")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            fields
                .optional_non_negative("frac", "ms")
                .unwrap_err()
                .to_string()
                .contains("whole")
        );
        assert!(
            fields
                .optional_non_negative("text", "ms")
                .unwrap_err()
                .to_string()
                .contains("got a string")
        );
        assert_eq!(fields.optional_non_negative("missing", "ms").unwrap(), None);
    }
}
