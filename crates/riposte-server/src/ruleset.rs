//! The running rule set: replaced whole, without a restart, by a reload or
//! when a rule is turned on or off; a reload that fails leaves it in place.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use crate::rules::{self, LoadedRules, RuleOptions, RulesError};

/// Why a new rule set was not put in place.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] RulesError),
    #[error("{} rules failed to load; the running rules are unchanged: {}", .0.len(), .0.join("; "))]
    Rules(Vec<String>),
    #[error("no rule is left to run; the running rules are unchanged")]
    Empty,
}

pub struct RuleSet {
    options: RuleOptions,
    current: RwLock<Arc<LoadedRules>>,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl RuleSet {
    /// Loads the first set. Rules that fail are reported and left out; the
    /// others run.
    pub fn load(options: RuleOptions) -> Result<RuleSet, RulesError> {
        let loaded = rules::load(&options)?;
        loaded.engine.prepare();
        for error in &loaded.report.errors {
            tracing::warn!(%error, "rule not loaded");
        }
        Ok(RuleSet { options, current: RwLock::new(Arc::new(loaded)), reloading: Mutex::new(()) })
    }

    pub fn current(&self) -> Arc<LoadedRules> {
        self.current.read().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    /// Loads the rules again from their files, with `disabled` left out. Any
    /// rule that fails keeps the running set.
    pub fn reload(&self, disabled: &BTreeSet<String>) -> Result<Arc<LoadedRules>, ReloadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut options = self.options.clone();
        options.selection.disabled = disabled.clone();
        let loaded = rules::load(&options)?;
        if !loaded.report.errors.is_empty() {
            return Err(ReloadError::Rules(loaded.report.errors.iter().map(ToString::to_string).collect()));
        }
        if loaded.engine.rules().is_empty() {
            return Err(ReloadError::Empty);
        }
        // Built before the swap: the stream does not wait for it.
        loaded.engine.prepare();
        let loaded = Arc::new(loaded);
        *self.current.write().unwrap_or_else(|poison| poison.into_inner()) = loaded.clone();
        Ok(loaded)
    }
}
