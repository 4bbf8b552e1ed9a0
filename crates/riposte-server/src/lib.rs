//! `riposte serve`: sources feed a durable spool, a pipeline matches every
//! spooled event against the rules and stores alerts, and a REST API serves
//! them (with tokens, an audit trail and metrics).

pub mod config;
pub mod rules;
pub mod spool;
