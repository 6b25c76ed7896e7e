//! The sides ebb is compared with: pgbench running the statements ebb sends (and Message DB's function), and bare tokio-postgres doing ebb's single writes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_bench::BoxError;
use ebb_bench::pgbench::{self, CategoryRead};
use ebb_localpg::Cluster;
use ebb_message_store::MessageData;
use uuid::Uuid;

use crate::workload::{Categories, Entities, READ_CATEGORY, TYPE_NAME, json_text};
use crate::{Bench, Rate, connect, run_writers};

/// A pgbench script and the variables it runs with.
#[derive(Debug)]
pub(crate) struct Script {
    /// The script file, in the cluster's own directory.
    path: PathBuf,
    /// Passed as `-D name=value`, which `-M prepared` sends as parameters.
    defines: Vec<(&'static str, String)>,
    /// The protocol: `prepared` for statements with parameters, `simple`
    /// for the direct read's `EXECUTE` (see [`CategoryRead`]).
    protocol: &'static str,
}

impl Script {
    /// The script of a single-write case: the same stream names, type and
    /// payload as ebb's writes. The data and metadata are pgbench
    /// variables, which `-M prepared` sends as parameters, so the server
    /// parses the JSON of every message, as it does for ebb's.
    pub(crate) fn writes(bench: &Bench, categories: Categories) -> Result<Self, BoxError> {
        let (data, metadata) = json_text(&bench.payload)?;
        let path = pgbench::script(
            bench.cluster.socket_dir(),
            "write.sql",
            &format!(
                "\\set entity random(1, {entities})\n\
                 SELECT message_store.write_message(gen_random_uuid()::varchar, {stream}, \
                 '{TYPE_NAME}', :data::jsonb, :metadata::jsonb);\n",
                entities = bench.settings.entities,
                stream = categories.sql_stream_name(),
            ),
        )?;
        Ok(Self {
            path,
            defines: vec![("data", data), ("metadata", metadata)],
            protocol: "prepared",
        })
    }

    /// The script of the read case: one batch per transaction, read in
    /// order from position 1 as ebb reads it, each batch starting after
    /// the last message of the one before (`\aset` keeps the last row's
    /// `global_position`), and from position 1 again after the last
    /// message of the category. Every slice is a new pgbench process that
    /// starts at position 1, as ebb's slices do.
    pub(crate) fn reads(bench: &Bench, read: CategoryRead<'_>) -> Result<Self, BoxError> {
        let name = match read {
            CategoryRead::Direct(_) => "read_direct.sql",
            CategoryRead::Function => "read_function.sql",
        };
        let path = pgbench::script(
            bench.cluster.socket_dir(),
            name,
            &pgbench::category_read_script(
                read,
                READ_CATEGORY,
                bench.settings.batch_size as u64,
                Some(bench.settings.read_messages),
            ),
        )?;
        Ok(Self {
            path,
            defines: vec![("global_position", "0".into()), ("ready", "0".into())],
            protocol: read.protocol(),
        })
    }

    /// Runs pgbench with `clients` clients on as many threads for
    /// `seconds` and returns its transactions per second, without
    /// connection time.
    pub(crate) fn run(
        &self,
        cluster: &Cluster,
        database: &str,
        clients: usize,
        seconds: u64,
    ) -> Result<f64, BoxError> {
        let clients = clients.to_string();
        let mut command = cluster.command("pgbench");
        command
            .args(["-n", "-M", self.protocol, "-c", &clients, "-j", &clients])
            .args(["-T", &seconds.to_string()])
            .arg("-f")
            .arg(&self.path);
        for (name, value) in &self.defines {
            command.arg("-D").arg(format!("{name}={value}"));
        }
        command.arg(database);
        Ok(pgbench::run(command, None)?.tps)
    }
}

/// The statement ebb's `write` sends, prepared once per connection.
const DRIVER_WRITE: &str = "SELECT message_store.write_message(\
    $1::varchar, $2::varchar, $3::varchar, $4::jsonb, $5::jsonb, $6::bigint)";

/// Bare tokio-postgres: one connection and its prepared write per writer.
pub(crate) type DriverClients = Arc<Vec<(tokio_postgres::Client, tokio_postgres::Statement)>>;

/// Opens a connection per writer, the ordinary way, and prepares the
/// write on each; the connections run on the calling runtime, as the
/// writers will.
pub(crate) async fn driver_clients(
    config: tokio_postgres::Config,
    writers: usize,
) -> Result<DriverClients, BoxError> {
    let mut clients = Vec::new();
    for _ in 0..writers {
        let client = connect(&config).await?;
        let statement = client.prepare(DRIVER_WRITE).await?;
        clients.push((client, statement));
    }
    Ok(Arc::new(clients))
}

/// One task per connection writing single messages until `duration` is
/// over, with the same ids, stream names and payload as ebb's single
/// writes.
pub(crate) async fn driver_single_writes(
    clients: &DriverClients,
    payload: &MessageData,
    categories: Categories,
    slice: u64,
    entities: u64,
    duration: Duration,
) -> Result<Rate, BoxError> {
    let metadata = serde_json::to_value(&payload.metadata)?;
    run_writers(clients.len(), duration, |writer, deadline| {
        let clients = clients.clone();
        let data = payload.data.clone();
        let metadata = metadata.clone();
        let type_name = payload.type_name.clone();
        let category = categories.category(writer);
        let mut ids = Entities::for_writer(slice, writer, entities);
        async move {
            let (client, statement) = &clients[writer];
            let mut written = 0u64;
            while Instant::now() < deadline {
                let id = Uuid::new_v4().to_string();
                let stream = format!("{category}-{}", ids.next());
                let expected: Option<i64> = None;
                client
                    .query_one(
                        statement,
                        &[&id, &stream, &type_name, &data, &metadata, &expected],
                    )
                    .await?;
                written += 1;
            }
            Ok::<_, BoxError>(written)
        }
    })
    .await
}
