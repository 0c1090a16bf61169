//! Things a user should hear once per process, whichever run found them.

use std::sync::Mutex;

/// Things a user should hear once per process (e.g. "no real-time priority"), not per run.
static NOTICES: Mutex<(Vec<&'static str>, usize)> = Mutex::new((Vec::new(), 0));

/// Record `text` for [`take_notices`] unless it was recorded before.
pub(crate) fn notice(text: &'static str) {
    if let Ok(mut n) = NOTICES.lock() {
        if !n.0.contains(&text) {
            n.0.push(text);
        }
    }
}

/// The notices recorded since the last call (each notice is handed out once per process).
pub fn take_notices() -> Vec<&'static str> {
    match NOTICES.lock() {
        Ok(mut n) => {
            let from = n.1;
            n.1 = n.0.len();
            n.0[from..].to_vec()
        }
        Err(_) => Vec::new(),
    }
}
