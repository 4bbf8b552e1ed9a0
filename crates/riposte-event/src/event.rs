//! The event: one flat list of named values for every source.
//!
//! Nested input is flattened at decode time into dotted paths (`process.name`),
//! arrays into repeated fields with the same name. The text of an event's
//! values lives in one arena string and that of its names in another, so
//! reading a field on the hot path is a slice, never an allocation, and a
//! search of every value can read them all at once.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use time::OffsetDateTime;

use crate::logsource::LogSource;
use crate::symbol::Symbol;

/// Most fields one event may hold; decoders reject bigger records.
pub const MAX_FIELDS: usize = 4_096;

/// A value of a field, borrowed from its event.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// A number, as its decimal text.
    Number(&'a str),
    String(&'a str),
}

impl<'a> Value<'a> {
    /// The text a matcher compares: strings and numbers as written, booleans as
    /// `true` / `false`; `None` for null.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Value::Null => None,
            Value::Bool(true) => Some("true"),
            Value::Bool(false) => Some("false"),
            Value::Number(text) | Value::String(text) => Some(text),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text().unwrap_or("null"))
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Copy, Clone, Debug)]
enum Slot {
    Null,
    Bool(bool),
    Number(Span),
    String(Span),
}

#[derive(Copy, Clone, Debug)]
struct Field {
    symbol: Symbol,
    name: Span,
    value: Slot,
    /// An alias added by a field mapping: matched like any field, not shown.
    alias: bool,
}

/// A field of an event, borrowed.
#[derive(Copy, Clone, Debug)]
pub struct FieldRef<'a> {
    pub symbol: Symbol,
    pub name: &'a str,
    pub value: Value<'a>,
    /// Added by a field mapping rather than by the source.
    pub alias: bool,
}

/// One event from any source.
#[derive(Clone, Default)]
pub struct Event {
    /// The text of the values.
    text: String,
    /// The text of the names.
    names: String,
    fields: Vec<Field>,
    /// When it happened, if the source says.
    pub timestamp: Option<OffsetDateTime>,
    /// The record number in its source (EVTX record id, line number).
    pub record_id: Option<u64>,
    /// What the decoder knows of where it came from.
    pub logsource: Option<Arc<LogSource>>,
}

impl Event {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the event, keeping its buffers for the next one.
    pub fn clear(&mut self) {
        self.text.clear();
        self.names.clear();
        self.fields.clear();
        self.timestamp = None;
        self.record_id = None;
        self.logsource = None;
    }

    pub fn len(&self) -> usize {
        self.fields.iter().filter(|field| !field.alias).count()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether another field fits under [`MAX_FIELDS`].
    pub fn has_room(&self) -> bool {
        self.fields.len() < MAX_FIELDS
    }

    fn push_text(&mut self, text: &str) -> Span {
        push_span(&mut self.text, text)
    }

    fn push_name(&mut self, name: &str) -> Span {
        push_span(&mut self.names, name)
    }

    fn push_field(&mut self, symbol: Symbol, name: &str, value: Slot) {
        let name = self.push_name(name);
        self.fields.push(Field { symbol, name, value, alias: false });
    }

    pub fn push_null(&mut self, symbol: Symbol, name: &str) {
        self.push_field(symbol, name, Slot::Null);
    }

    pub fn push_bool(&mut self, symbol: Symbol, name: &str, value: bool) {
        self.push_field(symbol, name, Slot::Bool(value));
    }

    /// Adds a number given as its decimal text.
    pub fn push_number(&mut self, symbol: Symbol, name: &str, text: &str) {
        let span = self.push_text(text);
        self.push_field(symbol, name, Slot::Number(span));
    }

    pub fn push_u64(&mut self, symbol: Symbol, name: &str, value: u64) {
        self.push_number(symbol, name, itoa::Buffer::new().format(value));
    }

    pub fn push_i64(&mut self, symbol: Symbol, name: &str, value: i64) {
        self.push_number(symbol, name, itoa::Buffer::new().format(value));
    }

    pub fn push_f64(&mut self, symbol: Symbol, name: &str, value: f64) {
        if value.is_finite() {
            self.push_number(symbol, name, ryu::Buffer::new().format_finite(value));
        } else {
            self.push_null(symbol, name);
        }
    }

    pub fn push_str(&mut self, symbol: Symbol, name: &str, value: &str) {
        let span = self.push_text(value);
        self.push_field(symbol, name, Slot::String(span));
    }

    /// Adds a field by name, interning it (for tests, examples and configuration).
    pub fn with(mut self, name: &str, value: impl Into<OwnedValue>) -> Self {
        let symbol = Symbol::intern(name);
        match value.into() {
            OwnedValue::Null => self.push_null(symbol, name),
            OwnedValue::Bool(value) => self.push_bool(symbol, name, value),
            OwnedValue::Number(text) => self.push_number(symbol, name, &text),
            OwnedValue::String(text) => self.push_str(symbol, name, &text),
        }
        self
    }

    /// Makes every value of `from` readable as `to` too, without copying text.
    /// Aliases are matched like fields but left out of [`Event::fields`] and of
    /// the serialised event. Does nothing when `to` is already present.
    pub fn add_alias(&mut self, from: Symbol, to: Symbol) {
        if self.fields.iter().any(|field| field.symbol == to) {
            return;
        }
        let name = to.as_str();
        for index in 0..self.fields.len() {
            let field = self.fields[index];
            if field.symbol == from && !field.alias && self.has_room() {
                let name = self.push_name(name);
                self.fields.push(Field { symbol: to, name, value: field.value, alias: true });
            }
        }
    }

    /// Adds a hidden field (like an alias) with a text of its own, for values a
    /// mapping translates.
    pub fn push_hidden_str(&mut self, symbol: Symbol, value: &str) {
        if !self.has_room() {
            return;
        }
        let value = self.push_text(value);
        let name = self.push_name(symbol.as_str());
        self.fields.push(Field { symbol, name, value: Slot::String(value), alias: true });
    }

    /// The text of every value of the event (aliases' own too), in no
    /// particular layout: a search that only needs to know whether a text
    /// occurs in some value can read them in one go. Booleans and nulls hold
    /// no text.
    #[inline]
    pub fn values_text(&self) -> &str {
        &self.text
    }

    /// The number of fields, aliases included: the positions of
    /// [`Event::symbol_at`] and [`Event::values_between`].
    #[inline]
    pub fn raw_len(&self) -> usize {
        self.fields.len()
    }

    /// The symbol of the field at a position (aliases included).
    #[inline]
    pub fn symbol_at(&self, index: usize) -> Symbol {
        self.fields[index].symbol
    }

    /// The symbols of the fields from a position on, in order (aliases included).
    #[inline]
    pub fn symbols_from(&self, index: usize) -> impl Iterator<Item = Symbol> + '_ {
        self.fields.get(index..).unwrap_or_default().iter().map(|field| field.symbol)
    }

    /// The value of the field at a position (aliases included).
    #[inline]
    pub fn value_at(&self, index: usize) -> Value<'_> {
        self.value_of(self.fields[index].value)
    }

    /// Whether the field at a position was added by a mapping.
    #[inline]
    pub fn is_alias_at(&self, index: usize) -> bool {
        self.fields[index].alias
    }

    /// The values of a field among the fields at positions `first..=last`
    /// (for callers that index where each field is).
    #[inline]
    pub fn values_between(&self, first: usize, last: usize, symbol: Symbol) -> impl Iterator<Item = Value<'_>> + '_ {
        let fields = self.fields.get(first..=last).unwrap_or_default();
        fields.iter().filter(move |field| field.symbol == symbol).map(|field| self.value_of(field.value))
    }

    /// The name of the field at a position (aliases included).
    pub fn name_at(&self, index: usize) -> &str {
        &self.names[self.fields[index].name.range()]
    }

    /// Gives the field at `index` another name.
    pub(crate) fn rename_at(&mut self, index: usize, symbol: Symbol, name: &str) {
        let name = self.push_name(name);
        let field = &mut self.fields[index];
        field.symbol = symbol;
        field.name = name;
    }

    /// Makes the field at `index` readable under another name too (hidden).
    pub fn alias_at(&mut self, index: usize, symbol: Symbol, name: &str) {
        if !self.has_room() {
            return;
        }
        let value = self.fields[index].value;
        let name = self.push_name(name);
        self.fields.push(Field { symbol, name, value, alias: true });
    }

    #[inline]
    fn value_of(&self, slot: Slot) -> Value<'_> {
        match slot {
            Slot::Null => Value::Null,
            Slot::Bool(value) => Value::Bool(value),
            Slot::Number(span) => Value::Number(&self.text[span.range()]),
            Slot::String(span) => Value::String(&self.text[span.range()]),
        }
    }

    fn field_ref(&self, field: &Field) -> FieldRef<'_> {
        FieldRef {
            symbol: field.symbol,
            name: &self.names[field.name.range()],
            value: self.value_of(field.value),
            alias: field.alias,
        }
    }

    /// The first value of a field.
    #[inline]
    pub fn get(&self, symbol: Symbol) -> Option<Value<'_>> {
        self.fields.iter().find(|field| field.symbol == symbol).map(|field| self.value_of(field.value))
    }

    /// Every value of a field (more than one when the source had an array).
    #[inline]
    pub fn values(&self, symbol: Symbol) -> impl Iterator<Item = Value<'_>> + '_ {
        self.fields.iter().filter(move |field| field.symbol == symbol).map(|field| self.value_of(field.value))
    }

    /// Whether the field is present (with any value, null included).
    #[inline]
    pub fn contains(&self, symbol: Symbol) -> bool {
        self.fields.iter().any(|field| field.symbol == symbol)
    }

    /// The first value at a dotted path such as `process.parent.name`.
    pub fn get_path(&self, path: &str) -> Option<Value<'_>> {
        let symbol = Symbol::lookup(path)?;
        self.get(symbol)
    }

    /// The first value of a field as text (see [`Value::as_text`]).
    #[inline]
    pub fn text(&self, symbol: Symbol) -> Option<&str> {
        self.get(symbol).and_then(|value| value.as_text())
    }

    /// The fields as the source gave them, in order, aliases left out.
    pub fn fields(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        self.fields.iter().filter(|field| !field.alias).map(|field| self.field_ref(field))
    }

    /// Every field a matcher sees: the source's fields and the aliases.
    #[inline]
    pub fn matchable_fields(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        self.fields.iter().map(|field| self.field_ref(field))
    }

    /// The event as a JSON object: one key per field name, repeated names as arrays.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The same object written straight to JSON text, for storing: no tree of
    /// values is built on the way.
    pub fn to_json_text(&self) -> Box<serde_json::value::RawValue> {
        serde_json::value::to_raw_value(self).unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
    }
}

fn to_u32(offset: usize) -> u32 {
    // Events are bounded by the decoders' record limits, far below 4 GiB.
    u32::try_from(offset).unwrap_or(u32::MAX)
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for field in self.fields() {
            map.entry(&field.name, &field.value);
        }
        map.finish()
    }
}

/// Appends `text` to an arena, returning where it is.
fn push_span(arena: &mut String, text: &str) -> Span {
    let start = arena.len();
    arena.push_str(text);
    Span { start: to_u32(start), end: to_u32(arena.len()) }
}

fn json_number(text: &str) -> serde_json::Value {
    if let Ok(value) = text.parse::<i64>() {
        return value.into();
    }
    if let Ok(value) = text.parse::<u64>() {
        return value.into();
    }
    match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
        Some(number) => serde_json::Value::Number(number),
        None => serde_json::Value::String(text.to_owned()),
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(value) => serializer.serialize_bool(value),
            Value::Number(text) => json_number(text).serialize(serializer),
            Value::String(text) => serializer.serialize_str(text),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields: Vec<FieldRef<'_>> = self.fields().collect();
        // Names compared as symbols where both are interned (every stored
        // event is written here, on the detection threads).
        let same = |a: &FieldRef<'_>, b: &FieldRef<'_>| {
            if a.symbol.is_interned() && b.symbol.is_interned() { a.symbol == b.symbol } else { a.name == b.name }
        };
        let mut map = serializer.serialize_map(None)?;
        let mut done = vec![false; fields.len()];
        for (index, field) in fields.iter().enumerate() {
            if done[index] {
                continue;
            }
            let later = &fields[index + 1..];
            if !later.iter().any(|other| same(field, other)) {
                map.serialize_entry(field.name, &field.value)?;
                continue;
            }
            let mut values = vec![field.value];
            for (offset, other) in later.iter().enumerate() {
                if same(field, other) {
                    values.push(other.value);
                    done[index + 1 + offset] = true;
                }
            }
            map.serialize_entry(field.name, &values)?;
        }
        map.end()
    }
}

/// An owned value, for building events by hand.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    Null,
    Bool(bool),
    Number(String),
    String(String),
}

impl From<&str> for OwnedValue {
    fn from(value: &str) -> Self {
        OwnedValue::String(value.to_owned())
    }
}

impl From<String> for OwnedValue {
    fn from(value: String) -> Self {
        OwnedValue::String(value)
    }
}

impl From<bool> for OwnedValue {
    fn from(value: bool) -> Self {
        OwnedValue::Bool(value)
    }
}

macro_rules! number_into_owned {
    ($($ty:ty),*) => {$(
        impl From<$ty> for OwnedValue {
            fn from(value: $ty) -> Self {
                OwnedValue::Number(value.to_string())
            }
        }
    )*};
}
number_into_owned!(i32, i64, u16, u32, u64, f64);

impl<T: Into<OwnedValue>> From<Option<T>> for OwnedValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(OwnedValue::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_text_holds_every_value_and_no_name() {
        let mut event = Event::new().with("Image", r"C:\x.exe").with("Count", 3).with("Elevated", true);
        event.add_alias(Symbol::intern("Image"), Symbol::intern("NewProcessName"));
        event.push_hidden_str(Symbol::intern("Level"), "high");
        let text = event.values_text();
        for value in [r"C:\x.exe", "3", "high"] {
            assert!(text.contains(value), "{value} in {text:?}");
        }
        for name in ["Image", "Count", "Elevated", "NewProcessName", "Level"] {
            assert!(!text.contains(name), "{name} in {text:?}");
        }
        assert_eq!(event.name_at(3), "NewProcessName");
        assert_eq!(event.text(Symbol::intern("NewProcessName")), Some(r"C:\x.exe"));
    }

    #[test]
    fn fields_read_back_without_copies() {
        let event = Event::new()
            .with("EventID", 4688)
            .with("CommandLine", "whoami /all")
            .with("Elevated", true)
            .with("Missing", None::<&str>);
        let command_line = Symbol::intern("CommandLine");
        assert_eq!(event.get(command_line), Some(Value::String("whoami /all")));
        assert_eq!(event.text(Symbol::intern("EventID")), Some("4688"));
        assert_eq!(event.text(Symbol::intern("Elevated")), Some("true"));
        assert_eq!(event.get(Symbol::intern("Missing")), Some(Value::Null));
        assert!(event.contains(Symbol::intern("Missing")));
        assert_eq!(event.get(Symbol::intern("Absent")), None);
        assert_eq!(event.len(), 4);
    }

    #[test]
    fn repeated_names_are_all_values_and_serialise_as_arrays() {
        let event = Event::new().with("Data", "a").with("Other", 1).with("Data", "b");
        let data: Vec<_> = event.values(Symbol::intern("Data")).collect();
        assert_eq!(data, vec![Value::String("a"), Value::String("b")]);
        assert_eq!(event.to_json(), serde_json::json!({"Data": ["a", "b"], "Other": 1}));
        // The text written for storing is the same object.
        let text: serde_json::Value = serde_json::from_str(event.to_json_text().get()).unwrap();
        assert_eq!(text, event.to_json());
    }

    #[test]
    fn aliases_match_but_stay_hidden() {
        let mut event = Event::new().with("NewProcessName", "C:\\x.exe");
        let image = Symbol::intern("Image");
        event.add_alias(Symbol::intern("NewProcessName"), image);
        assert_eq!(event.text(image), Some("C:\\x.exe"));
        assert_eq!(event.to_json(), serde_json::json!({"NewProcessName": "C:\\x.exe"}));
        assert_eq!(event.to_json_text().get(), r#"{"NewProcessName":"C:\\x.exe"}"#);
        assert_eq!(event.matchable_fields().count(), 2);
        // An alias never shadows a real field of that name.
        let mut event = Event::new().with("NewProcessName", "a").with("Image", "b");
        event.add_alias(Symbol::intern("NewProcessName"), image);
        assert_eq!(event.values(image).count(), 1);
    }

    #[test]
    fn clear_keeps_nothing_but_capacity() {
        let mut event = Event::new().with("a", "b");
        event.record_id = Some(3);
        event.clear();
        assert!(event.is_empty());
        assert_eq!(event.record_id, None);
    }
}
