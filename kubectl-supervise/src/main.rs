//! `kubectl-supervise`: a kubectl plugin (`kubectl supervise inject|check`).

use std::io::IsTerminal;

// musl's malloc (the static build's) made a webhook review cost 3-4 times what it costs with
// glibc: every review allocates a few thousand small objects, and musl's allocator takes a
// lock and returns pages to the kernel eagerly (page faults and munmaps dominated a profile).
// dlmalloc (pure Rust, the allocator of Rust's own wasm targets) brings it back: one
// connection went from about 800 to 2,900 reviews/s (bench/webhook.sh). Only this binary uses
// it; the in-pod supervisor keeps the system allocator.
#[global_allocator]
static GLOBAL: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
