// SPDX-License-Identifier: GPL-2.0
//! vsctl's one error type: what `main` prints after `vsctl: ` and the exit status.

use std::fmt;

use clap::error::ErrorKind;

/// A failure of vsctl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The command line is wrong. The kind is clap's, and so is the exit status (2): the
    /// same as for the errors clap finds itself.
    Usage(ErrorKind, String),
    /// The operation failed: exit status 1.
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(kind, _) => clap::Error::new(*kind).exit_code() as u8,
            Error::Failed(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Usage(_, m) | Error::Failed(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A value clap refused through one of vsctl's value parsers, as one line:
/// `invalid --cpu-share '0': share must be 1..100`, `invalid pid 'x': ...`. `None` for the
/// errors clap words itself (a missing or unknown argument, `--help`).
pub fn from_clap(e: &clap::Error) -> Option<Error> {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let (arg, value) = (
        text(ContextKind::InvalidArg)?,
        text(ContextKind::InvalidValue)?,
    );
    let reason = std::error::Error::source(e)?;
    // `--cpu-share <S>` is named by its flag, a positional `<RULE_ID>` by its value name.
    let what = match arg.split_once(' ') {
        Some((flag, _)) if flag.starts_with("--") => flag.to_string(),
        _ => arg
            .trim_matches(|c| c == '<' || c == '>')
            .to_lowercase()
            .replace('_', " "),
    };
    Some(Error::Usage(
        ErrorKind::ValueValidation,
        format!("invalid {what} '{value}': {reason}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            Error::Usage(ErrorKind::ArgumentConflict, "x".into()).exit_code(),
            2
        );
        assert_eq!(
            Error::Usage(ErrorKind::ValueValidation, "x".into()).exit_code(),
            2
        );
        assert_eq!(Error::Failed("x".into()).exit_code(), 1);
    }
}
