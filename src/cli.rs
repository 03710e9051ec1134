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
    /// Plan for another host instead of this one (saved and exported, never applied here)
    #[command(flatten)]
    pub other: OtherHost,
    /// Ask nothing: plain mode with every answer from the options (needs --method)
    #[arg(long)]
    pub yes: bool,
    /// Accept a high-risk method without the typed acknowledgement
    #[arg(long)]
    pub accept_risk: bool,
}

/// Each subcommand's `--help` ends with real examples; a unit test parses every one of them
/// with these definitions, so an example cannot go stale.
pub mod examples {
    pub const DETECT: &str = "Examples:\n  lowport detect --binary fabio --port 80 --port 443\n  lowport detect --json --method setcap --binary /usr/local/bin/fabio --port 80 > host.json";
    pub const METHODS: &str = "Examples:\n  lowport methods --binary fabio --port 80 --port 443\n  lowport methods --facts host.json --binary /usr/local/bin/fabio --port 80 --json";
    pub const PLAN: &str = "Examples:\n  lowport plan --method systemd --profile fabio --config /etc/fabio/fabio.properties --out plan.json\n  lowport plan --method setcap --binary /usr/local/bin/fabio --port 80 --group fabio\n  lowport plan --method setcap --facts host.json --binary /usr/local/bin/fabio --port 80";
    pub const APPLY: &str = "Examples:\n  sudo lowport apply --plan plan.json\n  sudo lowport apply --method redirect-nft --port 80:9999 --yes\n  sudo lowport apply --method sysctl --port 80 --yes --accept-risk --json";
    pub const ROLLBACK: &str = "Examples:\n  sudo lowport rollback --last\n  sudo lowport rollback 20261129T135349Z-c89d --yes";
    pub const HISTORY: &str = "Examples:\n  lowport history\n  lowport history --json";
    pub const VERIFY: &str = "Examples:\n  lowport verify --port 80 --user nobody\n  lowport verify --port 80 --binary /usr/local/bin/fabio --user fabio\n  lowport verify --port 80:9999\n  sudo lowport verify --all\n  sudo lowport verify --all --json > drift.json";
    pub const COMPLETIONS: &str = "Examples:\n  lowport completions bash > /etc/bash_completion.d/lowport\n  lowport completions zsh > /usr/local/share/zsh/site-functions/_lowport\n  lowport completions fish > ~/.config/fish/completions/lowport.fish";
    pub const MAN: &str =
        "Examples:\n  lowport man | man -l -\n  lowport man apply > lowport-apply.1";
    pub const FACTS_SCRIPT: &str = "Examples:\n  lowport facts-script --os freebsd --binary /usr/local/bin/fabio --user fabio > facts.sh\n  lowport facts-script --os macos --binary /usr/local/bin/fabio --port 80";
    pub const EXPORT: &str = "Examples:\n  lowport export --format ansible --method systemd --binary fabio --port 80 --port 443 --out fabio-ansible\n  lowport export --format cloud-init --facts web1.json --method setcap --binary /usr/local/bin/fabio --port 80 > user-data\n  lowport export --format compose --method setcap --binary /usr/local/bin/fabio --port 80";
}

// Each subcommand's arguments are built only when it is the one invoked: building them all took
// a fifth of a millisecond at every start (help, completions and man pages still build all).
#[derive(Debug, Clone, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Show what lowport detects about this host, the binary and the ports (read-only)
    #[command(after_help = examples::DETECT)]
    Detect(DetectArgs),
    /// List every method for this OS with its risks and whether it is available here
    #[command(after_help = examples::METHODS)]
    Methods(TargetArgs),
    /// Show exactly what a method would change: file diffs, commands, and undo
    #[command(after_help = examples::PLAN)]
    Plan(PlanArgs),
    /// Carry out a plan under a lock and journal, verify it, roll back on failure
    #[command(after_help = examples::APPLY)]
    Apply(ApplyArgs),
    /// Undo an earlier apply (or finish undoing an interrupted one)
    #[command(after_help = examples::ROLLBACK)]
    Rollback(RollbackArgs),
    /// List earlier applies with their status
    #[command(after_help = examples::HISTORY)]
    History(JsonArg),
    /// Prove that a user or binary can bind the ports
    #[command(after_help = examples::VERIFY)]
    Verify(VerifyArgs),
    /// Print a shell completion script generated from these definitions
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print a manual page (roff) generated from these definitions: lowport(1), or one
    /// subcommand's lowport-NAME(1)
    #[command(after_help = examples::MAN)]
    Man(ManArgs),
    /// Print a POSIX sh script that collects, on a host where lowport is not installed, the
    /// facts lowport plans from (`--facts FILE`)
    #[command(after_help = examples::FACTS_SCRIPT)]
    FactsScript(FactsScriptArgs),
    /// Write the plan for the engines that run it elsewhere: Ansible, cloud-init, Kubernetes,
    /// Compose, a shell script, PowerShell (nothing on this host changes)
    #[command(after_help = examples::EXPORT)]
    Export(ExportArgs),
    /// Internal: bind the ports as the current user (used by verify through authbind)
    #[command(name = "__bind", hide = true)]
    Bind { ports: Vec<u16> },
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct FactsScriptArgs {
    /// The OS family the script is for
    #[arg(long, value_name = "FAMILY", value_parser = ["freebsd", "openbsd", "netbsd", "illumos", "solaris", "macos"])]
    pub os: String,
    /// The binary, ports and user the plan will name (the script records their facts)
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: the main page, lowport(1))
    #[arg(value_parser = subcommand_name)]
    pub subcommand: Option<String>,
}

/// A visible subcommand's name, for `lowport man NAME`.
fn subcommand_name(s: &str) -> Result<String, String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let names: Vec<&str> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    if names.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("no subcommand '{s}'; known: {}", names.join(", ")))
    }
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
    /// The network interface pf and npf rules attach to (default: the default route's)
    #[arg(long, value_name = "IF", value_parser = validate::interface)]
    pub interface: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

// Options of the methods that run the binary as a systemd service. (Not a doc comment: a
// flattened struct's doc would become the about of the deferred subcommands that flatten it.)
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

// Another host to assess or plan for, instead of this one (as any user; `apply` refuses such
// a plan: it is for review and export). Not a doc comment, as above.
#[derive(Debug, Clone, Args, Default, PartialEq, Eq)]
pub struct OtherHost {
    /// Another host: a facts document saved there with `lowport detect --json --method ID`
    /// (or printed by the script `lowport facts-script` prints)
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// A stock install of another OS (freebsd-14, freebsd-15, openbsd-7, netbsd-10, illumos,
    /// solaris-11.4, macos-14, macos-10.13, windows)
    #[arg(long, value_name = "NAME", conflicts_with = "facts", value_parser = crate::facts::targets::parse)]
    pub target_os: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub other: OtherHost,
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
    #[command(flatten)]
    pub other: OtherHost,
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
    /// The SHA-256 of the saved plan, as `plan --out` prints it: the file must be exactly the
    /// plan that was reviewed, whoever could still write to it
    #[arg(long, value_name = "HEX", requires = "plan", value_parser = validate::sha256_hex)]
    pub plan_sha256: Option<String>,
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
    /// Re-check every applied, not rolled-back run of the history against the host (exit 10
    /// when something drifted)
    #[arg(long, conflicts_with_all = ["port", "user", "binary", "service", "authbind"])]
    pub all: bool,
    /// Port to prove (repeatable)
    #[arg(long, value_name = "N", required_unless_present = "all", value_parser = validate::port_arg)]
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
    #[arg(long, value_name = "FILE", conflicts_with_all = ["binary", "port", "user", "group", "facts", "target_os"])]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub other: OtherHost,
    /// Write the files into DIR (created if missing) instead of printing the one file
    #[arg(long = "out", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every example of every subcommand's `--help` parses with these definitions into that
    /// subcommand (the shell around it, `sudo` and redirections, is cut off first).
    #[test]
    fn every_subcommand_shows_examples_that_parse() {
        let top = Cli::command();
        let mut seen = 0;
        for sub in top.get_subcommands().filter(|c| !c.is_hide_set()) {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .unwrap_or_else(|| panic!("{name} has no examples"))
                .to_string();
            let mut lines = help.lines();
            assert_eq!(lines.next(), Some("Examples:"), "{name}");
            for line in lines {
                let command = line.trim().split(['>', '|']).next().unwrap();
                let words = shell_words::split(command).unwrap();
                let words = words.strip_prefix(&["sudo".to_string()]).unwrap_or(&words);
                assert_eq!(words.first().map(String::as_str), Some("lowport"), "{line}");
                let cli = Cli::try_parse_from(words).unwrap_or_else(|e| panic!("{line}: {e}"));
                let parsed = Cli::command()
                    .try_get_matches_from(words)
                    .unwrap()
                    .subcommand_name()
                    .map(String::from);
                assert_eq!(parsed.as_deref(), Some(name), "{line}");
                assert!(cli.command.is_some());
                seen += 1;
            }
        }
        assert!(seen >= 20, "only {seen} examples");
    }

    #[test]
    fn man_takes_only_a_visible_subcommand() {
        assert_eq!(subcommand_name("apply"), Ok("apply".into()));
        let e = subcommand_name("__bind").unwrap_err();
        assert!(e.contains("known: detect, methods"), "{e}");
    }
}
