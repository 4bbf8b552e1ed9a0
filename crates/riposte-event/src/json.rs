//! JSON records into events, without building a JSON tree.
//!
//! Objects are flattened into dotted paths (`{"process": {"pid": 4}}` becomes
//! `process.pid`) and arrays into repeated fields. A top-level `Event` object
//! is read as a Windows event in the shape the `evtx` crate and `evtx_dump`
//! write, and named the way Sigma rules name Windows fields:
//!
//! | path in the record                          | field                    |
//! |---------------------------------------------|--------------------------|
//! | `Event.System.EventID`                      | `EventID`                |
//! | `Event.System.Provider.#attributes.Name`    | `Provider_Name`          |
//! | `Event.System.TimeCreated.#attributes.SystemTime` | `TimeCreated_SystemTime` |
//! | `Event.System.EventID.#text` (with qualifiers) | `EventID`             |
//! | `Event.EventData.CommandLine`               | `CommandLine`            |
//! | `Event.EventData.Data` (unnamed, repeated)  | `Data`                   |
//! | `Event.UserData.LogFileCleared.SubjectUserName` | `SubjectUserName`    |
//!
//! Namespace attributes (`xmlns`) are dropped.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{DecodeError, Result};
use crate::event::{Event, MAX_FIELDS};
use crate::logsource::LogSource;
use crate::symbol::{Symbol, SymbolCache};
use crate::timestamp;

/// Turns JSON records into [`Event`]s. One per worker: it caches field names.
#[derive(Default)]
pub struct JsonDecoder {
    symbols: SymbolCache,
    path: Path,
    name: String,
    sections: Sections,
}

/// Field names that carry an event's time, in order of preference.
const TIME_FIELDS: &[&str] =
    &["TimeCreated_SystemTime", "TimeCreated", "@timestamp", "timestamp", "time", "ts", "UtcTime", "EventTime", "date"];

/// Reads one JSON object and nothing after it into `walker`.
fn walk<'de, R: serde_json::de::Read<'de>>(
    walker: &mut Walker<'_>,
    deserializer: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<()> {
    Root(walker).deserialize(&mut *deserializer)?;
    deserializer.end()
}

impl JsonDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one JSON object into `event` (which is cleared first).
    pub fn decode_into(&mut self, json: &[u8], event: &mut Event) -> Result<()> {
        event.clear();
        self.path.clear();
        self.sections.clear();
        let mut walker = Walker {
            event,
            symbols: &mut self.symbols,
            path: &mut self.path,
            name: &mut self.name,
            sections: &mut self.sections,
            overflow: false,
        };
        // Checked as UTF-8 once, the text's strings need not be one by one
        // (and a record that is not UTF-8 gets serde_json's error, with its
        // place).
        match std::str::from_utf8(json) {
            Ok(text) => walk(&mut walker, &mut serde_json::Deserializer::from_str(text))?,
            Err(_) => walk(&mut walker, &mut serde_json::Deserializer::from_slice(json))?,
        }
        if walker.overflow {
            return Err(DecodeError::TooManyFields { limit: MAX_FIELDS });
        }
        self.finish_windows(event);
        fill_metadata(event);
        Ok(())
    }

    pub fn decode(&mut self, json: &[u8]) -> Result<Event> {
        let mut event = Event::new();
        self.decode_into(json, &mut event)?;
        Ok(event)
    }

    /// Decodes an already parsed JSON value (for readers of whole documents).
    pub fn decode_value(&mut self, value: &serde_json::Value, event: &mut Event) -> Result<()> {
        event.clear();
        self.path.clear();
        self.sections.clear();
        let mut walker = Walker {
            event,
            symbols: &mut self.symbols,
            path: &mut self.path,
            name: &mut self.name,
            sections: &mut self.sections,
            overflow: false,
        };
        Root(&mut walker).deserialize(value).map_err(DecodeError::Json)?;
        if walker.overflow {
            return Err(DecodeError::TooManyFields { limit: MAX_FIELDS });
        }
        self.finish_windows(event);
        fill_metadata(event);
        Ok(())
    }
}

impl JsonDecoder {
    /// Windows naming rules that need the whole record:
    /// - event data shadows System: a System field whose name event data also
    ///   uses is renamed `System_<name>` (the System 104 event's `Channel` is
    ///   the cleared log, in UserData);
    /// - names with spaces (Defender's `Threat Name`) are also readable without
    ///   the spaces and with `_` for them;
    /// - `Data` is the container of every EventData value when the event has
    ///   no `Data` element of its own.
    fn finish_windows(&mut self, event: &mut Event) {
        if self.sections.system.is_empty() && self.sections.event_data.is_empty() && self.sections.other_data.is_empty()
        {
            return;
        }
        if event.logsource.is_none() {
            event.logsource = Some(windows_source());
        }
        let data: Vec<usize> = self.sections.event_data.iter().chain(&self.sections.other_data).copied().collect();
        for &index in &self.sections.system {
            let symbol = event.symbol_at(index);
            if data.iter().any(|&other| event.symbol_at(other) == symbol) {
                self.name.clear();
                self.name.push_str("System_");
                self.name.push_str(event.name_at(index));
                let renamed = self.symbols.get(&self.name);
                event.rename_at(index, renamed, &self.name);
            }
        }
        for &index in &data {
            if event.name_at(index).contains(' ') {
                let original = event.name_at(index).to_owned();
                for replacement in ["", "_"] {
                    let name = original.replace(' ', replacement);
                    let symbol = self.symbols.get(&name);
                    event.alias_at(index, symbol, &name);
                }
            }
        }
        let data_symbol = self.symbols.get("Data");
        if !data.iter().any(|&index| event.symbol_at(index) == data_symbol) {
            for &index in &self.sections.event_data {
                event.alias_at(index, data_symbol, "Data");
            }
        }
    }
}

/// The decoder's log source for Windows events.
fn windows_source() -> std::sync::Arc<LogSource> {
    static WINDOWS: std::sync::OnceLock<std::sync::Arc<LogSource>> = std::sync::OnceLock::new();
    WINDOWS.get_or_init(|| std::sync::Arc::new(LogSource::product("windows"))).clone()
}

/// Sets the event's time and record number from its fields when the source
/// did not.
fn fill_metadata(event: &mut Event) {
    if event.timestamp.is_none() {
        event.timestamp = TIME_FIELDS
            .iter()
            .filter_map(|name| Symbol::lookup(name))
            .find_map(|symbol| event.text(symbol).and_then(timestamp::parse));
    }
    if event.record_id.is_none()
        && let Some(symbol) = Symbol::lookup("EventRecordID")
    {
        event.record_id = event.text(symbol).and_then(|text| text.parse().ok());
    }
}

/// The path from the record's root to the value being read.
#[derive(Default)]
struct Path {
    text: String,
    /// Where each segment starts in `text` (segments are joined by `.`).
    starts: Vec<usize>,
    /// Depth of the `Event` object when the record is a Windows event.
    windows_root: Option<usize>,
}

impl Path {
    fn clear(&mut self) {
        self.text.clear();
        self.starts.clear();
        self.windows_root = None;
    }

    fn push(&mut self, segment: &str) {
        if !self.starts.is_empty() {
            self.text.push('.');
        }
        self.starts.push(self.text.len());
        self.text.push_str(segment);
    }

    fn pop(&mut self) {
        if let Some(start) = self.starts.pop() {
            self.text.truncate(start.saturating_sub(1));
            if self.starts.is_empty() {
                self.text.clear();
            }
        }
        if self.windows_root.is_some_and(|depth| depth > self.starts.len()) {
            self.windows_root = None;
        }
    }

    fn segment(&self, index: usize) -> &str {
        let start = self.starts[index];
        let end = self.starts.get(index + 1).map_or(self.text.len(), |next| next - 1);
        &self.text[start..end]
    }

    fn depth(&self) -> usize {
        self.starts.len()
    }

    /// The field name of the current leaf, or `None` when it is dropped.
    fn field_name<'a>(&'a self, scratch: &'a mut String) -> Option<&'a str> {
        match self.windows_root {
            None => Some(&self.text),
            Some(root) => self.windows_field_name(root, scratch),
        }
    }

    /// Names a leaf under `Event` the way Sigma's Windows rules do (see the
    /// module documentation).
    fn windows_field_name<'a>(&'a self, root: usize, scratch: &'a mut String) -> Option<&'a str> {
        if root >= self.depth() {
            return None;
        }
        let section = self.segment(root);
        let rest = (root + 1..self.depth()).map(|index| self.segment(index));
        if section == "#attributes" {
            return None;
        }
        if section == "System" {
            // System.X, System.X.#text, System.X.#attributes.A -> X, X, X_A
            scratch.clear();
            for part in rest.filter(|part| !part.starts_with('#')) {
                if !scratch.is_empty() {
                    scratch.push('_');
                }
                scratch.push_str(part);
            }
            return Some(if scratch.is_empty() { "System" } else { scratch.as_str() });
        }
        // EventData, UserData and other sections: the innermost element's name.
        let mut element = section;
        let mut attribute = None;
        let mut parts = rest.peekable();
        while let Some(part) = parts.next() {
            match part {
                "#text" => {}
                "#attributes" => attribute = parts.next(),
                name => element = name,
            }
        }
        match attribute {
            None => Some(element),
            Some(attribute) if attribute.starts_with("xmlns") => None,
            // Attributes of the section element itself name nothing a rule uses.
            Some(_) if element == section => None,
            Some(attribute) => {
                scratch.clear();
                scratch.push_str(element);
                scratch.push('_');
                scratch.push_str(attribute);
                Some(scratch.as_str())
            }
        }
    }
}

struct Walker<'a> {
    event: &'a mut Event,
    symbols: &'a mut SymbolCache,
    path: &'a mut Path,
    name: &'a mut String,
    sections: &'a mut Sections,
    overflow: bool,
}

/// Where the fields of a Windows event came from, by index.
#[derive(Default)]
struct Sections {
    system: Vec<usize>,
    event_data: Vec<usize>,
    other_data: Vec<usize>,
}

impl Sections {
    fn clear(&mut self) {
        self.system.clear();
        self.event_data.clear();
        self.other_data.clear();
    }
}

enum Leaf<'v> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'v str),
}

impl Walker<'_> {
    fn leaf(&mut self, value: Leaf<'_>) {
        if !self.event.has_room() {
            self.overflow = true;
            return;
        }
        let Some(name) = self.path.field_name(self.name) else {
            return;
        };
        if name.is_empty() {
            return;
        }
        let symbol = self.symbols.get(name);
        if let Some(root) = self.path.windows_root {
            let index = self.event.raw_len();
            match self.path.segment(root) {
                "System" => self.sections.system.push(index),
                "EventData" => self.sections.event_data.push(index),
                _ => self.sections.other_data.push(index),
            }
        }
        match value {
            Leaf::Null => self.event.push_null(symbol, name),
            Leaf::Bool(value) => self.event.push_bool(symbol, name, value),
            Leaf::U64(value) => self.event.push_u64(symbol, name, value),
            Leaf::I64(value) => self.event.push_i64(symbol, name, value),
            Leaf::F64(value) => self.event.push_f64(symbol, name, value),
            Leaf::Str(value) => self.event.push_str(symbol, name, value),
        }
    }
}

/// The record itself: must be an object.
struct Root<'w, 'a>(&'w mut Walker<'a>);

impl<'de> DeserializeSeed<'de> for Root<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(RootVisitor(self.0))
    }
}

struct RootVisitor<'w, 'a>(&'w mut Walker<'a>);

impl<'de> Visitor<'de> for RootVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        NodeVisitor(self.0).visit_map(map)
    }
}

/// Any value below the root.
struct Node<'w, 'a>(&'w mut Walker<'a>);

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(NodeVisitor(self.0))
    }
}

struct NodeVisitor<'w, 'a>(&'w mut Walker<'a>);

/// A map key, appended to the path without an allocation.
struct Key<'w>(&'w mut Path);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.0.push(key);
        Ok(())
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.leaf(Leaf::Null);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.0.leaf(Leaf::Bool(value));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.0.leaf(Leaf::U64(value));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.0.leaf(Leaf::I64(value));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.0.leaf(Leaf::F64(value));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.leaf(Leaf::Str(value));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Node(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walker = self.0;
        while map.next_key_seed(Key(&mut *walker.path))?.is_some() {
            let path = &mut *walker.path;
            if path.windows_root.is_none() && path.depth() == 1 && path.segment(0) == "Event" {
                path.windows_root = Some(1);
            }
            map.next_value_seed(Node(&mut *walker))?;
            walker.path.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    fn decode(json: &str) -> Event {
        JsonDecoder::new().decode(json.as_bytes()).unwrap()
    }

    fn get<'a>(event: &'a Event, name: &str) -> Option<Value<'a>> {
        event.get(Symbol::intern(name))
    }

    #[test]
    fn nested_objects_become_dotted_paths() {
        let event = decode(r#"{"process": {"name": "cmd.exe", "pid": 42, "parent": {"name": "x"}}, "ok": true}"#);
        assert_eq!(get(&event, "process.name"), Some(Value::String("cmd.exe")));
        assert_eq!(get(&event, "process.pid"), Some(Value::Number("42")));
        assert_eq!(event.get_path("process.parent.name"), Some(Value::String("x")));
        assert_eq!(get(&event, "ok"), Some(Value::Bool(true)));
    }

    #[test]
    fn arrays_repeat_the_field() {
        let event =
            decode(r#"{"tags": ["a", "b"], "hosts": [{"ip": "1.1.1.1"}, {"ip": "2.2.2.2"}], "e": [], "n": null}"#);
        let tags: Vec<_> = event.values(Symbol::intern("tags")).collect();
        assert_eq!(tags, vec![Value::String("a"), Value::String("b")]);
        assert_eq!(event.values(Symbol::intern("hosts.ip")).count(), 2);
        assert!(!event.contains(Symbol::intern("e")));
        assert_eq!(get(&event, "n"), Some(Value::Null));
    }

    #[test]
    fn escaped_keys_and_values_and_numbers() {
        let event = decode(r#"{"a\"b": "line\nbreak", "f": 1.5, "neg": -3, "big": 18446744073709551615}"#);
        assert_eq!(get(&event, "a\"b"), Some(Value::String("line\nbreak")));
        assert_eq!(get(&event, "f"), Some(Value::Number("1.5")));
        assert_eq!(get(&event, "neg"), Some(Value::Number("-3")));
        assert_eq!(get(&event, "big"), Some(Value::Number("18446744073709551615")));
    }

    #[test]
    fn windows_events_get_sigma_field_names() {
        let json = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},
          "System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Guid":"{5484}"}},
            "EventID":{"#attributes":{"Qualifiers":16384},"#text":4688},"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:35:15.1852181Z"}},
            "EventRecordID":452821,"Correlation":null,"Execution":{"#attributes":{"ProcessID":4,"ThreadID":60}},
            "Channel":"Security","Computer":"PC01.example.corp","Security":{"#attributes":{"UserID":"S-1-5-18"}}},
          "EventData":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe","Data":["x","y"]},
          "UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://manifests"},"SubjectUserName":"bob"}}}}"##;
        let event = decode(json);
        assert_eq!(get(&event, "EventID"), Some(Value::Number("4688")));
        assert_eq!(get(&event, "EventID_Qualifiers"), Some(Value::Number("16384")));
        assert_eq!(get(&event, "Provider_Name"), Some(Value::String("Microsoft-Windows-Security-Auditing")));
        assert_eq!(get(&event, "Channel"), Some(Value::String("Security")));
        assert_eq!(get(&event, "Execution_ProcessID"), Some(Value::Number("4")));
        assert_eq!(get(&event, "Security_UserID"), Some(Value::String("S-1-5-18")));
        assert_eq!(get(&event, "Correlation"), Some(Value::Null));
        assert_eq!(get(&event, "NewProcessName"), Some(Value::String("C:\\Windows\\System32\\whoami.exe")));
        assert_eq!(event.values(Symbol::intern("Data")).count(), 2);
        assert_eq!(get(&event, "SubjectUserName"), Some(Value::String("bob")));
        assert!(!event.fields().any(|field| field.name.contains("xmlns")));
        assert_eq!(event.record_id, Some(452821));
        let time = event.timestamp.unwrap();
        assert_eq!((time.year(), time.hour(), time.nanosecond()), (2019, 23, 185_218_100));
    }

    #[test]
    fn windows_event_data_shadows_system_fields() {
        let json = r##"{"Event":{"System":{"Channel":"System","EventID":104,"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}}},
          "UserData":{"LogFileCleared":{"SubjectUserName":"bob","Channel":"Security"}}}}"##;
        let event = decode(json);
        assert_eq!(get(&event, "Channel"), Some(Value::String("Security")));
        assert_eq!(get(&event, "System_Channel"), Some(Value::String("System")));
        assert_eq!(event.logsource.as_ref().and_then(|source| source.product.as_deref()), Some("windows"));
    }

    #[test]
    fn windows_names_with_spaces_and_the_data_container() {
        let json = r##"{"Event":{"System":{"Channel":"Microsoft-Windows-Windows Defender/Operational","EventID":1116},
          "EventData":{"Threat Name":"EICAR","Process Name":"C:\\x.exe"}}}"##;
        let event = decode(json);
        assert_eq!(get(&event, "Threat Name"), Some(Value::String("EICAR")));
        assert_eq!(get(&event, "ThreatName"), Some(Value::String("EICAR")));
        assert_eq!(get(&event, "Threat_Name"), Some(Value::String("EICAR")));
        assert_eq!(event.values(Symbol::intern("Data")).count(), 2, "Data holds every EventData value");
        assert_eq!(event.len(), 4, "aliases are not shown");
        let unnamed = decode(
            r##"{"Event":{"System":{"EventID":400},"EventData":{"Data":{"#text":["a","HostApplication=x"]}}}}"##,
        );
        assert_eq!(unnamed.values(Symbol::intern("Data")).count(), 2);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut decoder = JsonDecoder::new();
        for bad in ["", "[1,2]", "{\"a\":", "{\"a\": 1} trailing", "\"text\"", "{\"a\": tru}"] {
            assert!(decoder.decode(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
        let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        assert!(decoder.decode(deep.as_bytes()).is_err(), "nesting is bounded");
        let wide = format!("{{{}}}", (0..5000).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(","));
        assert!(matches!(decoder.decode(wide.as_bytes()), Err(DecodeError::TooManyFields { .. })));
        let not_utf8 = decoder.decode(b"{\"a\": \"caf\xe9\"}").unwrap_err().to_string();
        assert!(not_utf8.contains("column"), "the place is named: {not_utf8}");
        let event = decoder.decode("{\"caf\u{e9}\": \"\u{1f600} \\u00e9\"}".as_bytes()).unwrap();
        assert_eq!(get(&event, "caf\u{e9}"), Some(Value::String("\u{1f600} \u{e9}")));
    }

    #[test]
    fn decoder_is_reusable_after_errors() {
        let mut decoder = JsonDecoder::new();
        let mut event = Event::new();
        assert!(decoder.decode_into(b"{\"Event\": {\"System\": {\"X\": ", &mut event).is_err());
        decoder.decode_into(b"{\"a\": {\"b\": 1}}", &mut event).unwrap();
        assert_eq!(get(&event, "a.b"), Some(Value::Number("1")));
    }
}
