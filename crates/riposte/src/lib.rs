//! The `riposte` command, as a library so that tests and benchmarks drive the
//! same code as the binary.

pub mod cli;
pub mod email;
pub mod exit;
pub mod hunt;
pub mod intel;
pub mod playbook;
pub mod secret;
pub mod serve;
pub mod terminal;
pub mod update;

pub use riposte_server::rules;
