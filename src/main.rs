//! The `veille` command: parses arguments, runs one subcommand, prints its
//! error with the cause chain and picks the exit code (SPEC §1).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use veille::cli::{self, CliError};
use veille::clock::Clock;

const EXIT_CODES: &str = "\
Exit status: 0 success; 1 a failure while running (`test`: nothing matched); \
2 bad usage or an invalid config.

Examples:
  veille check                            validate ./config.toml and summarise it
  veille run --once                       poll every feed once, deliver, exit
  veille test puces-ia --feed https://www.lemonde.fr/rss/une.xml
  veille --config /etc/veille/config.toml status";

#[derive(Parser)]
#[command(
    name = "veille",
    version,
    about = "Watch news feeds, match keyword rules, alert once per story",
    after_help = EXIT_CODES
)]
struct Args {
    /// Config file [default: $VEILLE_CONFIG, else ./config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log level [default: info; RUST_LOG is honoured]
    #[arg(long, global = true, value_name = "LEVEL", value_enum)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Command,
}

/// `--log-level`: anything else is bad usage (clap lists these, exit 2).
#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            // The PostgreSQL driver logs every statement with its
            // parameters at debug: item texts by the thousand, which
            // doubled the time a cold run took to write. `trace` has them.
            LogLevel::Debug => "debug,tokio_postgres=info",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Poll feeds, store, match and deliver, until stopped
    #[command(
        after_help = "Examples:\n  veille run                              the daemon (systemd runs this)\n  \
veille run --once --flush-digests       one pass, digests included, for cron"
    )]
    Run {
        /// Poll every feed once, deliver what is due, then exit
        #[arg(long)]
        once: bool,
        /// With --once: send every digest channel's pending digest too
        #[arg(long, requires = "once")]
        flush_digests: bool,
    },
    /// Validate the config and print a summary
    #[command(after_help = "Example:\n  veille --config /etc/veille/config.toml check")]
    Check,
    /// Show which items match which rules, and why, storing and sending nothing
    ///
    /// Exit status: 0 something matched, 1 nothing did, 2 error.
    #[command(
        group(clap::ArgGroup::new("input").required(true).args(["text", "feed", "history"])),
        after_help = "Examples:\n  veille test --text \"Nvidia et les puces d'IA\"\n  \
veille test tarifs --feed https://www.lemonde.fr/international/rss_full.xml\n  \
veille test --query 'puces NEAR/5 Chine' --feed samples/actualites.xml"
    )]
    Test {
        /// Only this rule [default: every rule]
        rule: Option<String>,
        /// A query to try instead of the config's rules: as a new version of RULE when one is named, else as a rule named `query`
        #[arg(long, value_name = "QUERY")]
        query: Option<String>,
        /// One made-up item whose every text field holds TEXT (HTML allowed)
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
        /// Every item of a feed: an http(s) URL, a file:// URL or a path
        #[arg(long, value_name = "URL_OR_PATH")]
        feed: Option<String>,
        /// One JSON object per match (rule, item, field, term, matched)
        #[arg(long)]
        json: bool,
        /// With --feed: also say which stored story each item would join as a wire copy, and why
        #[arg(long, requires = "feed", conflicts_with = "json")]
        wire: bool,
        /// With --feed: also fetch each item's page and match its article's text as content; say what was found, or why nothing was
        #[arg(long, requires = "feed")]
        full_text: bool,
        /// Back-test: run RULE (or --query) over the news of the last DURATION kept in the database, and report what it would have sent
        #[arg(long, value_name = "DURATION")]
        history: Option<String>,
        /// With --history: how many titles to list
        #[arg(long, value_name = "N", default_value_t = 20, requires = "history")]
        limit: usize,
    },
    /// Show feeds, channels and alerts from the database
    #[command(after_help = "Examples:\n  veille status\n  veille status --json | jq '.channels'")]
    Status {
        /// One JSON document
        #[arg(long)]
        json: bool,
    },
    /// List the stories alerted lately, newest first, and where each was sent
    #[command(
        after_help = "Examples:\n  veille recent\n  veille recent --since 7d --rule tarifs\n  veille recent --json | jq '.[].title'"
    )]
    Recent {
        /// How far back
        #[arg(long, value_name = "DURATION", default_value = cli::recent::DEFAULT_SINCE)]
        since: String,
        /// Only the stories this rule matched
        #[arg(long, value_name = "RULE")]
        rule: Option<String>,
        /// One JSON array of stories (at, rules, title, link, outlets, channels)
        #[arg(long)]
        json: bool,
    },
    /// Put a channel's failed alerts back in the queue
    #[command(after_help = "Example, after fixing the password:\n  veille retry equipe")]
    Retry {
        /// The channel's name in the config
        channel: String,
    },
    /// Send a digest channel's pending digest now, or print it
    #[command(after_help = "Examples:\n  veille digest matin --preview\n  veille digest matin")]
    Digest {
        /// The channel's name in the config
        channel: String,
        /// Print the digest instead of sending it
        #[arg(long)]
        preview: bool,
    },
    /// Copy the config's SQLite database into an empty PostgreSQL database
    #[command(after_help = "Stop veille first, then:\n  \
veille copy-db --to postgresql://veille@db.example.org/veille\n\n\
The source is only read. The target must be empty; it is given veille's schema.")]
    CopyDb {
        /// The PostgreSQL database: postgresql://USER@HOST[:PORT]/DATABASE
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Print a [[feed]] table for every feed of an OPML file
    #[command(after_help = "Example:\n  veille import-opml abonnements.opml >> config.toml")]
    ImportOpml {
        /// The OPML file (an export of a feed reader's subscriptions)
        file: PathBuf,
    },
    /// Send a test message through a channel
    #[command(after_help = "Example:\n  veille send-test moi")]
    SendTest {
        /// The channel's name in the config
        channel: String,
    },
    /// Print a completion script for bash, zsh or fish
    #[command(after_help = "Examples:\n  \
veille completions bash > ~/.local/share/bash-completion/completions/veille\n  \
veille completions zsh > ~/.zfunc/_veille\n  \
veille completions fish > ~/.config/fish/completions/veille.fish")]
    Completions { shell: clap_complete::Shell },
    /// Print a manual page (roff), made from these same definitions
    #[command(after_help = "Examples:\n  \
veille man | sudo tee /usr/local/share/man/man1/veille.1 >/dev/null\n  \
veille man run > veille-run.1       the page veille(1) points to for `run`")]
    Man {
        /// A subcommand's page, veille-SUBCOMMAND(1), instead of veille(1)
        subcommand: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_level);
    veille::fetch::install_crypto();
    veille::panics::install();
    match run(args) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        // `veille test` found nothing: exit 1, like grep.
        Ok(Outcome::NothingMatched) => ExitCode::from(1),
        Err(e) => {
            match &e {
                CliError::Config(e) => eprintln!("veille: {e}"),
                CliError::Runtime(e) | CliError::Usage(e) => eprintln!("veille: {e:#}"),
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// How a command that did not fail ended.
enum Outcome {
    Done,
    NothingMatched,
}

fn run(args: Args) -> Result<Outcome, CliError> {
    // The commands that need no config.
    match &args.command {
        Command::ImportOpml { file } => return printed(cli::import_opml(file)),
        Command::Completions { shell } => {
            let mut command = Args::command();
            clap_complete::generate(*shell, &mut command, "veille", &mut std::io::stdout());
            return Ok(Outcome::Done);
        }
        Command::Man { subcommand } => return man(subcommand.as_deref()),
        _ => {}
    }
    let path = cli::config_path(args.config);
    let config = match &args.command {
        Command::Test { query: Some(_), .. } => cli::load_config_or_defaults(&path)?,
        _ => cli::load_config(&path)?,
    };
    let clock = Clock::from_env().map_err(|e| CliError::Usage(anyhow::anyhow!(e)))?;
    match args.command {
        Command::Check => printed(Ok(cli::check::summary(&config, &clock))),
        Command::Status { json } => printed(cli::status::run(&config, json, &clock)),
        Command::Recent { since, rule, json } => printed(cli::recent::run(
            &config,
            &since,
            rule.as_deref(),
            json,
            &clock,
        )),
        Command::Test {
            rule,
            query,
            text,
            feed,
            json,
            wire,
            full_text,
            history,
            limit,
        } => {
            if let Some(history) = history {
                let ask = cli::history::Ask {
                    rule: rule.as_deref(),
                    query: query.as_deref(),
                    history: &history,
                    limit,
                    json,
                };
                let (report, found) = cli::history::run(&config, &ask, &clock)?;
                print!("{report}");
                return Ok(if found {
                    Outcome::Done
                } else {
                    Outcome::NothingMatched
                });
            }
            let source = match (text, feed) {
                (Some(text), _) => cli::test::Source::Text(text),
                (None, Some(location)) => cli::test::Source::Feed {
                    location,
                    wire,
                    full_text,
                },
                (None, None) => unreachable!("clap requires --text or --feed"),
            };
            test(&config, rule, query, source, json, clock.now())
        }
        Command::Retry { channel } => printed(cli::channel::retry(&config, &channel, &clock)),
        Command::CopyDb { to } => printed(cli::copy_db(&config, &to)),
        Command::Digest { channel, preview } => {
            printed(runtime()?.block_on(cli::channel::digest(config, &channel, preview, clock)))
        }
        Command::SendTest { channel } => {
            printed(runtime()?.block_on(cli::channel::send_test(&config, &channel, &clock)))
        }
        Command::Run {
            once,
            flush_digests,
        } => {
            let runtime = runtime()?;
            let result = runtime.block_on(cli::run::run(config, &path, once, flush_digests, clock));
            // Blocking work abandoned at shutdown (a parse, a file write) is
            // safe to cut; don't wait long for it.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            result.map(|()| Outcome::Done)
        }
        Command::ImportOpml { .. } | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled before the config is read")
        }
    }
}

/// A command's report, printed.
fn printed(report: Result<String, CliError>) -> Result<Outcome, CliError> {
    print!("{}", report?);
    Ok(Outcome::Done)
}

/// `veille man [SUBCOMMAND]`: veille(1), or veille-SUBCOMMAND(1).
fn man(subcommand: Option<&str>) -> Result<Outcome, CliError> {
    let top = Args::command();
    let page = match subcommand {
        None => top,
        Some(name) => {
            let Some(sub) = top.find_subcommand(name) else {
                return Err(CliError::Usage(anyhow::anyhow!(
                    "no subcommand {name:?}; see `veille --help`"
                )));
            };
            sub.clone().name(format!("veille-{name}"))
        }
    };
    match clap_mangen::Man::new(page).render(&mut std::io::stdout()) {
        // `veille man | head` closes the pipe early: not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::from(e).into()),
        _ => Ok(Outcome::Done),
    }
}

/// `veille test`: exit 1 when nothing matched, like grep.
fn test(
    config: &veille::config::Config,
    rule: Option<String>,
    query: Option<String>,
    source: cli::test::Source,
    json: bool,
    now: i64,
) -> Result<Outcome, CliError> {
    let which = match &query {
        Some(q) => cli::test::Which::Query(q, rule.as_deref()),
        None => cli::test::Which::Config(rule.as_deref()),
    };
    let (report, matched) =
        runtime()?.block_on(cli::test::run(config, which, source, json, now))?;
    print!("{report}");
    Ok(if matched {
        Outcome::Done
    } else {
        Outcome::NothingMatched
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?)
}

/// Logs go to stderr, one line per event; under systemd (JOURNAL_STREAM set)
/// without timestamps, since the journal adds its own, and with each line's
/// syslog priority in front (`<4>` a warning), which journald reads off a
/// stream (sd-daemon(3)) so that `journalctl -p warning` finds failures.
/// (The `tracing-journald` layer would need the journal's socket, which a
/// sandboxed unit or a `systemd-run` wrapper may not have; stderr is always
/// there.)
fn init_logging(level: Option<LogLevel>) {
    let filter = match level {
        Some(l) => EnvFilter::new(l.directive()),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let format = Priority(
            format::format()
                .without_time()
                .with_target(false)
                .with_ansi(false),
        );
        builder.with_ansi(false).event_format(format).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// A line format with the event's syslog priority in front.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}
