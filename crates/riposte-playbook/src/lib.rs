//! Response playbooks, the pure part: the YAML language, its checks at
//! load (file and line for every problem), templates compiled once, and an
//! interpreter that runs a playbook step by step against a journal of what
//! already happened, so that a run resumed after a restart never acts twice.
//! Connectors, the store and the clock are the edges' job (see [`run::Host`]).

pub mod catalog;
pub mod load;
pub mod model;
pub mod replay;
pub mod run;
pub mod template;
pub mod trigger;

pub use catalog::{ActionSpec, Catalog, Follow, InputSpec, InputType};
pub use load::{Library, LoadError, load};
pub use model::{ApprovalSpec, Autonomy, Input, OnError, Playbook, Retry, Step, StepKind, parse_duration};
pub use run::{ActError, Admission, Call, DryRun, Entry, Host, HostError, Interpreter, Outcome, State, Trace, Undo};
pub use template::{Expr, Templates, Tmpl};
pub use trigger::{AlertFilter, Cron, Trigger};
