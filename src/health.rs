//! What each component is doing, for `/health` and `/status`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentState {
    Starting,
    Running,
    /// Failed; retrying after a backoff.
    Retrying {
        error: String,
    },
    /// Needs a person: retrying slowly until it is fixed.
    WaitingForOperator {
        error: String,
    },
    Stopped {
        error: Option<String>,
    },
}

#[derive(Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, ComponentState>>,
}

impl Health {
    pub fn set(&self, component: &str, state: ComponentState) {
        let mut c = self.components.lock().unwrap_or_else(|p| p.into_inner());
        c.insert(component.to_owned(), state);
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Healthy while every component runs (or is starting).
    pub fn healthy(&self) -> bool {
        self.snapshot()
            .values()
            .all(|s| matches!(s, ComponentState::Running | ComponentState::Starting))
    }
}
