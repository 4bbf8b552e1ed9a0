//! The integration tests of `riposte`, in one binary (linked once).
//!
//! Tests that read `../shared/corpus` say `SKIPPED` when it is absent.

mod common;

mod attack_samples;
mod cli;
mod differential;
mod imap;
mod playbooks;
mod regression;
mod serve;
