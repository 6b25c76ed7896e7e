//! `ebb trace`: the causation tree of the messages that followed a
//! message, or of the messages correlated to a stream, as
//! [`ebb_admin::trace`] finds them.

use ebb_admin::{Origin, TraceLine};

use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb trace` traces and how it prints it.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Reads message_store.messages directly (SELECT only), as it is in Message DB's \
schema. With a message id: that message, then the messages whose metadata \
causationMessageGlobalPosition is its global position (or, in metadata \
without one, whose causationMessageStreamName and causationMessagePosition \
are its stream name and position), then theirs, and so on: one statement per \
level of the tree, each a scan of the messages written after the level \
above. On a large store, an expression index makes each level an index \
lookup (the schema does not have it; ebb works without it):

  CREATE INDEX messages_causation ON message_store.messages \
((COALESCE(metadata->>'causationMessageGlobalPosition', \
(metadata->>'causationMessageStreamName') || '/' || \
(metadata->>'causationMessagePosition'))));

With a stream name: every message whose metadata correlationStreamName is \
that name (one scan of the table), as a forest: the roots are those whose \
cause is not among them. Children are shown under their cause in global \
position order. --limit keeps the tree's first levels (or a correlation's \
earliest messages) and says on stderr that it cut.")]
pub struct TraceArgs {
    /// A message id (a UUID): the tree of the messages that followed it;
    /// or a stream name (`transfer-7`): the messages correlated to it.
    #[arg(value_name = "ID")]
    id: String,
    /// Print at most this many messages (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: u64,
    /// One JSON object per line, in tree order (depth, globalPosition, id,
    /// streamName, position, type, time, causationGlobalPosition,
    /// correlationStreamName) instead of a tree.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: TraceArgs) -> Result<(), CliError> {
    let origin = Origin::parse(&args.id)?;
    let limit = (args.limit > 0).then_some(args.limit);
    let store = store()?;
    let trace = ebb_admin::trace(&store, &origin, limit).await?;
    if args.json {
        listing::print_json_lines(&trace.lines)?;
    } else {
        listing::print_table(&COLUMNS, &table(&trace.lines))?;
    }
    if trace.cut {
        let shown = trace.lines.len();
        eprintln!(
            "ebb: the trace is cut at {shown} messages (--limit {shown}); \
             --limit N shows more, --limit 0 all"
        );
    }
    Ok(())
}

const COLUMNS: [Column; 5] = [
    Column::number("GLOBAL"),
    Column::text("STREAM"),
    Column::number("POSITION"),
    Column::text("TYPE"),
    Column::text("TIME"),
];

/// The table's rows: the tree drawn in the stream column.
fn table(lines: &[TraceLine]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|line| {
            vec![
                line.global_position.to_string(),
                format!("{}{}", line.drawn, line.stream_name),
                line.position.to_string(),
                line.type_name.clone(),
                listing::table_time(&line.time),
            ]
        })
        .collect()
}
