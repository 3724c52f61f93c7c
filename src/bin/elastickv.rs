//! The `elastickv` binary: parse the command line, dispatch, map errors to
//! exit codes. Everything else lives in the library.

fn main() {
    std::process::exit(elastickv::cli::main());
}
