//! The `baraza` command line, built inside the test crate so that the
//! integration tests can run it as a separate process.

fn main() -> std::process::ExitCode {
    baraza::cli::main()
}
