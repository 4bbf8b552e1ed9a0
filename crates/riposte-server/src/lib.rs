//! `riposte serve`: sources feed a durable spool, a pipeline matches every
//! spooled event against the rules and stores alerts, and a REST API serves
//! them (with tokens, an audit trail and metrics).

pub mod alert;
pub mod api;
pub mod auth;
pub mod config;
pub mod imap;
pub mod intel;
pub mod mail_auth;
pub mod metrics;
pub mod pipeline;
pub mod playbooks;
pub mod quarantine;
pub mod rules;
pub mod ruleset;
pub mod server;
pub mod sources;
pub mod spool;

pub use riposte_connectors::fetch;
pub use server::{ADMIN_TOKEN_FILE, ServeError, Server};
