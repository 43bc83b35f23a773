//! The `baraza` binary.

fn main() -> std::process::ExitCode {
    baraza::cli::main()
}
