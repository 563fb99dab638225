// Placeholder so the workspace manifest parses; the log engineer replaces it.
fn main() {}
