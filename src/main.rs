//! The `fluxbase` binary; everything lives in the library.

/// mimalloc instead of the system allocator: the ingest and fan-out paths
/// allocate many small JSON values, where glibc's malloc spends a fifth of
/// the CPU time (profiled in the ingest load test).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fluxbase::cli::main()
}
