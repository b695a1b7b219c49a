//! `kubectl-supervise`: a kubectl plugin (`kubectl supervise inject|check`).

use std::io::IsTerminal;

fn main() {
    // Colour only for people: a terminal, and NO_COLOR (no-color.org) not set.
    let styled = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // stdout and stderr are not locked for the whole run: the webhook's threads log to stderr.
    let code = kubectl_supervise::cli::run_styled(
        std::env::args_os(),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        styled,
    );
    std::process::exit(code);
}
