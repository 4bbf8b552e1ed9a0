//! Where an event came from, in Sigma's terms.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a decoder knows of an event's origin: the Sigma `product`, `category`
/// and `service`. Any part may be unknown; the Sigma log-source mapping fills
/// in the rest from the event's fields (for Windows, its channel and event id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl LogSource {
    pub fn product(product: &str) -> Self {
        LogSource { product: Some(product.to_owned()), ..Self::default() }
    }

    /// Parses `product=windows,service=security` (also with `:`), as given on a
    /// command line. Unknown keys are an error naming them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut source = LogSource::default();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (key, value) = part.split_once(['=', ':']).ok_or_else(|| format!("expected key=value in {part:?}"))?;
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "product" => source.product = value,
                "category" => source.category = value,
                "service" => source.service = value,
                other => {
                    return Err(format!("unknown log source key {other:?} (expected product, category or service)"));
                }
            }
        }
        Ok(source)
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [("product", &self.product), ("category", &self.category), ("service", &self.service)];
        let mut first = true;
        for (key, value) in parts {
            if let Some(value) = value {
                if !first {
                    f.write_str(", ")?;
                }
                write!(f, "{key}: {value}")?;
                first = false;
            }
        }
        if first {
            f.write_str("any")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_line_form() {
        let source = LogSource::parse("product=linux, service:auditd").unwrap();
        assert_eq!(source.product.as_deref(), Some("linux"));
        assert_eq!(source.service.as_deref(), Some("auditd"));
        assert_eq!(source.category, None);
        assert_eq!(source.to_string(), "product: linux, service: auditd");
        assert!(LogSource::parse("vendor=x").unwrap_err().contains("vendor"));
        assert!(LogSource::parse("product").is_err());
    }
}
