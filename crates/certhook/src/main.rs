//! The `certhook` binary: parses the command line, loads the configuration, runs one
//! command, and maps its outcome to an exit code.
//!
//! # Layout
//!
//! - `cli`: the clap command tree of SPEC §6.
//! - `settings`: configuration from file, environment and flags.
//! - `exit`: exit codes 0/1/2 and the errors that mean "bad input".
//! - `secret_input`: `--secret-file` and `--routing-key-file` (`-` for standard input).
//! - `database`: opening the store as the configuration says.
//! - `commands`: one function per command, one file per command group.
//! - `channel_ops`: channel operations the CLI and the API share (verification, test sends).
//! - `listen`: the local development receiver.
//! - `shapes`, `input`: the JSON shapes and the id and time parsers the CLI and the API share.
//! - `serve`: the long-running process; `api`: its HTTP API, one module per resource.
//! - `http_server`: the API's listener and its limits.

mod api;
mod channel_ops;
mod cli;
mod commands;
mod console;
mod database;
mod exit;
mod http_server;
mod input;
mod listen;
mod progress;
mod secret_input;
mod serve;
mod settings;
mod shapes;

use crate::cli::{Cli, LogFormat};

fn main() {
    let cli = cli::parse();
    init_logging(cli.log_format);
    let code = match run(&cli) {
        Ok(()) => exit::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    };
    std::process::exit(code);
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = settings::load(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(commands::run(cli, config))
}
