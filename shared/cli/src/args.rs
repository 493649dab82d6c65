//! The command line, declared once with clap's derive: parsing, `--help` at every level,
//! usage errors (exit code 2) and shell completions (`portico completions SHELL`) come from it.

use clap::{Args, Parser, Subcommand};

/// The command-line client of Portico's HTTP API.
///
/// The API's URL comes from `--url`, `PORTICO_URL`, the stored login, or
/// `http://127.0.0.1:8000`; the token from `--token`, `PORTICO_TOKEN` or the stored login
/// (`$XDG_CONFIG_HOME/portico/login.json`, else `~/.config/portico/login.json`, mode 0600).
/// Exit codes: 0 success, 1 the API refused or failed, 2 bad usage, 3 cannot reach the API.
#[derive(Debug, Parser)]
#[command(name = "portico", version)]
pub struct Cli {
    /// The API's base URL.
    #[arg(long, env = "PORTICO_URL", global = true)]
    pub url: Option<String>,
    /// A bearer token to send (else the stored login's).
    #[arg(long, env = "PORTICO_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's answers as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get a token (OAuth2 password grant) and keep it.
    Login {
        /// Default `PORTICO_USERNAME`.
        username: Option<String>,
        /// Read the password from stdin (else `PORTICO_PASSWORD`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the stored login.
    Logout,
    /// Who the token says you are.
    Whoami,
    /// Users (administrators).
    #[command(subcommand)]
    User(UserCommand),
    /// Roles (administrators).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Let a role do ACTION on resources of GROUP ("" is the default group).
    Grant(Permission),
    /// Take a permission back from a role.
    Revoke(Permission),
    /// The apps catalog.
    #[command(subcommand)]
    App(AppCommand),
    /// Streaming sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Signing keyrings (for Secrets Manager).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Jobs: recipes and templates run on Argo Workflows.
    #[command(subcommand)]
    Job(JobCommand),
    /// Remote desktops: start one from an environment, open it, stop it.
    #[command(subcommand)]
    Desktop(DesktopCommand),
    /// The RPC gateway.
    #[command(subcommand)]
    Rpc(RpcCommand),
    /// Print a completion script for SHELL.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct Permission {
    pub role: String,
    pub group: String,
    pub action: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    Create {
        name: String,
        #[arg(long)]
        admin: bool,
        /// Read the password from stdin (else none: the user signs in elsewhere).
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    Show {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Make or unmake an administrator.
    Admin {
        name: String,
        #[arg(action = clap::ArgAction::Set)]
        admin: bool,
    },
    /// Set a password (read from stdin).
    Password {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    AddRole {
        name: String,
        role: String,
    },
    RemoveRole {
        name: String,
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Show {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Publish (or replace) the app FILE.json describes.
    Publish {
        file: String,
    },
    List,
    Show {
        slug: String,
    },
    Delete {
        slug: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    Start {
        app: String,
    },
    List {
        /// Every session (administrators).
        #[arg(long)]
        all: bool,
    },
    Show {
        id: String,
    },
    Stop {
        id: String,
    },
    /// A fresh client ticket (to come back to an idle session).
    Ticket {
        id: String,
    },
    /// Be the client: stdin lines go out as signals' data; frames received print as JSON lines.
    Join {
        ws_url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    Generate,
    /// A keyring with a new signing key and FILE.json's keys still verifying.
    Rotate {
        file: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DesktopCommand {
    /// Start a desktop of ENVIRONMENT (its id is printed).
    Start {
        environment: String,
        /// Seconds it runs (default: the environment's maximum).
        #[arg(long)]
        lifetime: Option<u64>,
        /// The experiment (its proposal id) whose datasets it mounts.
        #[arg(long)]
        experiment: Option<String>,
        /// Wait until it is ready (or has ended).
        #[arg(long)]
        wait: bool,
    },
    /// Move a desktop's end by SECONDS (up to its environment's maximum).
    Extend { id: String, seconds: u64 },
    /// Your desktops.
    List,
    /// The environments you may start.
    Environments,
    /// Your experiments from the facility's user office (favourites first).
    Experiments {
        /// Words to search for.
        #[arg(long)]
        search: Option<String>,
    },
    /// Mark (or, with --remove, unmark) an experiment as a favourite.
    Favorite {
        proposal_id: String,
        #[arg(long)]
        remove: bool,
    },
    /// A desktop, refreshed from its Pod.
    Status { id: String },
    /// The URL that opens a ready desktop in Guacamole (once, within a minute).
    Open {
        id: String,
        /// Another's desktop that its owner lets you watch (read-only).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Let USER watch your desktop, read-only (or, with --remove, no longer).
    Share {
        id: String,
        user: String,
        #[arg(long)]
        remove: bool,
    },
    /// Stop a desktop.
    Stop { id: String },
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit DIR (meta.yml and its step file), github://ORG:REPO@REF/PATH, or a template.
    Submit {
        recipe: String,
        /// A template's parameter, KEY=VALUE (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Follow the job until it ends.
        #[arg(long)]
        wait: bool,
    },
    List {
        /// Every job (administrators).
        #[arg(long)]
        all: bool,
    },
    /// The registered templates.
    Templates,
    Status {
        id: String,
    },
    Logs {
        id: String,
    },
    Cancel {
        id: String,
    },
    Output {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RpcCommand {
    /// The gateway's services and methods.
    List,
    /// Call PKG.SERVICE/METHOD with JSON (default {}; - reads it from stdin).
    Call {
        method: String,
        #[arg(value_name = "JSON")]
        request: Option<String>,
    },
}
