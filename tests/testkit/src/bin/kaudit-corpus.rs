//! `kaudit-corpus EVENTS [SEED]`: writes the deterministic benchmark corpus
//! ([`kaudit_testkit::corpus::generate`]) to stdout, for benchmarks that run a real host on a
//! file (`cargo xtask bench-fluent-bit`).

use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: Option<u64>| -> Result<u64, String> {
        match args.get(i) {
            Some(a) => a.parse().map_err(|e| format!("{a:?} is not a number: {e}")),
            None => default.ok_or_else(|| "usage: kaudit-corpus EVENTS [SEED]".to_string()),
        }
    };
    let (events, seed) = match (number(0, None), number(1, Some(42))) {
        (Ok(e), Ok(s)) => (e, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kaudit-corpus: {e}");
            return ExitCode::from(2);
        }
    };
    let corpus = kaudit_testkit::corpus::generate(events as usize, seed);
    match std::io::stdout().lock().write_all(&corpus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kaudit-corpus: {e}");
            ExitCode::from(1)
        }
    }
}
