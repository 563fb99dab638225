//! Just enough statement parsing for the stream: the first keyword of a
//! QUERY event, and the table a `TRUNCATE` names. Every other DDL makes
//! the stream re-read the schemas it uses, so nothing else is parsed.

/// Skips whitespace and comments (`/* */`, `-- `, `#`).
fn skip_space(s: &str) -> &str {
    let mut s = s.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]).trim_start();
        } else if s.starts_with("-- ") || s.starts_with('#') {
            s = s.find('\n').map_or("", |i| &s[i + 1..]).trim_start();
        } else {
            return s;
        }
    }
}

/// The first keyword, lower case (`begin`, `commit`, `alter`, …).
pub fn first_word(sql: &str) -> String {
    skip_space(sql)
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One identifier, backquoted or bare; returns it and the rest.
fn identifier(s: &str) -> Option<(String, &str)> {
    let s = skip_space(s);
    if let Some(rest) = s.strip_prefix('`') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if rest[i + 1..].starts_with('`') {
                    out.push('`');
                    chars.next();
                } else {
                    return Some((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_owned(), &s[end..]))
    }
}

/// `(database, table)` of a `TRUNCATE [TABLE] [db.]name`, with
/// `default_db` (the event's current database) when unqualified.
pub fn truncated_table(sql: &str, default_db: &str) -> Option<(String, String)> {
    let s = skip_space(sql);
    let (word, rest) = identifier(s)?;
    if !word.eq_ignore_ascii_case("truncate") {
        return None;
    }
    let (mut first, mut rest) = identifier(rest)?;
    if first.eq_ignore_ascii_case("table") && !skip_space(rest).starts_with('.') {
        (first, rest) = identifier(rest)?;
    }
    match skip_space(rest).strip_prefix('.') {
        Some(after_dot) => {
            let (table, _) = identifier(after_dot)?;
            Some((first, table))
        }
        None => Some((default_db.to_owned(), first)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words() {
        assert_eq!(first_word("BEGIN"), "begin");
        assert_eq!(first_word("/* x */ ALTER TABLE t"), "alter");
        assert_eq!(first_word("  COMMIT /* implicit */"), "commit");
    }

    #[test]
    fn truncate_names() {
        assert_eq!(
            truncated_table("TRUNCATE TABLE t", "db"),
            Some(("db".into(), "t".into()))
        );
        assert_eq!(
            truncated_table("truncate `a b`.`c`", "db"),
            Some(("a b".into(), "c".into()))
        );
        assert_eq!(
            truncated_table("TRUNCATE shop.orders", "db"),
            Some(("shop".into(), "orders".into()))
        );
        assert_eq!(
            truncated_table("truncate table `table`", "db"),
            Some(("db".into(), "table".into()))
        );
        assert_eq!(truncated_table("ALTER TABLE t", "db"), None);
    }
}
