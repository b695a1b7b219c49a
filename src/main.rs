//! `supervisor`: see the library's documentation (src/lib.rs) for the theory of operation.

use supervisor::{config, exit, logging, modes};

fn main() {
    let outcome = match config::from_process() {
        Ok(config::Invocation::Run {
            log,
            mode,
            warnings,
        }) => {
            logging::init(log.level, log.format);
            warnings.iter().for_each(|w| tracing::warn!("{w}"));
            modes::run(*mode)
        }
        Ok(config::Invocation::Print(text)) => {
            print!("{text}");
            exit::Outcome::Success
        }
        Err(e) => modes::usage_error(&e),
    };
    std::process::exit(exit::code(&outcome));
}
