//! What the CLI writes for people to read: messages through [`field`] and [`lines`], data on
//! stdout through [`stream`] only when stdout is a terminal (in a pipe or file it stays
//! byte-exact: the output other hosts must equal). The escaping itself is the core's
//! (`kaudit::printable`), shared with the other hosts' log lines.

pub use kaudit::printable::{field, lines, stream};

/// Whether stdout is a terminal (then data written there goes through [`stream`]).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Prints one line of data (JSON) on stdout, escaped when stdout is a terminal.
pub fn print_data(line: &str) {
    if stdout_is_terminal() {
        println!("{}", String::from_utf8_lossy(&stream(line.as_bytes())));
    } else {
        println!("{line}");
    }
}

/// `eprintln!` for messages: the text goes through [`lines`].
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::term::lines(&format!($($arg)*)))
    };
}
pub(crate) use say;
