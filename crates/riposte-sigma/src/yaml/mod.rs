//! Rule documents as an ordered YAML tree.
//!
//! Sigma gives meaning to key order in nothing, but error messages and output
//! read better when the rule's own order is kept, so maps are vectors.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Largest rule file accepted, in bytes.
pub const MAX_RULE_FILE_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    /// An integer, as its decimal text.
    Int(String),
    Float(f64),
    String(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(name, _)| name == key).map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::String(text) => Some(text),
            _ => None,
        }
    }

    /// Scalars as text (what a string-typed metadata field tolerates).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Yaml::String(text) | Yaml::Int(text) => Some(text.clone()),
            Yaml::Float(value) => Some(value.to_string()),
            Yaml::Bool(value) => Some(value.to_string()),
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) => "an integer",
            Yaml::Float(_) => "a number",
            Yaml::String(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a map",
        }
    }
}

mod subset;

/// Parses every YAML document of a file (empty documents left out).
pub fn parse_documents(text: &str) -> Result<Vec<Yaml>, String> {
    if text.len() > MAX_RULE_FILE_BYTES {
        return Err(format!("file is larger than {MAX_RULE_FILE_BYTES} bytes"));
    }
    match subset::parse(text) {
        Some(documents) => Ok(documents.into_iter().filter(|document| *document != Yaml::Null).collect()),
        None => parse_full(text),
    }
}

/// The full YAML parser: whatever the subset parser declines, errors included.
fn parse_full(text: &str) -> Result<Vec<Yaml>, String> {
    let options = serde_saphyr::options! {
        // YAML 1.2: `yes`, `no`, `y`, `on` are text, not booleans.
        strict_booleans: true,
        // `010` and `1_000` keep their spelling: rules compare text.
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        null_as_string: true,
    };
    serde_saphyr::from_multiple_with_options::<Yaml>(text, options)
        .map(|documents| documents.into_iter().filter(|document| *document != Yaml::Null).collect())
        .map_err(|error| error.to_string())
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Yaml, E> {
        Ok(Yaml::Int(value.to_string()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Yaml, E> {
        Ok(Yaml::Int(value.to_string()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Yaml, E> {
        Ok(Yaml::Int(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Yaml, E> {
        Ok(Yaml::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Yaml, E> {
        Ok(Yaml::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries: Vec<(String, Yaml)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        // Keys are read as text, whatever they look like (`y`, `1`, `null`).
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            if entries.iter().any(|(name, _)| *name == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            entries.push((key, value));
        }
        Ok(Yaml::Map(entries))
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let offset = text.find(needle)?;
    Some(text[..offset].bytes().filter(|byte| *byte == b'\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_types() {
        let docs = parse_documents("b: 1\na: 'x'\nc: [true, null, 2.5]\nd:\n  e: -3\n").unwrap();
        let Yaml::Map(entries) = &docs[0] else { panic!("not a map") };
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d"]);
        assert_eq!(docs[0].get("b"), Some(&Yaml::Int("1".into())));
        assert_eq!(docs[0].get("a").and_then(Yaml::as_str), Some("x"));
        assert_eq!(docs[0].get("c"), Some(&Yaml::Seq(vec![Yaml::Bool(true), Yaml::Null, Yaml::Float(2.5)])));
        assert_eq!(docs[0].get("d").and_then(|d| d.get("e")), Some(&Yaml::Int("-3".into())));
    }

    #[test]
    fn yaml_1_2_scalars_keep_their_spelling() {
        let docs = parse_documents("y: n\nyes: on\n010: 010\n1_000: x\nnull: 1\nt: true\n").unwrap();
        let Yaml::Map(entries) = &docs[0] else { panic!("not a map") };
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["y", "yes", "010", "1_000", "null", "t"]);
        assert_eq!(docs[0].get("y"), Some(&Yaml::String("n".into())));
        assert_eq!(docs[0].get("yes"), Some(&Yaml::String("on".into())));
        assert_eq!(docs[0].get("010"), Some(&Yaml::String("010".into())));
        assert_eq!(docs[0].get("t"), Some(&Yaml::Bool(true)));
    }

    #[test]
    fn several_documents_and_errors() {
        assert_eq!(parse_documents("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(parse_documents("a: [1, 2\n").is_err());
        assert!(parse_documents("a: 1\na: 2\n").is_err(), "duplicate keys are refused");
        assert_eq!(line_of("x\ny: 1\nz|foo: 2\n", "|foo"), Some(3));
    }
}
