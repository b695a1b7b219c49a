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
            exit::Outcome::Success
        }
        Err(refused) => modes::usage_error(&refused),
    };
    std::process::exit(exit::code(&outcome));
}
