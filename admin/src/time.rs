//! Times as the results serialize them: RFC 3339, UTC, to the
//! microsecond (`2024-05-06T07:08:09.123456Z`), always with six digits,
//! as `ebb ... --json` prints them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `time` as RFC 3339, UTC, to the microsecond.
pub(crate) fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Serializes a time as [`rfc3339`] writes it.
pub(crate) fn serialize<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(time))
}

/// Serializes a time that may be missing: as [`rfc3339`] writes it, or as
/// null.
pub(crate) fn serialize_option<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize(time, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_six_digits_and_a_z() {
        let time: DateTime<Utc> = "2024-05-06T07:08:09.12Z".parse().unwrap();
        assert_eq!(rfc3339(&time), "2024-05-06T07:08:09.120000Z");
        #[derive(serde::Serialize)]
        struct Times {
            #[serde(serialize_with = "serialize")]
            at: DateTime<Utc>,
            #[serde(serialize_with = "serialize_option")]
            maybe: Option<DateTime<Utc>>,
        }
        let times = Times {
            at: time,
            maybe: None,
        };
        assert_eq!(
            serde_json::to_string(&times).unwrap(),
            r#"{"at":"2024-05-06T07:08:09.120000Z","maybe":null}"#
        );
    }
}
