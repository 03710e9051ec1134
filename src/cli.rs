//! Command-line definitions only: clap parses and validates (bad input exits 2 before anything
//! touches the host); `commands` resolves the values against the system.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::apply::DEFAULT_STATE_DIR;
use crate::error::EXIT_CODES_HELP;
use crate::export::Format;
use crate::request::{MethodId, ServiceOptions};
use crate::validate::{self, PortArg};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "lowport",
    version,
    about = "Let a service bind ports below 1024 without running it as root",
    long_about = "Let a service bind ports below 1024 without running it as root.\n\n\
        lowport detects the host, explains every method that exists for it with its risks, \
        previews every file and command as an exact diff and argv, applies under a lock with a \
        durable journal, verifies by really binding the port, and rolls back on failure or later.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Take every file path under DIR (like `systemctl --root`); kernel state stays the host's
    #[arg(long, global = true, value_name = "DIR", default_value = "/", value_parser = validate::absolute_path)]
    pub root: PathBuf,

    /// Where the journal, backups and lock live
    #[arg(long, global = true, value_name = "DIR", env = "LOWPORT_STATE_DIR",
          default_value = DEFAULT_STATE_DIR, value_parser = validate::absolute_path)]
    pub state_dir: PathBuf,

    #[command(flatten)]
    pub interactive: Interactive,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Without a subcommand lowport is interactive: a full-screen wizard on a terminal, plain
/// prompts otherwise. These options pre-fill it.
#[derive(Debug, Clone, Args)]
pub struct Interactive {
    /// Use plain line prompts instead of the full-screen wizard
    #[arg(long)]
    pub plain: bool,
    /// Method id to preselect (see `lowport methods`)
    #[arg(long, value_parser = MethodId::parse)]
    pub method: Option<MethodId>,
    #[command(flatten)]
    pub target: Target,
    /// Ask nothing: plain mode with every answer from the options (needs --method)
    #[arg(long)]
    pub yes: bool,
    /// Accept a high-risk method without the typed acknowledgement
    #[arg(long)]
    pub accept_risk: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Show what lowport detects about this host, the binary and the ports (read-only)
    Detect(DetectArgs),
    /// List every method for this OS with its risks and whether it is available here
    Methods(TargetArgs),
    /// Show exactly what a method would change: file diffs, commands, and undo
    Plan(PlanArgs),
    /// Carry out a plan under a lock and journal, verify it, roll back on failure
    Apply(ApplyArgs),
    /// Undo an earlier apply (or finish undoing an interrupted one)
    Rollback(RollbackArgs),
    /// List earlier applies with their status
    History(JsonArg),
    /// Prove that a user or binary can bind the ports
    Verify(VerifyArgs),
    /// Write the plan for the engines that run it elsewhere: Ansible, cloud-init, Kubernetes,
    /// Compose, a shell script, PowerShell (nothing on this host changes)
    Export(ExportArgs),
    /// Internal: bind the ports as the current user (used by verify through authbind)
    #[command(name = "__bind", hide = true)]
    Bind { ports: Vec<u16> },
}

#[derive(Debug, Clone, Args)]
pub struct JsonArg {
    /// Print one JSON document (with format_version) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub target: Target,
    /// Also record what planning this method reads of the host (repeatable), so that
    /// `plan --facts` can make its plan elsewhere
    #[arg(long, value_name = "ID", value_parser = MethodId::parse)]
    pub method: Vec<MethodId>,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Target {
    /// The service's executable: an absolute path, or a command name looked up on PATH
    #[arg(long, value_name = "PATH|NAME", value_parser = validate::binary)]
    pub binary: Option<String>,
    /// Port to grant, 1-1023 (repeatable); LOW:HIGH for redirect methods
    #[arg(long, value_name = "N", value_parser = validate::port_arg)]
    pub port: Vec<PortArg>,
    /// The user the service runs as
    #[arg(long, value_parser = validate::account_name)]
    pub user: Option<String>,
    /// The service's group (setcap: restrict execution of the binary to root and this group)
    #[arg(long, value_parser = validate::account_name)]
    pub group: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Options of the methods that run the binary as a systemd service.
#[derive(Debug, Args, Clone, Default)]
pub struct ServiceArgs {
    /// systemd unit name (default: the binary's file name)
    #[arg(long = "service", value_name = "NAME", value_parser = validate::service_name)]
    pub name: Option<String>,
    /// Run with DynamicUser=yes instead of a named user
    #[arg(long)]
    pub dynamic_user: bool,
    /// An argument for the binary in ExecStart (repeatable, in order)
    #[arg(long = "arg", value_name = "ARG", value_parser = validate::exec_arg, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Sandbox relaxation: a path the service may write (ReadWritePaths=)
    #[arg(long, value_name = "PATH", value_parser = validate::absolute_path)]
    pub writable: Vec<PathBuf>,
    /// Sandbox relaxation: a private writable directory under /var/lib (StateDirectory=)
    #[arg(long, value_name = "NAME", value_parser = validate::state_directory)]
    pub state_directory: Option<String>,
    /// Sandbox relaxation: allow writable+executable memory (JIT runtimes: Java, Node.js)
    #[arg(long)]
    pub allow_jit: bool,
    /// Replace a masked unit (NAME.service -> /dev/null) with lowport's; rollback masks it again
    #[arg(long)]
    pub unmask: bool,
    /// A known program's profile (fabio): its binary name, and with --config its ports
    #[arg(long, value_parser = crate::profile::name)]
    pub profile: Option<String>,
    /// The program's configuration file, read for its ports and passed to it (needs --profile)
    #[arg(long, value_name = "FILE", requires = "profile", value_parser = validate::absolute_path)]
    pub config: Option<PathBuf>,
}

impl ServiceArgs {
    pub fn options(&self) -> ServiceOptions {
        ServiceOptions {
            name: self.name.clone(),
            dynamic_user: self.dynamic_user,
            args: self.args.clone(),
            writable: self.writable.clone(),
            state_directory: self.state_directory.clone(),
            allow_jit: self.allow_jit,
            unmask: self.unmask,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub target: Target,
    /// Assess another host: a facts document saved with `lowport detect --json`
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Method id (see `lowport methods`)
    #[arg(long, value_parser = MethodId::parse)]
    pub method: MethodId,
    #[command(flatten)]
    pub target: Target,
    /// Plan for another host (as any user): a facts document saved with `lowport detect
    /// --json --method ID`; the plan is for review and export, `apply` refuses it
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// Also save the plan to FILE, for `lowport apply --plan FILE`
    #[arg(long = "out", value_name = "FILE")]
    pub out_file: Option<PathBuf>,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Method id (see `lowport methods`)
    #[arg(long, required_unless_present = "plan", conflicts_with = "plan", value_parser = MethodId::parse)]
    pub method: Option<MethodId>,
    #[command(flatten)]
    pub target: Target,
    /// Apply a plan saved with `plan --out`; refused if the host changed since
    #[arg(long, value_name = "FILE", conflicts_with_all = ["binary", "port", "user", "group"])]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Accept a high-risk method without the typed acknowledgement (required in scripts)
    #[arg(long)]
    pub accept_risk: bool,
    /// Make every check apply makes, show the steps, change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The run to undo (see `lowport history`)
    #[arg(value_parser = validate::run_id, conflicts_with = "last")]
    pub id: Option<String>,
    /// Undo the most recent run that is not rolled back yet
    #[arg(long)]
    pub last: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Roll back even files that were edited since lowport wrote them
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Port to prove (repeatable)
    #[arg(long, value_name = "N", required = true, value_parser = validate::port_arg)]
    pub port: Vec<PortArg>,
    /// The user who must be able to bind (proved by a real bind as that user)
    #[arg(long, value_parser = validate::account_name)]
    pub user: Option<String>,
    /// The binary that carries the grant (file capability checks)
    #[arg(long, value_name = "PATH|NAME", value_parser = validate::binary)]
    pub binary: Option<String>,
    /// The systemd service that carries the grant (unit and running-process checks)
    #[arg(long, value_name = "NAME", value_parser = validate::service_name)]
    pub service: Option<String>,
    /// The grant is authbind's: check the byport files and bind through `authbind --deep`
    #[arg(long)]
    pub authbind: bool,
    #[command(flatten)]
    pub fmt: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The engine to write for
    #[arg(long, value_enum)]
    pub format: Format,
    /// Method id (see `lowport methods`)
    #[arg(long, required_unless_present = "plan", conflicts_with = "plan", value_parser = MethodId::parse)]
    pub method: Option<MethodId>,
    #[command(flatten)]
    pub target: Target,
    /// Export a plan saved with `plan --out` (checked like any input)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["binary", "port", "user", "group", "facts"])]
    pub plan: Option<PathBuf>,
    /// Plan for another host from its facts document (`lowport detect --json --method ID`)
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// Write the files into DIR (created if missing) instead of printing the one file
    #[arg(long = "out", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}
