//! Threat intelligence, the pure part: indicators and their normalised
//! forms, defanged text made real, a set that matches observables at line
//! rate whatever its size, and readers for plain blocklists, CSV, STIX 2.x
//! bundles and MISP events.
//! Fetching feeds is the server's job.

pub mod decay;
pub mod defang;
pub mod extract;
pub mod feed;
pub mod indicator;
pub mod misp;
pub mod normalize;
pub mod observe;
pub mod set;
pub mod stix;

pub use decay::{DecayModel, DecayOverrides, DecayPolicy, sighting};
pub use defang::{defang, refang};
pub use extract::{Extracted, extract};
pub use feed::{CsvColumns, FeedError, FeedReport, read_blocklist, read_csv};
pub use indicator::{Context, ContextKind, Indicator, IndicatorKind, Tlp};
pub use misp::{MispError, MispImport, import_event};
pub use normalize::{InvalidValue, normalize, recognise};
pub use observe::{
    Described, Hit, IntelMatch, MatchedIndicator, Sought, describe, enrichment, match_event, observable_values, sought,
};
pub use set::{IndicatorId, IndicatorSet};
pub use stix::{StixError, StixImport, import_bundle, pattern_values};
