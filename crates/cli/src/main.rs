//! The `tcplab` binary: everything lives in the `tcplab_cli` library so it can be tested.
fn main() -> std::process::ExitCode {
    tcplab_cli::main()
}
