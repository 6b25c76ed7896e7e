//! The sides ebb is compared with: pgbench calling Message DB's functions, and bare tokio-postgres doing ebb's single writes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_localpg::Cluster;
use ebb_message_store::MessageData;
use uuid::Uuid;

use crate::workload::{Categories, Entities, READ_CATEGORY, TYPE_NAME, json_text};
use crate::{Bench, BoxError, Rate, connect, run_writers};

/// A pgbench script and the variables it runs with.
#[derive(Debug)]
pub(crate) struct Script {
    /// The script file, in the cluster's own directory: the account
    /// pgbench runs as can read it, and it is removed with the cluster.
    path: PathBuf,
    /// Passed as `-D name=value`, which `-M prepared` sends as parameters.
    defines: Vec<(&'static str, String)>,
}

impl Script {
    /// The script of a single-write case: the same stream names, type and
    /// payload as ebb's writes. The data and metadata are pgbench
    /// variables, which `-M prepared` sends as parameters, so the server
    /// parses the JSON of every message, as it does for ebb's.
    pub(crate) fn writes(bench: &Bench, categories: Categories) -> Result<Self, BoxError> {
        let (data, metadata) = json_text(&bench.payload)?;
        Self::create(
            bench,
            "write.sql",
            &format!(
                "\\set entity random(1, {entities})\n\
                 SELECT message_store.write_message(gen_random_uuid()::varchar, {stream}, \
                 '{TYPE_NAME}', :data::jsonb, :metadata::jsonb);\n",
                entities = bench.settings.entities,
                stream = categories.sql_stream_name(),
            ),
            vec![("data", data), ("metadata", metadata)],
        )
    }

    /// The script of the read case: a batch from a random position.
    pub(crate) fn reads(bench: &Bench) -> Result<Self, BoxError> {
        let batch = bench.settings.batch_size;
        let last_start = bench.settings.read_messages - batch as u64 + 1;
        Self::create(
            bench,
            "read.sql",
            &format!(
                "\\set pos random(1, {last_start})\n\
                 SELECT * FROM message_store.get_category_messages('{READ_CATEGORY}', :pos, {batch});\n"
            ),
            Vec::new(),
        )
    }

    fn create(
        bench: &Bench,
        name: &str,
        text: &str,
        defines: Vec<(&'static str, String)>,
    ) -> Result<Self, BoxError> {
        use std::os::unix::fs::PermissionsExt as _;

        let path = bench.cluster.socket_dir().join(name);
        std::fs::write(&path, text)?;
        // pgbench may run as another account (when we are root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(Self { path, defines })
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
            .args(["-n", "-M", "prepared", "-c", &clients, "-j", &clients])
            .args(["-T", &seconds.to_string()])
            .arg("-f")
            .arg(&self.path);
        for (name, value) in &self.defines {
            command.arg("-D").arg(format!("{name}={value}"));
        }
        command.arg(database);
        let output = command.output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status).into());
        }
        let failed = stdout
            .lines()
            .find_map(|line| line.strip_prefix("number of failed transactions: "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("0");
        if failed != "0" {
            return Err(format!("pgbench had failed transactions:\n{stdout}\n{stderr}").into());
        }
        stdout
            .lines()
            .filter(|line| line.contains("without initial connection time"))
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| format!("no tps line in pgbench's output:\n{stdout}").into())
    }
}

/// `pgbench --version`'s version number, for the report.
pub(crate) fn pgbench_version(cluster: &Cluster) -> String {
    cluster
        .command("pgbench")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_default()
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
