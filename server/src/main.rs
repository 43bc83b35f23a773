//! The `baraza` binary.

/// mimalloc rather than glibc's malloc: parsing, validating, indexing and
/// serialising FHIR JSON allocates and frees many small values across
/// threads, and glibc's allocator spent about 40% of the ingest worker's
/// CPU time (`perf`, bench/import.sh; ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    baraza::cli::main()
}
