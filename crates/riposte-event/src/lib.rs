//! The one event model of Riposte.
//!
//! Every source (EVTX, JSON lines, syslog, tool alerts) produces an [`Event`]:
//! a flat list of fields named by dotted path, with interned names
//! ([`Symbol`]) so that matching compares integers and slices, never
//! allocates. This crate does no I/O.

mod error;
mod event;
pub mod json;
mod logsource;
mod symbol;
pub mod timestamp;

pub use error::{DecodeError, Result};
pub use event::{Event, FieldRef, MAX_FIELDS, OwnedValue, Value};
pub use json::JsonDecoder;
pub use logsource::LogSource;
pub use symbol::{DATA_NAME_LIMIT, Symbol, SymbolCache};
