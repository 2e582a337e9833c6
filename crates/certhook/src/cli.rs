//! The command line of SPEC §6, as clap types.

use std::path::PathBuf;

use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The help heading of the options every command takes, listed apart from its own.
const GLOBAL: &str = "Global options";

/// Global options that mean nothing to a command, hidden from its help.
const UNUSED_GLOBALS: &[(&str, &[&str])] = &[
    ("listen", &["database_url", "json"]),
    ("serve", &["json"]),
    ("completions", &["config", "database_url", "json"]),
    ("man", &["config", "database_url", "json"]),
];

/// The command tree as users see it: global options that a command ignores are hidden
/// from its help (they are still accepted, as everywhere).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for (name, hidden) in UNUSED_GLOBALS {
        // A subcommand that already has an argument of a global's id does not get the
        // global pushed down to it when the tree is built: give it a hidden copy.
        let copies: Vec<clap::Arg> = cmd
            .get_arguments()
            .filter(|a| hidden.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect();
        cmd = cmd.mut_subcommand(*name, |sub| sub.args(copies));
    }
    cmd
}

/// Parses the process's arguments; bad usage exits 2 with clap's message.
pub fn parse() -> Cli {
    let mut cmd = command();
    let matches = cmd.clone().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// certhook: durable, signed delivery of certificate events.
#[derive(Debug, Parser)]
#[command(name = "certhook", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML); CERTHOOK_* environment variables override it.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://certhook.db (default) or postgres://user@host/db.
    // The variable's value may hold a password: help names the variable, never its value.
    #[arg(long, global = true, help_heading = GLOBAL, env = "CERTHOOK_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Machine-readable output on stdout: one JSON document.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Log format on stderr.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker, the expiration scanner and the HTTP API until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Applications: groups of certificates.
    #[command(subcommand)]
    App(AppCommand),
    /// Alerts: what an application's channels subscribe to.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Channels: where an alert sends.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Produce events from JSON (one, an array, or NDJSON) or from a PEM certificate.
    Enqueue(EnqueueArgs),
    /// Load a folder of PEM certificates into the inventory.
    Import(ImportArgs),
    /// Run the expiration scan once (`--dry-run` to preview it).
    Scan(ScanArgs),
    /// The certificate inventory of an application.
    #[command(subcommand)]
    Certificates(CertificatesCommand),
    /// Events as accepted, and outbox rows fan-out refused.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Deliveries and their attempt history.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Dead letters: inspect, replay, purge.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Queue depth per state, oldest pending age, events, channels by state.
    Status,
    /// A local development receiver that prints each CloudEvent and checks its signatures.
    Listen(ListenArgs),
    /// Channel secrets at rest: re-seal them under `secret_key`.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The configuration: check what is in effect, or print the annotated defaults.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script: `certhook completions bash > /etc/bash_completion.d/certhook`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `certhook man > /usr/local/share/man/man1/certhook.1`.
    Man,
}

/// `certhook config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration (file, CERTHOOK_* variables, flags) and print what is in
    /// effect, secrets not shown; a bad one exits 2 naming the key.
    Check,
    /// Print the annotated configuration with every key at its default (the repository's
    /// certhook.example.toml).
    Defaults,
}

/// `certhook secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every channel secret and routing key under `secret_key` (plain text if none
    /// is set), opening old ones with `secret_key` or `previous_secret_keys`.
    Rewrap {
        /// Count what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `certhook app …`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application.
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// List applications.
    List,
    /// Show one application.
    Show {
        /// Application id.
        id: String,
    },
    /// Delete an application (refused while it has alerts, unless --cascade).
    Delete {
        /// Application id.
        id: String,
        /// Delete its alerts and their channels too; their waiting deliveries are
        /// dead-lettered.
        #[arg(long)]
        cascade: bool,
    },
}

/// What an alert is about: certificates must pass every filter given.
#[derive(Debug, Args)]
pub struct AlertFilterArgs {
    /// Only certificates of this profile (repeatable: any of them).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Only certificates with a name (commonName or SAN) matching this DNS pattern, such as
    /// '*.prod.example.com' (repeatable: any of them; case-insensitive; `*` is one leftmost
    /// label).
    #[arg(long = "name-pattern", value_name = "PATTERN")]
    pub name_patterns: Vec<String>,
}

/// `certhook alert …`
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Create an alert.
    Create {
        /// Application id.
        #[arg(long)]
        app: String,
        /// Event types: expiration, issuance, renewal, revocation (comma-separated and
        /// repeatable: one channel receives them all).
        #[arg(long = "type", value_name = "TYPE[,TYPE…]", required = true)]
        types: Vec<String>,
        /// A slug: lowercase letters, digits and single dashes, at most 63 characters.
        #[arg(long)]
        name: String,
        /// With expiration among the types: how long before notAfter (30d, 12h, 2w, 90m).
        #[arg(long)]
        before: Option<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Certificate filters.
        #[command(flatten)]
        filters: AlertFilterArgs,
    },
    /// List alerts.
    List {
        /// Only this application's.
        #[arg(long)]
        app: Option<String>,
    },
    /// Show one alert.
    Show {
        /// Alert id.
        id: String,
    },
    /// Change an alert: what is given replaces what it had; channels, secrets and
    /// verification stay.
    Update {
        /// Alert id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long, conflicts_with = "no_description")]
        description: Option<String>,
        /// Remove the description.
        #[arg(long)]
        no_description: bool,
        /// New event types (comma-separated and repeatable); replace the old ones.
        #[arg(long = "type", value_name = "TYPE[,TYPE…]")]
        types: Vec<String>,
        /// A new expiration window.
        #[arg(long)]
        before: Option<String>,
        /// Replace the profile filter (repeatable).
        #[arg(long = "profile", value_name = "PROFILE", conflicts_with = "no_profiles")]
        profiles: Vec<String>,
        /// Remove the profile filter.
        #[arg(long)]
        no_profiles: bool,
        /// Replace the name-pattern filter (repeatable).
        #[arg(long = "name-pattern", value_name = "PATTERN", conflicts_with = "no_name_patterns")]
        name_patterns: Vec<String>,
        /// Remove the name-pattern filter.
        #[arg(long)]
        no_name_patterns: bool,
    },
    /// Delete an alert and its channels; their waiting deliveries are dead-lettered.
    Delete {
        /// Alert id.
        id: String,
    },
}

/// How many rows a list shows, and from where.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Continue after this item: the id of the last one of the previous page.
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
}

/// `certhook certificates …`
#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    /// List an application's certificates, soonest expiry first.
    List {
        /// Application id.
        #[arg(long)]
        app: String,
        /// active, expired or revoked.
        #[arg(long)]
        status: Option<String>,
        /// Only unrevoked certificates expiring within this long from now (30d, 12h, 2w).
        #[arg(long, value_name = "WINDOW")]
        expiring_within: Option<String>,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one certificate, by the PKI's id or by serial number.
    Show {
        /// Application id.
        #[arg(long)]
        app: String,
        /// Certificate id or serial number.
        id: String,
    },
}

/// `certhook events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        /// Only this application's.
        #[arg(long)]
        app: Option<String>,
        /// Only outbox rows fan-out refused, with the reason.
        #[arg(long)]
        refused: bool,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one event with the deliveries it made.
    Show {
        /// Event id.
        id: String,
    },
}

/// `certhook channel …`
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Create a channel.
    Create(ChannelCreateArgs),
    /// List channels.
    List {
        /// Only this alert's.
        #[arg(long)]
        alert: Option<String>,
    },
    /// Show one channel.
    Show {
        /// Channel id.
        id: String,
    },
    /// Activate a channel with the token its endpoint received.
    Activate {
        /// Channel id.
        id: String,
        /// The verification token.
        #[arg(long)]
        token: String,
    },
    /// Send a new verification token.
    Reverify {
        /// Channel id.
        id: String,
    },
    /// Send a test event now and report status code and latency.
    Test {
        /// Channel id.
        id: String,
    },
    /// Hold deliveries until resumed.
    Pause {
        /// Channel id.
        id: String,
    },
    /// Send held deliveries and new ones again.
    Resume {
        /// Channel id.
        id: String,
    },
    /// Re-enable a disabled channel.
    Enable {
        /// Channel id.
        id: String,
    },
    /// Change a channel's rate limit or TLS settings; what is not given stays as it is.
    Update(ChannelUpdateArgs),
    /// Point a channel elsewhere (it is verified again).
    UpdateUrl {
        /// Channel id.
        id: String,
        /// The new URL.
        #[arg(long)]
        url: String,
    },
    /// Replace the signing secret, keeping the old one for a grace period.
    RotateSecret {
        /// Channel id.
        id: String,
        /// The new secret (at least 32 characters); visible in the process list, prefer
        /// --secret-file.
        #[arg(long, required_unless_present = "secret_file", conflicts_with = "secret_file")]
        secret: Option<String>,
        /// Read the new secret from this file (`-`: standard input).
        #[arg(long, value_name = "PATH")]
        secret_file: Option<std::path::PathBuf>,
        /// How long the previous secret keeps signing too.
        #[arg(long, default_value = "24h")]
        grace: String,
    },
    /// Delete a channel; its pending deliveries are dead-lettered.
    Delete {
        /// Channel id.
        id: String,
    },
}

/// `certhook channel create`
#[derive(Debug, Args)]
pub struct ChannelCreateArgs {
    /// Alert id.
    #[arg(long)]
    pub alert: String,
    /// Destination URL (not needed for pagerduty).
    #[arg(long)]
    pub url: Option<String>,
    /// Signing secret (at least 32 characters); visible in the process list, prefer
    /// --secret-file.
    #[arg(long, conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// Read the signing secret from this file (`-`: standard input).
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<std::path::PathBuf>,
    /// webhook, slack or pagerduty (slack is detected from hooks.slack.com URLs).
    #[arg(long)]
    pub kind: Option<String>,
    /// PagerDuty routing key (32 characters); visible in the process list, prefer
    /// --routing-key-file.
    #[arg(long, conflicts_with = "routing_key_file")]
    pub routing_key: Option<String>,
    /// Read the routing key from this file (`-`: standard input).
    #[arg(long, value_name = "PATH")]
    pub routing_key_file: Option<std::path::PathBuf>,
    /// Content-Type of requests (default: the CloudEvents structured media type).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Trust the endpoint: skip the verification handshake.
    #[arg(long)]
    pub no_verify: bool,
    /// Send to it at most this often: N/s or N/m (e.g. 2/s, 30/m), or none. Slack
    /// channels default to 1/s, Slack's limit per incoming webhook.
    #[arg(long, value_name = "N/s|N/m|none")]
    pub rate_limit: Option<String>,
    /// PEM file of CA certificates that the receiver's certificate may chain to, trusted
    /// for this channel besides the system roots and `ca_bundle` (a private CA).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of a client certificate to present (mutual TLS); needs --client-key.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (unencrypted); stored like the
    /// signing secret (sealed under `secret_key`) and never shown.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// `certhook channel update`
#[derive(Debug, Args)]
pub struct ChannelUpdateArgs {
    /// Channel id.
    pub id: String,
    /// Send to it at most this often: N/s or N/m (e.g. 2/s, 30/m), or none.
    #[arg(long, value_name = "N/s|N/m|none")]
    pub rate_limit: Option<String>,
    /// PEM file of CA certificates to trust for this channel (replacing any given before).
    #[arg(long, value_name = "PEM", conflicts_with = "no_ca_file")]
    pub ca_file: Option<PathBuf>,
    /// Trust only the system roots and `ca_bundle` again.
    #[arg(long)]
    pub no_ca_file: bool,
    /// PEM file of a client certificate to present (replacing any given before); needs
    /// --client-key.
    #[arg(long, value_name = "PEM", requires = "client_key", conflicts_with = "no_client_cert")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of its private key (unencrypted); stored sealed, never shown.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Present no client certificate any more (its key is erased).
    #[arg(long, conflicts_with = "client_key")]
    pub no_client_cert: bool,
}

/// `certhook enqueue`
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// JSON file: one event, an array, or NDJSON (`-` for standard input).
    #[arg(long, conflicts_with_all = ["app", "event_type", "pem"])]
    pub file: Option<PathBuf>,
    /// Application id (with --pem).
    #[arg(long, requires = "pem")]
    pub app: Option<String>,
    /// issuance, renewal or revocation (with --pem).
    #[arg(long = "type", requires = "pem")]
    pub event_type: Option<String>,
    /// A PEM certificate whose fields make the event.
    #[arg(long, requires_all = ["app", "event_type"])]
    pub pem: Option<PathBuf>,
}

/// `certhook import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Application id.
    #[arg(long)]
    pub app: String,
    /// Folder of PEM certificates (read recursively).
    #[arg(long)]
    pub dir: PathBuf,
    /// Send issuance alerts for what is imported.
    #[arg(long)]
    pub notify: bool,
}

/// `certhook scan`
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Evaluate at this instant (RFC 3339) instead of now.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Print what would be reported and marked expired; store and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `certhook deliveries …`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries.
    List {
        /// pending, leased, retrying, held, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        /// Only this channel's.
        #[arg(long)]
        channel: Option<String>,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one delivery with its attempts.
    Show {
        /// Delivery id.
        id: String,
    },
}

/// Filters shared by the dead-letter commands.
#[derive(Debug, Args)]
pub struct DlqFilter {
    /// Only this channel's.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this alert type's.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only those dead-lettered at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
}

/// `certhook dlq …`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters.
    List {
        /// The filters.
        #[command(flatten)]
        filter: DlqFilter,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Put dead letters back in the queue with fresh attempts (same CloudEvent ids).
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all"])))]
    Replay {
        /// One dead letter.
        #[arg(long)]
        id: Option<String>,
        /// Every dead letter that matches the filters.
        #[arg(long)]
        all: bool,
        /// The filters.
        #[command(flatten)]
        filter: DlqFilter,
        /// Change nothing; print what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters: the only way they are ever deleted.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all"])))]
    Purge {
        /// One dead letter.
        #[arg(long)]
        id: Option<String>,
        /// Every dead letter that matches the filters.
        #[arg(long)]
        all: bool,
        /// Only this channel's.
        #[arg(long)]
        channel: Option<String>,
        /// Only those dead-lettered before this time (RFC 3339).
        #[arg(long)]
        before: Option<String>,
        /// Change nothing; print what would be purged.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `certhook listen`
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long)]
    pub port: u16,
    /// The channel's signing secret, to check signatures.
    #[arg(long, conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// Read the signing secret from this file (`-`: standard input).
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<std::path::PathBuf>,
    /// Print each body exactly as received (one line, members in wire order) instead of
    /// indented with its members sorted.
    #[arg(long)]
    pub raw: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(path: &[&str]) -> String {
        let mut cmd = command();
        cmd.build();
        let mut sub = &mut cmd;
        for name in path {
            sub = sub.find_subcommand_mut(name).unwrap();
        }
        sub.render_long_help().to_string()
    }

    #[test]
    fn global_options_are_listed_apart_and_hidden_where_they_mean_nothing() {
        let status = help(&["status"]);
        let (own, global) = status.split_once("Global options:").expect("a heading of its own");
        assert!(global.contains("--database-url") && global.contains("--json") && global.contains("--log-format"));
        assert!(!own.contains("--database-url"), "{status}");
        let listen = help(&["listen"]);
        assert!(!listen.contains("--database-url") && !listen.contains("--json"), "{listen}");
        assert!(listen.contains("--config") && listen.contains("--port"), "{listen}");
        assert!(help(&["channel", "create"]).contains("--database-url"), "nested commands keep them");
    }

    #[test]
    fn hidden_globals_are_still_accepted() {
        let cli = Cli::from_arg_matches(
            &command().try_get_matches_from(["certhook", "listen", "--port", "0", "--json"]).unwrap(),
        )
        .unwrap();
        assert!(cli.json);
    }

    #[test]
    fn dlq_replay_without_a_choice_names_both() {
        for which in ["replay", "purge"] {
            let err = command().try_get_matches_from(["certhook", "dlq", which]).unwrap_err().to_string();
            assert!(err.contains("--id") && err.contains("--all"), "{err}");
        }
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn parses_global_flags_after_the_command() {
        let cli = Cli::try_parse_from(["certhook", "status", "--json", "--database-url", "sqlite://x.db"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.database_url.as_deref(), Some("sqlite://x.db"));
        assert!(matches!(cli.command, Command::Status));
    }

    #[test]
    fn enqueue_needs_a_file_or_a_pem_with_app_and_type() {
        assert!(Cli::try_parse_from(["certhook", "enqueue", "--pem", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["certhook", "enqueue", "--file", "e.json", "--pem", "c.pem"]).is_err());
        assert!(
            Cli::try_parse_from(["certhook", "enqueue", "--app", "a", "--type", "issuance", "--pem", "c.pem"]).is_ok()
        );
    }

    #[test]
    fn dlq_replay_needs_id_or_all() {
        assert!(Cli::try_parse_from(["certhook", "dlq", "replay"]).is_err());
        assert!(Cli::try_parse_from(["certhook", "dlq", "replay", "--id", "x", "--all"]).is_err());
        assert!(Cli::try_parse_from(["certhook", "dlq", "replay", "--all", "--dry-run"]).is_ok());
    }
}
