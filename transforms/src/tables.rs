//! Which tables a transform applies to.

use headwater_core::config::glob_match;
use headwater_core::TableId;

/// Globs over `namespace.table`; no globs means every table.
#[derive(Clone, Debug, Default)]
pub struct TableMatcher(Vec<String>);

impl TableMatcher {
    pub fn new(globs: &[String]) -> Self {
        TableMatcher(globs.to_vec())
    }

    pub fn matches(&self, table: &TableId) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let name = table.to_string();
        self.0.iter().any(|g| glob_match(g, &name))
    }
}
