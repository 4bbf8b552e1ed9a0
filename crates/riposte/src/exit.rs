//! Exit codes of the `riposte` command, for scripts.

use std::process::ExitCode;

/// The job ran and found nothing to report.
pub const OK: u8 = 0;
/// The job ran and found something (`hunt`: detections).
pub const FINDINGS: u8 = 1;
/// Rules or playbooks could not be loaded (`rules check`, `playbook
/// validate`: any; `hunt`: no rule at all).
pub const RULE_ERROR: u8 = 2;
/// Bad arguments, configuration or inputs.
pub const CONFIG_ERROR: u8 = 3;

pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
