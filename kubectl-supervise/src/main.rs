//! `kubectl-supervise`: a kubectl plugin (`kubectl supervise inject|check`).
fn main() {
    let code = kubectl_supervise::cli::run(
        std::env::args_os(),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
