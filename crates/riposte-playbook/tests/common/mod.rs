#![allow(dead_code)] // each test binary uses part of it

//! A catalog of made-up actions and a host that keeps everything in memory,
//! with a clock the test moves and answers the test queues.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use riposte_playbook::{
    ActError, ActionSpec, Admission, Call, Catalog, Entry, Host, HostError, InputSpec, InputType, Library,
};
use serde_json::Value;

pub fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let mut add = |name: &str, changes: bool, inputs: Vec<InputSpec>, inverse: Option<&str>| {
        catalog.add(ActionSpec {
            name: name.into(),
            description: String::new(),
            changes,
            inputs,
            inverse: inverse.map(str::to_owned),
            secrets: vec![],
            follow: None,
        })
    };
    add("intel.lookup", false, vec![InputSpec::required("value", InputType::String, "")], None);
    let address = || vec![InputSpec::required("address", InputType::String, "")];
    add("firewall.block_ip", true, address(), Some("firewall.unblock_ip"));
    add("firewall.unblock_ip", true, address(), None);
    add("edr.isolate", true, vec![InputSpec::required("host", InputType::String, "")], Some("edr.release"));
    add("edr.release", true, vec![InputSpec::required("host", InputType::String, "")], None);
    add(
        "chat.post",
        true,
        vec![
            InputSpec::required("message", InputType::String, ""),
            InputSpec::optional("channel", InputType::String, ""),
        ],
        None,
    );
    add("never.answers", true, vec![], None);
    catalog
}

pub fn library(sources: &[(&str, &str)]) -> Library {
    let (library, errors) = Library::load(sources.iter().copied(), &catalog());
    assert!(errors.is_empty(), "{errors:#?}");
    library
}

/// A host whose journal survives a "restart" (a new interpreter over it).
#[derive(Default)]
pub struct Memory {
    pub now: AtomicI64,
    pub calls: Mutex<Vec<Call>>,
    pub answers: Mutex<HashMap<String, VecDeque<Result<Value, ActError>>>>,
    pub journal: Mutex<HashMap<String, Entry>>,
    pub admission: Mutex<Option<Admission>>,
    /// Journal writes left before the "process dies" (writes fail).
    pub writes_left: Mutex<Option<usize>>,
    pub writes: AtomicUsize,
}

impl Memory {
    pub fn answer(&self, action: &str, answer: Result<Value, ActError>) {
        self.answers.lock().unwrap().entry(action.to_owned()).or_default().push_back(answer);
    }

    pub fn called(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|call| call.action.clone()).collect()
    }

    pub fn entry(&self, path: &str) -> Option<Entry> {
        self.journal.lock().unwrap().get(path).cloned()
    }

    pub fn put(&self, path: &str, entry: Entry) {
        self.journal.lock().unwrap().insert(path.to_owned(), entry);
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn saved(&self) -> HashMap<String, Entry> {
        self.journal.lock().unwrap().clone()
    }
}

impl Host for Memory {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.advance(duration);
        std::future::ready(())
    }

    fn act(&self, call: &Call) -> impl Future<Output = Result<Value, ActError>> + Send {
        self.calls.lock().unwrap().push(call.clone());
        if call.action == "never.answers" {
            return futures_util::future::Either::Left(std::future::pending());
        }
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get_mut(&call.action)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Ok(serde_json::json!({ "done": call.action })));
        futures_util::future::Either::Right(std::future::ready(answer))
    }

    fn admit(&self, _: &Call) -> impl Future<Output = Admission> + Send {
        std::future::ready(self.admission.lock().unwrap().clone().unwrap_or(Admission::Allow))
    }

    fn record(&self, path: &str, entry: &Entry) -> impl Future<Output = Result<(), HostError>> + Send {
        let mut left = self.writes_left.lock().unwrap();
        let result = match left.as_mut() {
            Some(0) => Err(HostError("the process died".into())),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        };
        if result.is_ok() {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.journal.lock().unwrap().insert(path.to_owned(), entry.clone());
        }
        std::future::ready(result)
    }
}
