use std::process::ExitCode;

// Detection threads allocate and free small buffers (decoded JSON, alert
// records) all the time; glibc's allocator spent an eighth of the server's
// CPU on it under load (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    riposte::cli::main()
}
