//! `ebb completions`: shell completion scripts made from the command
//! line's own definition, so that they cannot drift from it.

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::Args;

/// Prints the completion script for `shell` on stdout.
pub fn print(shell: Shell) {
    clap_complete::generate(shell, &mut visible(), "ebb", &mut std::io::stdout());
}

/// The command line without its hidden commands, which clap_complete's
/// scripts would otherwise offer: the top level is made anew with the
/// visible subcommands, since a clap command cannot drop one.
fn visible() -> clap::Command {
    let full = Args::command();
    // The version as `#[command(version)]` sets it.
    let mut visible = clap::Command::new("ebb")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(full.is_subcommand_required_set())
        .subcommands(
            full.get_subcommands()
                .filter(|command| !command.is_hide_set())
                .cloned(),
        );
    if let Some(about) = full.get_about() {
        visible = visible.about(about.clone());
    }
    visible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_is_completed_and_no_hidden_one() {
        let names: Vec<String> = visible()
            .get_subcommands()
            .map(|command| command.get_name().to_owned())
            .collect();
        let expected: Vec<String> = Args::command()
            .get_subcommands()
            .filter(|command| !command.is_hide_set())
            .map(|command| command.get_name().to_owned())
            .collect();
        assert_eq!(names, expected);
        assert_eq!(visible().get_name(), Args::command().get_name());
        assert!(names.iter().any(|name| name == "tail"), "{names:?}");
        assert!(
            !names.iter().any(|name| name == "account-component"),
            "{names:?}"
        );
    }
}
