//! The Sigma rule language, compiled into an indexed matcher.
//!
//! Pure library: rule text in, matches out; no I/O and no threads of its own.
//!
//! ```
//! use riposte_event::Event;
//! use riposte_sigma::{EngineBuilder, Mapping};
//!
//! let mut builder = EngineBuilder::new(Mapping::builtin());
//! builder.add_file("whoami.yml", r#"
//! title: Whoami
//! logsource: {product: windows, category: process_creation}
//! detection:
//!   selection:
//!     Image|endswith: '\whoami.exe'
//!   condition: selection
//! "#);
//! let (engine, report) = builder.build(|_| Ok(()));
//! assert!(report.errors.is_empty());
//!
//! let mut event = Event::new()
//!     .with("Channel", "Microsoft-Windows-Sysmon/Operational")
//!     .with("EventID", 1)
//!     .with("Image", r"C:\Windows\System32\whoami.exe");
//! let mut scratch = engine.new_scratch();
//! let mut matched = Vec::new();
//! engine.matches(&mut event, &mut scratch, &mut matched);
//! assert_eq!(engine.rule(matched[0]).meta.title, "Whoami");
//! ```

pub mod attack;
mod condition;
pub mod correlate;
pub mod correlation;
mod detection;
mod engine;
mod error;
mod literals;
pub mod mapping;
mod matcher;
mod modifier;
mod pcre;
mod rule;
mod text;
mod yaml;

pub use attack::{Tactic, Technique};
pub use correlate::{CorrelationMatch, Correlator, CorrelatorConfig, CorrelatorStats, Snapshot};
pub use correlation::{Comparison, Correlation, CorrelationType};
pub use engine::{Engine, EngineBuilder, EngineStats, LoadReport, Scratch, Skipped};
pub use error::{LoadError, MappingError};
pub use mapping::Mapping;
pub use modifier::{Placeholders, REGEX_SIZE_LIMIT};
pub use rule::{Filter, Level, ParsedFile, Rule, RuleMeta, Status, parse_file};
pub use yaml::MAX_RULE_FILE_BYTES;
