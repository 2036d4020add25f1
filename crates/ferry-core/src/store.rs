//! A small namespaced key-value store that providers may use for state they own (a
//! rotated OAuth token, a circuit-breaker record). The engine backs it with its state
//! database; providers never see the engine's tables.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};

pub trait KvStore: Send + Sync + fmt::Debug {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<String>>;
    fn put(&self, namespace: &str, key: &str, value: &str) -> Result<()>;
    fn delete(&self, namespace: &str, key: &str) -> Result<()>;
}

/// An in-memory [`KvStore`], for tests and for runs without a state file.
#[derive(Default)]
pub struct MemoryKvStore {
    map: Mutex<HashMap<(String, String), String>>,
}

impl fmt::Debug for MemoryKvStore {
    // Values may be tokens: print only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("MemoryKvStore")
            .field("entries", &n)
            .finish()
    }
}

impl MemoryKvStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Unexpected, "in-memory store lock poisoned")
}

impl KvStore for MemoryKvStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        let m = self.map.lock().map_err(|_| poisoned())?;
        Ok(m.get(&(namespace.to_owned(), key.to_owned())).cloned())
    }

    fn put(&self, namespace: &str, key: &str, value: &str) -> Result<()> {
        let mut m = self.map.lock().map_err(|_| poisoned())?;
        m.insert((namespace.to_owned(), key.to_owned()), value.to_owned());
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        let mut m = self.map.lock().map_err(|_| poisoned())?;
        m.remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }
}
