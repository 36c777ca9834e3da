//! The per-record panic guard of `kaudit filter` and `kaudit run`. No panic is reachable from
//! input (fuzzed, docs/RELIABILITY.md); if one happens anyway (a bug), the record being
//! processed is written through untouched, reported with its place and counted, and the run goes
//! on: one bad record must not cost the rest of the log. Native builds unwind, and so does the
//! WASI command: its std is rebuilt with `panic=unwind` (xtask/src/wasm.rs, main.rs).

use std::panic::{catch_unwind, AssertUnwindSafe};

use kaudit::Record;

/// With the `fault-injection` feature (test builds), a record containing this panics.
pub const FAULT_TRIGGER: &[u8] = b"kaudit-fault-injection:panic";

#[derive(Debug, Default)]
pub struct Guard {
    /// Records passed through because processing them panicked.
    pub internal_errors: u64,
}

impl Guard {
    /// Runs `process` (which appends the record's output to `out`); on a panic, replaces what it
    /// wrote with the original record and a newline.
    pub fn record(&mut self, input: &str, record: &Record, out: &mut Vec<u8>, process: impl FnOnce(&mut Vec<u8>)) {
        let start = out.len();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            if cfg!(feature = "fault-injection")
                && record.bytes.windows(FAULT_TRIGGER.len()).any(|w| w == FAULT_TRIGGER)
            {
                panic!("fault injection: the record contains {}", String::from_utf8_lossy(FAULT_TRIGGER));
            }
            process(out)
        })) {
            out.truncate(start);
            out.extend_from_slice(record.bytes);
            out.push(b'\n');
            self.internal_errors += 1;
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!(
                "kaudit: {}:{}: internal error, record passed through untouched (please report it): {}",
                crate::term::field(input),
                record.line,
                crate::term::field(&message)
            );
        }
    }

    /// The summary line, when anything was caught.
    pub fn print_summary(&self) {
        if self.internal_errors > 0 {
            eprintln!("kaudit: {} internal errors: those records were passed through untouched", self.internal_errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_passes_the_record_through_and_is_counted() {
        let mut guard = Guard::default();
        let mut out = b"kept\n".to_vec();
        let record = Record { bytes: br#"{"kind":"Event"}"#, line: 7 };
        guard.record("audit.log", &record, &mut out, |out| {
            out.extend_from_slice(b"half-writ");
            panic!("a bug");
        });
        assert_eq!(out, b"kept\n{\"kind\":\"Event\"}\n");
        assert_eq!(guard.internal_errors, 1);
        // Without a panic the output is what the processing wrote.
        guard.record("audit.log", &record, &mut out, |out| out.extend_from_slice(b"ok\n"));
        assert_eq!(out, b"kept\n{\"kind\":\"Event\"}\nok\n");
        assert_eq!(guard.internal_errors, 1);
    }
}
