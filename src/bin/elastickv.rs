//! The `elastickv` binary: parse the command line, dispatch, map errors to
//! exit codes. Everything else lives in the library.

// The server allocates many small, short-lived buffers per request on
// several threads; glibc's malloc spent ~17 % of the process's CPU on them
// under redis-benchmark (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(elastickv::cli::main());
}
