//! `supervisor`: see the library's documentation (src/lib.rs) for the theory of operation.

use supervisor::{config, exit, logging, modes};

fn main() {
    let outcome = match config::from_process() {
        Ok(config::Invocation::Run { log, mode, notes }) => {
            logging::init(log.level, log.format);
            modes::run(*mode, &notes)
        }
        Ok(config::Invocation::Print(text)) => {
            print!("{text}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            exit::Outcome::Success
        }
        Err(refused) => modes::usage_error(&refused),
    };
    let code = exit::code(&outcome);
    // Not std's exit: it would add the tear-down of the main thread's signal stack (two
    // syscalls) to an exit the other containers may be waiting on, and flush a stdout that only
    // the text printed above uses (println!'s lines are written as each one ends).
    // SAFETY: _exit ends the process at once; nothing after this point was to run.
    unsafe { nix::libc::_exit(code) }
}
