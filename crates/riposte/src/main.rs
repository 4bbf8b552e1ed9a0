use std::process::ExitCode;

fn main() -> ExitCode {
    riposte::cli::main()
}
