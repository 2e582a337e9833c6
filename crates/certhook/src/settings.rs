//! Loads the configuration for a command: the `--config` file, `CERTHOOK_*` variables,
//! then the command-line flags that override both.

use anyhow::Context;
use certhook_core::config::Config;

use crate::cli::Cli;

/// Builds the effective configuration of this invocation.
pub fn load(cli: &Cli) -> anyhow::Result<Config> {
    let text = match &cli.config {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?)
        }
        None => None,
    };
    let name = cli.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let loaded = Config::load_reporting(text.as_deref().map(|t| (name.as_str(), t)), std::env::vars())?;
    for variable in &loaded.ignored_env {
        // The name only: a value may be a secret meant for another program.
        tracing::warn!(variable = %variable, "ignoring an environment variable that names no configuration key");
    }
    let mut config = loaded.config;
    if let Some(url) = &cli.database_url {
        config.database_url = url.clone();
        config.validate()?;
    }
    Ok(config)
}
