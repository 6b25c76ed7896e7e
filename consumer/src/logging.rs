//! The usual log subscriber for a component, in one call: [`init`].
//! Feature `logging`.
//!
//! ```no_run
//! # async fn run() -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::process::ExitCode {
//!     ebb_consumer::logging::init();
//!     tracing::info!("starting");
//!     run().await
//! }
//! ```
//!
//! It is configured by the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RUST_LOG` | which events are written, as [`EnvFilter`](https://docs.rs/tracing-subscriber/0.3/tracing_subscriber/filter/struct.EnvFilter.html) reads it (`info`, `warn,ebb_consumer=debug`, ...) | `info` |
//! | `EBB_LOG_FORMAT` | `plain` (one line of text per event) or `json` (one JSON object per line, for a log collector) | `plain` |
//! | `NO_COLOR` | set and not empty: no colour, even on a terminal | unset |
//!
//! Events are written to stderr, which a supervisor (systemd's journal,
//! a container runtime) collects; plain text is coloured only when
//! stderr is a terminal, so that a log file or the journal gets no
//! escape codes. An unset or empty variable takes its default; a value
//! that cannot be used (a `RUST_LOG` that does not parse, an
//! `EBB_LOG_FORMAT` other than `plain` or `json`) takes the default too,
//! and is named in a warning, the first event written. Records of the
//! [`log`](https://docs.rs/log) crate (tokio-postgres writes some) are
//! written as events too, unless the process has a `log` logger already.

use std::io::IsTerminal as _;

use tracing_log::AsLog as _;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset, empty or unusable.
const DEFAULT_FILTER: &str = "info";

/// Installs the usual subscriber as the process's global one (see the
/// [module documentation](self) for what it writes, where, and the
/// variables that say how). Call it first thing in `main`, before
/// anything logs.
///
/// Returns whether this call installed it: `false` when the process has
/// a global subscriber already (from an earlier call, or one of its
/// own), which is then left as it is. Calling it again is harmless.
///
/// ```
/// let installed = ebb_consumer::logging::init();
/// assert!(!ebb_consumer::logging::init(), "once only");
/// # let _ = installed;
/// ```
pub fn init() -> bool {
    let settings = Settings::read(
        |name| std::env::var(name).ok(),
        std::io::stderr().is_terminal(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&settings.filter))
        .with_writer(std::io::stderr)
        .with_ansi(settings.ansi);
    let installed = match settings.format {
        Format::Json => tracing::subscriber::set_global_default(builder.json().finish()),
        Format::Plain => tracing::subscriber::set_global_default(builder.finish()),
    }
    .is_ok();
    if !installed {
        return false;
    }
    // After the subscriber, so that `log` skips records its filter would
    // drop; a process with a `log` logger of its own keeps it.
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(tracing::level_filters::LevelFilter::current().as_log())
        .init();
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    true
}

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One line of text per event.
    Plain,
    /// One JSON object per line.
    Json,
}

/// What [`init`] installs, decided from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// The filter's directives, known to parse.
    filter: String,
    /// Plain text or JSON.
    format: Format,
    /// Whether plain text is coloured.
    ansi: bool,
    /// The variables that could not be used, said once the subscriber is
    /// installed (there is nowhere to say it before).
    warnings: Vec<String>,
}

impl Settings {
    /// The settings the variables `var` gives, for a stderr that is a
    /// terminal or not.
    fn read(var: impl Fn(&str) -> Option<String>, stderr_is_terminal: bool) -> Self {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let mut warnings = Vec::new();
        let filter = match set("RUST_LOG") {
            None => DEFAULT_FILTER.to_owned(),
            Some(value) => match EnvFilter::try_new(&value) {
                Ok(_) => value,
                Err(err) => {
                    warnings.push(format!(
                        "RUST_LOG={value:?} is not a log filter ({err}); logging at {DEFAULT_FILTER}"
                    ));
                    DEFAULT_FILTER.to_owned()
                }
            },
        };
        let format = match set("EBB_LOG_FORMAT") {
            None => Format::Plain,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "plain" => Format::Plain,
                "json" => Format::Json,
                _ => {
                    warnings.push(format!(
                        "EBB_LOG_FORMAT={value:?} is not plain or json; logging plain text"
                    ));
                    Format::Plain
                }
            },
        };
        let ansi = format == Format::Plain && stderr_is_terminal && set("NO_COLOR").is_none();
        Self {
            filter,
            format,
            ansi,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings `pairs` make, as if they were the environment.
    fn read(pairs: &[(&str, &str)], terminal: bool) -> Settings {
        Settings::read(
            |name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            },
            terminal,
        )
    }

    #[test]
    fn nothing_set_is_plain_text_at_info_coloured_only_on_a_terminal() {
        let on_terminal = read(&[], true);
        assert_eq!(
            on_terminal,
            Settings {
                filter: "info".into(),
                format: Format::Plain,
                ansi: true,
                warnings: Vec::new(),
            }
        );
        assert!(!read(&[], false).ansi, "a file or a pipe gets no colour");
        assert!(!read(&[("NO_COLOR", "1")], true).ansi);
        assert!(
            read(&[("NO_COLOR", "")], true).ansi,
            "empty counts as unset"
        );
    }

    #[test]
    fn rust_log_is_the_filter_and_an_unusable_one_falls_back_with_a_warning() {
        let settings = read(&[("RUST_LOG", "warn,ebb_consumer=debug")], false);
        assert_eq!(settings.filter, "warn,ebb_consumer=debug");
        assert!(settings.warnings.is_empty());

        let settings = read(&[("RUST_LOG", "ebb=loud")], false);
        assert_eq!(settings.filter, "info");
        assert_eq!(settings.warnings.len(), 1);
        assert!(settings.warnings[0].starts_with(r#"RUST_LOG="ebb=loud" is not a log filter"#));

        assert_eq!(read(&[("RUST_LOG", " ")], false).filter, "info");
    }

    #[test]
    fn json_when_asked_never_coloured_and_an_unknown_format_is_plain_with_a_warning() {
        let json = read(&[("EBB_LOG_FORMAT", "JSON")], true);
        assert_eq!((json.format, json.ansi), (Format::Json, false));
        assert!(json.warnings.is_empty());

        assert_eq!(
            read(&[("EBB_LOG_FORMAT", "plain")], false).format,
            Format::Plain
        );

        let unknown = read(&[("EBB_LOG_FORMAT", "yaml")], false);
        assert_eq!(unknown.format, Format::Plain);
        assert_eq!(
            unknown.warnings,
            [r#"EBB_LOG_FORMAT="yaml" is not plain or json; logging plain text"#]
        );
    }
}
