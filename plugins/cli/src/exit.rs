//! The one place a command's result becomes the process's exit status.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success (`query`: some event matched) |
//! | 1 | a negative answer: `query` matched nothing, `explain` met records that are not audit events, `aggregate` met records that are not partial records, `policy check` found the policy invalid, `apiserver check` found drift |
//! | 1 | an error (a bad config, policy, input or output file) in every command but `query` and `apiserver check` |
//! | 2 | an error in `query` and `apiserver check`, which keep grep's promise (0 match, 1 no match, 2 trouble) |
//!
//! A closed stdout (`kaudit ... | head`) is not an error. [`HELP`] says the same in `kaudit --help`.

use std::process::ExitCode;

use crate::term::say;

/// How a command ended when nothing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// A negative answer, exit 1: no event matched (`query`), the policy is invalid (`policy
    /// check`), some records were not audit events (`explain`) or partial records (`aggregate`),
    /// drift (`apiserver check`).
    Negative,
}

/// The exit statuses, for `kaudit --help`.
pub const HELP: &str = "Exit status: 0 success; 1 a negative answer (query: no event matched; explain: some records \
are not audit events; aggregate: some records are not partial records; policy check: the policy is invalid; \
apiserver check: drift); on an error (a bad config, policy or input file), 2 for query and apiserver check (like \
grep) and 1 for the other commands.";

/// Prints the error, if any, and maps the result to the exit status. `grep_like`: the command
/// is `query` or `apiserver check` (errors exit 2, not 1).
pub fn status(grep_like: bool, result: Result<Status, String>) -> ExitCode {
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Negative) => ExitCode::from(1),
        Err(e) => {
            say!("kaudit: error: {e}");
            ExitCode::from(if grep_like { 2 } else { 1 })
        }
    }
}
