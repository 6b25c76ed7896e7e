//! `ebb read`: the messages of a stream or a category, once.

use ebb_admin::Reader;
use ebb_message_store::{ConsumerGroup, DEFAULT_BATCH_SIZE, Message, StreamName};

use super::output::{Printed, Printer};
use super::{CliError, store};

/// What `ebb read` reads and how it prints it.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// A stream (`account-123`), or a category (`account`, `account:command`):
    /// a name without an id is read as a category.
    name: String,
    /// The first message to read: a stream position (from 0, the default)
    /// for a stream, a global position (from 1, the default) for a
    /// category.
    #[arg(long, value_name = "POSITION", value_parser = clap::value_parser!(i64).range(0..))]
    from: Option<i64>,
    /// Print at most this many messages (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: u64,
    /// Only messages of this type (filtered after reading: --limit counts
    /// the messages printed).
    #[arg(long = "type", value_name = "TYPE")]
    type_name: Option<String>,
    /// Only messages whose metadata correlates them to a stream of this
    /// category (categories only).
    #[arg(long, value_name = "CATEGORY")]
    correlation: Option<String>,
    /// Only the share of the category's streams that consumer group
    /// member MEMBER of SIZE handles, e.g. `0/2` (categories only).
    #[arg(long, value_name = "MEMBER/SIZE", value_parser = parse_group)]
    group: Option<ConsumerGroup>,
    /// One JSON object per line (id, streamName, type, position,
    /// globalPosition, data, metadata, time) instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ReadArgs) -> Result<(), CliError> {
    let mut reader = reader(&args)?;
    let store = store()?;
    let mut printer = Printer::new(args.json);
    let mut remaining = (args.limit > 0).then_some(args.limit);
    loop {
        // Without a type filter every message read is printed, so a batch
        // need not be larger than what is left to print.
        let batch_size = match (remaining, &args.type_name) {
            (Some(remaining), None) => remaining.min(DEFAULT_BATCH_SIZE as u64) as i64,
            _ => DEFAULT_BATCH_SIZE,
        };
        let batch = reader.next_batch(&store, batch_size).await?;
        let full = batch.len() as i64 >= batch_size;
        let mut shown: Vec<Message> = batch
            .into_iter()
            .filter(|message| {
                args.type_name
                    .as_ref()
                    .is_none_or(|type_name| message.type_name == *type_name)
            })
            .collect();
        if let Some(remaining) = &mut remaining {
            shown.truncate(usize::try_from(*remaining).unwrap_or(usize::MAX));
            *remaining -= shown.len() as u64;
        }
        if printer.print(&shown)? == Printed::ReaderGone || !full || remaining == Some(0) {
            return Ok(());
        }
    }
}

/// The reader of the name and filters `args` give, or a usage error for a
/// name or a filter that cannot be read.
fn reader(args: &ReadArgs) -> Result<Reader, CliError> {
    let reader = Reader::new(&args.name, args.from)?;
    if !reader.is_category() {
        if args.correlation.is_some() || args.group.is_some() {
            return Err(CliError::Usage(format!(
                "--correlation and --group filter a category, and {} is a stream \
                 (a category's name has no id)",
                reader.name()
            )));
        }
        return Ok(reader);
    }
    let mut reader = reader;
    if let Some(correlation) = &args.correlation {
        StreamName::category_name(correlation)
            .map_err(|err| CliError::Usage(format!("--correlation takes a category: {err}")))?;
        reader = reader.correlation(correlation)?;
    }
    if let Some(group) = args.group {
        reader = reader.consumer_group(group)?;
    }
    Ok(reader)
}

/// `MEMBER/SIZE`, as `--group` takes it: a member in `0..SIZE`.
fn parse_group(text: &str) -> Result<ConsumerGroup, String> {
    let (member, size) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not MEMBER/SIZE (e.g. 0/2)"))?;
    let number = |part: &str, what: &str| {
        part.trim()
            .parse::<i64>()
            .map_err(|err| format!("the group {what} {part:?}: {err}"))
    };
    let (member, size) = (number(member, "member")?, number(size, "size")?);
    if size < 1 || !(0..size).contains(&member) {
        return Err(format!(
            "the member must be from 0 to SIZE - 1, and SIZE at least 1 (got {member}/{size})"
        ));
    }
    Ok(ConsumerGroup { member, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_as_member_of_size() {
        assert_eq!(parse_group("1/3"), Ok(ConsumerGroup { member: 1, size: 3 }));
        for bad in ["1", "3/3", "-1/2", "0/0", "a/2", "0/b", ""] {
            assert!(parse_group(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
