//! Contained panics. The parser runs on hostile documents; a panic in it
//! is caught there and becomes that feed's error (`ParseError::Panicked`),
//! logged once by the poll. The default panic hook would still print its
//! message and a backtrace hint to stderr — under systemd, into the journal
//! at every poll of such a feed. `install` (called by `main`) puts a hook in
//! front of it that stays silent on a thread inside `quietly` and keeps the
//! message for the caller's one log line; every other panic is reported as
//! before.

use std::cell::{Cell, RefCell};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Puts the quiet hook in front of the current one.
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.get() {
            return previous(info);
        }
        let what = info.payload_as_str().unwrap_or("a panic");
        // The crate and file, not the registry path before them.
        let at = info
            .location()
            .map(|l| {
                let parts: Vec<&str> = l.file().rsplit('/').take(3).collect();
                let file: Vec<&str> = parts.into_iter().rev().collect();
                format!(" at {}:{}", file.join("/"), l.line())
            })
            .unwrap_or_default();
        CAUGHT.set(Some(format!("{what}{at}")));
    }));
}

/// Runs `f`, which catches its own panics, with the hook silent on this
/// thread; returns what `f` returned and the message of the last panic it
/// caught. A panic that escapes `f` is printed (one line) as it leaves.
pub fn quietly<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    struct Loud;
    impl Drop for Loud {
        fn drop(&mut self) {
            QUIET.set(false);
            if std::thread::panicking()
                && let Some(m) = CAUGHT.take()
            {
                eprintln!("panicked: {m}");
            }
        }
    }
    CAUGHT.set(None);
    QUIET.set(true);
    let loud = Loud;
    let out = f();
    drop(loud);
    (out, CAUGHT.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_is_kept_for_the_caller_and_the_hook_is_loud_again_after() {
        install();
        let (caught, message) =
            quietly(|| std::panic::catch_unwind(|| panic!("bad byte 0x{:x}", 0xff)));
        assert!(caught.is_err());
        let message = message.expect("the quiet hook kept it");
        assert!(message.starts_with("bad byte 0xff at "), "{message}");
        assert!(message.contains("panics.rs"), "{message}");
        // Outside `quietly` the previous hook reports, and nothing is kept.
        let (_, none) = quietly(|| 1);
        assert_eq!(none, None);
        assert!(!QUIET.get());
        let _ = std::panic::catch_unwind(|| panic!("loud"));
        assert_eq!(CAUGHT.take(), None);
    }
}
