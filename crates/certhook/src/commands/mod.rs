//! One function per command, one file per command group (`admin`: applications, alerts,
//! channels; `produce`: enqueue, import; `scan`; `deliveries`: deliveries and dead letters;
//! `status`: status, migrate; `secrets`: rewrap; `listen` and `serve` have modules of
//! their own); each prints its result as text, or as one JSON document
//! with `--json`.

mod admin;
mod deliveries;
mod events;
mod inventory;
mod produce;
mod scan;
mod secrets;
mod status;
mod table;

use certhook_core::config::Config;
use certhook_store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::cli::{Cli, Command, ConfigCommand, SecretsCommand};
use crate::database::open;
use crate::exit::BadInput;

/// Runs the parsed command line with its configuration.
pub async fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    let out = Output { json: cli.json };
    match &cli.command {
        Command::Migrate => status::migrate(&config, &out).await,
        Command::App(cmd) => admin::app(&open(&config).await?, cmd, &out).await,
        Command::Alert(cmd) => admin::alert(&open(&config).await?, cmd, &out).await,
        Command::Channel(cmd) => admin::channel(&open(&config).await?, &config, cmd, &out).await,
        Command::Enqueue(args) => produce::enqueue(&open(&config).await?, &config, args, &out).await,
        Command::Certificates(cmd) => inventory::certificates(&open(&config).await?, cmd, &out).await,
        Command::Events(cmd) => events::events(&open(&config).await?, cmd, &out).await,
        Command::Deliveries(cmd) => deliveries::deliveries(&open(&config).await?, cmd, &out).await,
        Command::Dlq(cmd) => deliveries::dlq(&open(&config).await?, cmd, &out).await,
        Command::Status => status::status(&open(&config).await?, &out).await,
        Command::Serve => crate::serve::serve(config).await,
        Command::Listen(args) => crate::listen::run(args, &config).await,
        Command::Secrets(SecretsCommand::Rewrap { dry_run }) => secrets::rewrap(&config, *dry_run, &out).await,
        // Loading the configuration already checked it (a bad one never gets here).
        Command::Config(ConfigCommand::Check) => {
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&toml::from_str::<serde_json::Value>(&config.redacted_toml())?)?
                );
            } else {
                print!("{}", config.redacted_toml());
                eprintln!("configuration OK");
            }
            Ok(())
        }
        // Rendered into memory first: clap_complete panics on a closed stdout (`| head`).
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut crate::cli::command(), "certhook", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            Ok(())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(crate::cli::command()).render(&mut page)?;
            std::io::Write::write_all(&mut std::io::stdout(), &page)?;
            Ok(())
        }
        Command::Config(ConfigCommand::Defaults) => {
            print!("{}", certhook_core::config::EXAMPLE);
            Ok(())
        }
        Command::Import(args) => produce::import(&open(&config).await?, args, &out).await,
        Command::Scan(args) => scan::scan(&open(&config).await?, &config, args, &out).await,
    }
}

/// Where results go: text lines for people, or one JSON document for programs.
pub struct Output {
    json: bool,
}

impl Output {
    /// Prints `value` as JSON with `--json`, else the text `lines` makes of it.
    pub fn emit<T: Serialize>(&self, value: &T, lines: impl FnOnce(&T) -> Vec<String>) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            for line in lines(value) {
                println!("{line}");
            }
        }
        Ok(())
    }
}

/// Checks `--limit`.
pub fn page_limit(limit: u32) -> Result<u32, BadInput> {
    crate::input::page_limit(limit).map_err(|m| BadInput(format!("--limit: {m}")))
}

impl Output {
    /// Prints a list: a JSON array with `--json`, else a table under `header` (or, when
    /// empty, "no <what>" on stderr, so stdout stays empty).
    pub fn emit_list<T: Serialize>(
        &self,
        items: &[T],
        what: &str,
        header: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) -> anyhow::Result<()> {
        self.emit(&items, |l| table::rows(header, l, &row))?;
        if items.is_empty() && !self.json {
            eprintln!("no {what}");
        }
        Ok(())
    }

    /// Prints one page of a list; a full page may have more after it, so the command for
    /// the next one goes to stderr (stdout stays the list itself, JSON or text).
    pub fn emit_page<T: Serialize>(
        &self,
        items: &[T],
        limit: u32,
        what: &str,
        header: &[&str],
        id: impl Fn(&T) -> String,
        row: impl Fn(&T) -> Vec<String>,
    ) -> anyhow::Result<()> {
        self.emit_list(items, what, header, row)?;
        if items.len() as u64 >= u64::from(limit)
            && let Some(last) = items.last()
        {
            eprintln!("more may follow: repeat with --after {}", id(last));
        }
        Ok(())
    }
}

/// What a list was filtered by.
pub enum Filtered {
    /// `--channel`.
    Channel(Uuid),
    /// `--app`.
    Application(Uuid),
    /// `--alert`.
    Alert(Uuid),
}

/// When a filtered list came back empty, an id that names nothing is the reason: said
/// (exit 2, "unknown channel …") rather than shown as an empty list. A non-empty list, or
/// no filter, needs no look-up.
pub async fn known_if_empty(store: &Store, found: usize, filter: Option<Filtered>) -> anyhow::Result<()> {
    match filter {
        _ if found > 0 => {}
        None => {}
        Some(Filtered::Channel(id)) => drop(store.get_channel(id).await?),
        Some(Filtered::Application(id)) => drop(store.get_application(id).await?),
        Some(Filtered::Alert(id)) => drop(store.get_alert(id).await?),
    }
    Ok(())
}

/// Parses an id given as the value of `flag`, naming the flag and what it should identify.
pub fn parse_flag_id(flag: &str, kind: &str, text: &str) -> Result<Uuid, BadInput> {
    crate::input::uuid(text).map_err(|m| BadInput(format!("{flag}: {kind} id {m}")))
}

/// Parses an id given on the command line, naming what it should identify.
pub fn parse_id(kind: &str, text: &str) -> Result<Uuid, BadInput> {
    crate::input::uuid(text).map_err(|m| BadInput(format!("{kind} id {m}")))
}

/// Parses an RFC 3339 time given on the command line, naming the flag.
pub fn parse_time(flag: &str, text: &str) -> Result<DateTime<Utc>, BadInput> {
    crate::input::time(text).map_err(|m| BadInput(format!("{flag}: {m}")))
}
