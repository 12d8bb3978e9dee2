//! The `fluxbase` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    fluxbase::cli::main()
}
