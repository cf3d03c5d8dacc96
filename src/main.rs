//! The `trailwatch` command line. Everything but argument parsing and
//! dispatch lives in the library and in `commands/`.

mod commands;
mod output;

fn main() -> std::process::ExitCode {
    commands::main()
}
