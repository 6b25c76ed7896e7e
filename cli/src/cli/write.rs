//! `ebb write`: one message, written to one stream.

use ebb_message_store::{ExpectedVersion, MessageData, MessageStore as _, Metadata, StreamName};
use serde_json::Value;

use super::{CliError, store};

/// The message `ebb write` writes, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct WriteArgs {
    /// The stream to write to (`account-123`).
    stream: String,
    /// The message type (`Deposited`).
    #[arg(value_name = "TYPE")]
    type_name: String,
    /// The message's data: a JSON object, e.g. '{"amount": 10}'.
    data: String,
    /// The message's metadata: a JSON object with Eventide's keys, e.g.
    /// '{"correlationStreamName": "transfer-1"}'.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// Write only if the stream's last message is at position N, or, with
    /// `no-stream`, only if the stream is empty (default: `any`, no
    /// expectation).
    #[arg(long, value_name = "N|no-stream", allow_hyphen_values = true)]
    expected_version: Option<String>,
    /// The message's id (default: a new random UUID). A second message
    /// with the same id is refused.
    #[arg(long, value_name = "UUID")]
    id: Option<String>,
}

/// A message checked and ready to write.
#[derive(Debug)]
struct Write {
    stream: StreamName,
    message: MessageData,
    expected_version: ExpectedVersion,
}

pub async fn run(args: WriteArgs) -> Result<(), CliError> {
    let Write {
        stream,
        message,
        expected_version,
    } = Write::from_args(&args)?;
    let position = store()?
        .write(&stream, &message, expected_version)
        .await
        .map_err(|source| CliError::Store {
            action: format!("cannot write to {stream}"),
            source,
        })?;
    println!("{position}");
    Ok(())
}

impl Write {
    /// Checks everything that can be checked without the database; each
    /// problem is a usage error.
    fn from_args(args: &WriteArgs) -> Result<Self, CliError> {
        let usage = CliError::Usage;
        let stream =
            StreamName::parse(args.stream.as_str()).map_err(|err| usage(err.to_string()))?;
        let type_name = args.type_name.as_str();
        if type_name.is_empty() || type_name.trim() != type_name || type_name.contains('\0') {
            return Err(usage(format!(
                "the type {type_name:?} is empty or has surrounding whitespace"
            )));
        }
        let data: Value = serde_json::from_str(&args.data)
            .map_err(|err| usage(format!("the data is not JSON: {err}")))?;
        if !data.is_object() {
            return Err(usage(format!("the data must be a JSON object, not {data}")));
        }
        let mut message = MessageData::new(type_name, data);
        if let Some(metadata) = &args.metadata {
            let metadata: Metadata = serde_json::from_str(metadata)
                .map_err(|err| usage(format!("the metadata is not a metadata object: {err}")))?;
            message = message.with_metadata(metadata);
        }
        if let Some(id) = &args.id {
            let id = uuid::Uuid::parse_str(id)
                .map_err(|err| usage(format!("the id {id:?} is not a UUID: {err}")))?;
            message = message.with_id(id);
        }
        let expected_version = match args.expected_version.as_deref() {
            None | Some("any") => ExpectedVersion::Any,
            Some("no-stream") => ExpectedVersion::NoStream,
            Some(text) => match text.parse::<i64>() {
                Ok(position) if position >= 0 => ExpectedVersion::Exact(position),
                _ => {
                    return Err(usage(format!(
                        "the expected version {text:?} is not a stream position (0 or more), \
                         no-stream or any"
                    )));
                }
            },
        };
        Ok(Self {
            stream,
            message,
            expected_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(stream: &str, data: &str) -> WriteArgs {
        WriteArgs {
            stream: stream.into(),
            type_name: "Deposited".into(),
            data: data.into(),
            metadata: None,
            expected_version: None,
            id: None,
        }
    }

    fn usage_error(args: &WriteArgs) -> String {
        match Write::from_args(args) {
            Err(CliError::Usage(message)) => message,
            other => panic!("not a usage error: {other:?}"),
        }
    }

    #[test]
    fn every_part_is_taken_from_its_argument() {
        let id = "6a3a3e0e-8a3f-4f7e-9d2a-0d5c5f1d2e3f";
        let write = Write::from_args(&WriteArgs {
            metadata: Some(r#"{"correlationStreamName": "transfer-1", "x": 1}"#.into()),
            expected_version: Some("4".into()),
            id: Some(id.into()),
            ..args("account-1", r#"{"amount": 10}"#)
        })
        .unwrap();
        assert_eq!(write.stream.as_str(), "account-1");
        assert_eq!(write.message.type_name, "Deposited");
        assert_eq!(write.message.data, json!({ "amount": 10 }));
        assert_eq!(write.message.id.to_string(), id);
        assert_eq!(
            write.message.metadata.correlation_stream_name.as_deref(),
            Some("transfer-1")
        );
        assert_eq!(write.message.metadata.other["x"], json!(1));
        assert_eq!(write.expected_version, ExpectedVersion::Exact(4));
    }

    #[test]
    fn expected_versions_read_as_their_names() {
        for (text, expected) in [
            (None, ExpectedVersion::Any),
            (Some("any"), ExpectedVersion::Any),
            (Some("no-stream"), ExpectedVersion::NoStream),
            (Some("0"), ExpectedVersion::Exact(0)),
        ] {
            let write = Write::from_args(&WriteArgs {
                expected_version: text.map(Into::into),
                ..args("account-1", "{}")
            })
            .unwrap();
            assert_eq!(write.expected_version, expected, "{text:?}");
        }
        for bad in ["-1", "x", ""] {
            let message = usage_error(&WriteArgs {
                expected_version: Some(bad.into()),
                ..args("account-1", "{}")
            });
            assert!(message.contains("expected version"), "{message}");
        }
    }

    #[test]
    fn what_cannot_be_written_is_a_usage_error_naming_the_part() {
        for (args, part) in [
            (args("account-1", "{"), "the data is not JSON"),
            (args("account-1", "[1]"), "must be a JSON object"),
            (args("-1", "{}"), "-1"),
            (
                WriteArgs {
                    type_name: " Deposited".into(),
                    ..args("account-1", "{}")
                },
                "the type",
            ),
            (
                WriteArgs {
                    metadata: Some("[]".into()),
                    ..args("account-1", "{}")
                },
                "the metadata",
            ),
            (
                WriteArgs {
                    id: Some("not-a-uuid".into()),
                    ..args("account-1", "{}")
                },
                "is not a UUID",
            ),
        ] {
            let message = usage_error(&args);
            assert!(message.contains(part), "{message:?} lacks {part:?}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }
}
