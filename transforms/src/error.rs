use headwater_core::error::{Classify, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("transform {index} ({kind}): {message}")]
    Invalid {
        index: usize,
        kind: &'static str,
        message: String,
    },
    #[error("transform `{transform}` on {table}: column `{column}` is not nullable, so method = \"null\" cannot mask it; use \"redact\" or \"hash\"")]
    NotNullable {
        transform: &'static str,
        table: String,
        column: String,
    },
}

impl Classify for TransformError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::WaitForOperator
    }
}
