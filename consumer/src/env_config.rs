//! [`ConsumerConfig::from_env`]: a consumer's settings from the
//! process's environment, as a component under a supervisor gets them.

use std::env::VarError;
use std::str::FromStr;

use ebb_message_store::ConsumerGroup;
use ebb_retry::MAX_WAIT;

use crate::config::is_identifier;
use crate::{ConsumerConfig, Error};

/// Every variable [`ConsumerConfig::from_env`] reads, so that a value
/// that is not UTF-8 is refused rather than taken as unset.
const VARIABLES: [&str; 12] = [
    "CONSUMER_IDENTIFIER",
    "CONSUMER_CONCURRENCY",
    "CONSUMER_BATCH_SIZE",
    "CONSUMER_POLL_INTERVAL_MS",
    "CONSUMER_POSITION_UPDATE_INTERVAL",
    "CONSUMER_GROUP_MEMBER",
    "CONSUMER_GROUP_SIZE",
    "CONSUMER_PARK_AFTER_FAILURES",
    "CONSUMER_PARK_AFTER_RETRIES",
    "CONSUMER_HANDLER_RETRY_MS",
    "CONSUMER_STORE_RETRY_MS",
    "CONSUMER_WAKE_ON_NOTIFY",
];

impl ConsumerConfig {
    /// The settings for `category` from the process's environment: the
    /// defaults of [`ConsumerConfig::new`], with each variable below that
    /// is set taking the place of its field's default. A variable that is
    /// empty (or only spaces) counts as unset; values are trimmed.
    ///
    /// | variable | field | value | default |
    /// |---|---|---|---|
    /// | `CONSUMER_IDENTIFIER` | [`identifier`](Self::identifier) | Eventide's consumer identifier: names the position stream, `CATEGORY:position-IDENTIFIER`; no `-`, `:` or `+` | none |
    /// | `CONSUMER_CONCURRENCY` | [`concurrency`](Self::concurrency) | messages handled at once, at least 1 | 1 |
    /// | `CONSUMER_BATCH_SIZE` | [`batch_size`](Self::batch_size) | messages read per query, at least 1 | 1000 |
    /// | `CONSUMER_POLL_INTERVAL_MS` | [`poll_interval`](Self::poll_interval) | milliseconds a caught-up consumer waits, at least 1 | 100 |
    /// | `CONSUMER_POSITION_UPDATE_INTERVAL` | [`position_update_interval`](Self::position_update_interval) | messages between position records, at least 1 | 100 |
    /// | `CONSUMER_GROUP_MEMBER`, `CONSUMER_GROUP_SIZE` | [`group`](Self::group) | this member (`0..size`) and the group's size; both or neither | none |
    /// | `CONSUMER_PARK_AFTER_FAILURES` | [`park_after_failures`](Self::park_after_failures) | failures that ended the process before a message is parked, at least 1 | none |
    /// | `CONSUMER_PARK_AFTER_RETRIES` | [`park_after_retries`](Self::park_after_retries) | `on` or `off` | off |
    /// | `CONSUMER_HANDLER_RETRY_MS` | [`handler_retry_ms`](Self::handler_retry_ms) | milliseconds, comma-separated (`100,1000`), or `none` | none |
    /// | `CONSUMER_STORE_RETRY_MS` | [`store_retry_ms`](Self::store_retry_ms) | milliseconds, comma-separated, or `none` | `100,1000,5000` |
    /// | `CONSUMER_WAKE_ON_NOTIFY` | [`wake_on_notify`](Self::wake_on_notify) | `on` or `off` | on |
    ///
    /// `on` may also be written `true`, `yes` or `1`, and `off` `false`,
    /// `no` or `0`, in any case. An interval may be at most
    /// [`ebb_retry::MAX_WAIT`] (a day).
    ///
    /// Each value is checked on its own here; how they combine (a group
    /// or parking without an identifier, say) is checked by
    /// [`validate`](Self::validate) when the consumer is made, so that
    /// fields set in the code afterwards count:
    ///
    /// ```no_run
    /// use ebb_consumer::ConsumerConfig;
    ///
    /// let config = ConsumerConfig {
    ///     handler_retry_ms: vec![100, 1_000],
    ///     ..ConsumerConfig::from_env("account:command")?
    /// };
    /// # Ok::<(), ebb_consumer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the variable and its value, for a
    /// value that does not parse (with the parser's error as its source),
    /// is out of range, or is not UTF-8.
    pub fn from_env(category: impl Into<String>) -> Result<Self, Error> {
        for name in VARIABLES {
            if let Err(VarError::NotUnicode(value)) = std::env::var(name) {
                return Err(Error::invalid_config(format!(
                    "{name}={value:?} is not valid UTF-8"
                )));
            }
        }
        Self::from_vars(category, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables `var` gives (a
    /// variable's value, or `None` when it is unset): for settings kept
    /// elsewhere than the process's environment, and for tests, which
    /// should not change the environment of the whole test process.
    ///
    /// ```
    /// use ebb_consumer::ConsumerConfig;
    ///
    /// let config = ConsumerConfig::from_vars("account:command", |name| match name {
    ///     "CONSUMER_IDENTIFIER" => Some("worker1".into()),
    ///     "CONSUMER_CONCURRENCY" => Some("8".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(config.identifier.as_deref(), Some("worker1"));
    /// assert_eq!(config.concurrency, 8);
    ///
    /// let err = ConsumerConfig::from_vars("account:command", |name| {
    ///     (name == "CONSUMER_BATCH_SIZE").then(|| "lots".into())
    /// })
    /// .unwrap_err();
    /// assert!(err.to_string().contains(r#"CONSUMER_BATCH_SIZE="lots""#));
    /// # Ok::<(), ebb_consumer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(
        category: impl Into<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let vars = Vars(var);
        let mut config = Self::new(category);
        if let Some(identifier) = vars.get("CONSUMER_IDENTIFIER") {
            if !is_identifier(&identifier) {
                return Err(refused(
                    "CONSUMER_IDENTIFIER",
                    &identifier,
                    "an identifier: it names streams, so it has no '-', ':' or '+'",
                ));
            }
            config.identifier = Some(identifier);
        }
        if let Some(concurrency) = vars.at_least("CONSUMER_CONCURRENCY", 1)? {
            config.concurrency = concurrency;
        }
        if let Some(batch_size) = vars.at_least("CONSUMER_BATCH_SIZE", 1)? {
            config.batch_size = batch_size;
        }
        if let Some(millis) = vars.at_least("CONSUMER_POLL_INTERVAL_MS", 1)? {
            config.poll_interval = std::time::Duration::from_millis(millis);
        }
        if let Some(interval) = vars.at_least("CONSUMER_POSITION_UPDATE_INTERVAL", 1)? {
            config.position_update_interval = interval;
        }
        config.group = vars.group()?;
        config.park_after_failures = vars.at_least("CONSUMER_PARK_AFTER_FAILURES", 1)?;
        if let Some(park) = vars.switch("CONSUMER_PARK_AFTER_RETRIES")? {
            config.park_after_retries = park;
        }
        if let Some(waits) = vars.millis("CONSUMER_HANDLER_RETRY_MS")? {
            config.handler_retry_ms = waits;
        }
        if let Some(waits) = vars.millis("CONSUMER_STORE_RETRY_MS")? {
            config.store_retry_ms = waits;
        }
        if let Some(wake) = vars.switch("CONSUMER_WAKE_ON_NOTIFY")? {
            config.wake_on_notify = wake;
        }
        Ok(config)
    }
}

/// `name=value` refused because it is not `expected`.
fn refused(name: &str, value: &str, expected: &str) -> Error {
    Error::invalid_config(format!("{name}={value:?} is not {expected}"))
}

/// The variables, through the caller's lookup, each read and checked on
/// its own.
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// The trimmed value of `name`, if it is set and not blank.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// `name` as a whole number of at least `min`, if set.
    fn at_least<T>(&self, name: &str, min: T) -> Result<Option<T>, Error>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let expected = || format!("a whole number of at least {min}");
        match value.parse::<T>() {
            Ok(number) if number >= min => Ok(Some(number)),
            Ok(_) => Err(refused(name, &value, &expected())),
            Err(err) => Err(Error::invalid_config_by(
                format!("{name}={value:?} is not {}", expected()),
                err,
            )),
        }
    }

    /// `name` as `on` or `off` (or their other spellings), if set.
    fn switch(&self, name: &str) -> Result<Option<bool>, Error> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok(Some(true)),
            "off" | "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(refused(name, &value, "on or off")),
        }
    }

    /// `name` as comma-separated milliseconds, each at most
    /// [`MAX_WAIT`], or `none` for no waits at all, if set.
    fn millis(&self, name: &str) -> Result<Option<Vec<u64>>, Error> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        if value.eq_ignore_ascii_case("none") {
            return Ok(Some(Vec::new()));
        }
        let expected = "comma-separated milliseconds (100,1000) or none";
        let max = u64::try_from(MAX_WAIT.as_millis()).unwrap_or(u64::MAX);
        value
            .split(',')
            .map(|item| match item.trim().parse::<u64>() {
                Ok(ms) if ms <= max => Ok(ms),
                Ok(ms) => Err(Error::invalid_config(format!(
                    "{name}={value:?} holds {ms} ms, longer than the longest wait ({max} ms)"
                ))),
                Err(err) => Err(Error::invalid_config_by(
                    format!("{name}={value:?} is not {expected}"),
                    err,
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `CONSUMER_GROUP_MEMBER` and `CONSUMER_GROUP_SIZE`, both or neither.
    fn group(&self) -> Result<Option<ConsumerGroup>, Error> {
        let member = self.at_least::<i64>("CONSUMER_GROUP_MEMBER", 0)?;
        let size = self.at_least::<i64>("CONSUMER_GROUP_SIZE", 1)?;
        match (member, size) {
            (None, None) => Ok(None),
            (Some(member), Some(size)) if member < size => Ok(Some(ConsumerGroup { member, size })),
            (Some(member), Some(size)) => Err(Error::invalid_config(format!(
                "CONSUMER_GROUP_MEMBER={member} is not below CONSUMER_GROUP_SIZE={size}: members are numbered from 0"
            ))),
            (Some(_), None) => Err(Error::invalid_config(
                "CONSUMER_GROUP_MEMBER is set without CONSUMER_GROUP_SIZE: set both or neither",
            )),
            (None, Some(_)) => Err(Error::invalid_config(
                "CONSUMER_GROUP_SIZE is set without CONSUMER_GROUP_MEMBER: set both or neither",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::time::Duration;

    use super::*;

    /// The settings `pairs` make, as if they were the environment.
    fn from(pairs: &[(&str, &str)]) -> Result<ConsumerConfig, Error> {
        ConsumerConfig::from_vars("account:command", |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn nothing_set_is_the_defaults_and_blank_counts_as_unset() {
        let defaults = ConsumerConfig::new("account:command");
        assert_eq!(from(&[]).unwrap(), defaults);
        let blank: Vec<(&str, &str)> = VARIABLES.iter().map(|name| (*name, "  ")).collect();
        assert_eq!(from(&blank).unwrap(), defaults);
    }

    #[test]
    fn every_variable_sets_its_field() {
        let config = from(&[
            ("CONSUMER_IDENTIFIER", " worker1 "),
            ("CONSUMER_CONCURRENCY", "8"),
            ("CONSUMER_BATCH_SIZE", "250"),
            ("CONSUMER_POLL_INTERVAL_MS", "20"),
            ("CONSUMER_POSITION_UPDATE_INTERVAL", "10"),
            ("CONSUMER_GROUP_MEMBER", "1"),
            ("CONSUMER_GROUP_SIZE", "3"),
            ("CONSUMER_PARK_AFTER_FAILURES", "2"),
            ("CONSUMER_PARK_AFTER_RETRIES", "Yes"),
            ("CONSUMER_HANDLER_RETRY_MS", "100, 1000"),
            ("CONSUMER_STORE_RETRY_MS", "none"),
            ("CONSUMER_WAKE_ON_NOTIFY", "off"),
        ])
        .unwrap();
        assert_eq!(
            config,
            ConsumerConfig {
                identifier: Some("worker1".into()),
                concurrency: 8,
                batch_size: 250,
                poll_interval: Duration::from_millis(20),
                position_update_interval: 10,
                group: Some(ConsumerGroup { member: 1, size: 3 }),
                park_after_failures: Some(2),
                park_after_retries: true,
                handler_retry_ms: vec![100, 1_000],
                store_retry_ms: Vec::new(),
                wake_on_notify: false,
                ..ConsumerConfig::new("account:command")
            }
        );
        config.validate().unwrap();
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_variable_and_the_value() {
        let cases = [
            ("CONSUMER_IDENTIFIER", "worker-1"),
            ("CONSUMER_CONCURRENCY", "0"),
            ("CONSUMER_CONCURRENCY", "two"),
            ("CONSUMER_CONCURRENCY", "-1"),
            ("CONSUMER_BATCH_SIZE", "0"),
            ("CONSUMER_POLL_INTERVAL_MS", "0"),
            ("CONSUMER_POLL_INTERVAL_MS", "1.5"),
            ("CONSUMER_POSITION_UPDATE_INTERVAL", "0"),
            ("CONSUMER_PARK_AFTER_FAILURES", "0"),
            ("CONSUMER_PARK_AFTER_FAILURES", "never"),
            ("CONSUMER_PARK_AFTER_RETRIES", "maybe"),
            ("CONSUMER_HANDLER_RETRY_MS", "100,,1000"),
            ("CONSUMER_HANDLER_RETRY_MS", "100;1000"),
            ("CONSUMER_STORE_RETRY_MS", "-5"),
            ("CONSUMER_STORE_RETRY_MS", "90000000"),
            ("CONSUMER_WAKE_ON_NOTIFY", "sometimes"),
        ];
        for (name, value) in cases {
            let err = from(&[(name, value)]).expect_err(value);
            assert!(
                matches!(err, Error::InvalidConfig { .. }) && err.is_setup(),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(name), "{name}: {text}");
            assert!(text.contains(&format!("{value:?}")), "{value}: {text}");
        }
    }

    #[test]
    fn a_value_that_does_not_parse_keeps_the_parsers_error_as_its_source() {
        let err = from(&[("CONSUMER_CONCURRENCY", "two")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid settings: CONSUMER_CONCURRENCY="two" is not a whole number of at least 1"#
        );
        let source = err.source().expect("the parser's error");
        assert!(source.is::<std::num::ParseIntError>(), "{source:?}");

        let err = from(&[("CONSUMER_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.source().is_none(), "it parsed: only the range is wrong");
    }

    #[test]
    fn a_group_needs_both_variables_and_a_member_below_the_size() {
        let err = from(&[("CONSUMER_GROUP_MEMBER", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("without CONSUMER_GROUP_SIZE"),
            "{err}"
        );
        let err = from(&[("CONSUMER_GROUP_SIZE", "2")]).unwrap_err();
        assert!(
            err.to_string().contains("without CONSUMER_GROUP_MEMBER"),
            "{err}"
        );
        let err =
            from(&[("CONSUMER_GROUP_MEMBER", "2"), ("CONSUMER_GROUP_SIZE", "2")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("is not below CONSUMER_GROUP_SIZE=2"),
            "{err}"
        );
        let err =
            from(&[("CONSUMER_GROUP_MEMBER", "0"), ("CONSUMER_GROUP_SIZE", "0")]).unwrap_err();
        assert!(
            err.to_string().contains(r#"CONSUMER_GROUP_SIZE="0""#),
            "{err}"
        );
        let config = from(&[("CONSUMER_GROUP_MEMBER", "0"), ("CONSUMER_GROUP_SIZE", "1")]).unwrap();
        assert_eq!(config.group, Some(ConsumerGroup { member: 0, size: 1 }));
    }

    #[test]
    fn combinations_are_left_to_validate_so_that_the_code_can_complete_them() {
        let config = from(&[("CONSUMER_PARK_AFTER_FAILURES", "3")]).unwrap();
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("needs an identifier"), "{err}");
        ConsumerConfig {
            identifier: Some("worker1".into()),
            ..config
        }
        .validate()
        .unwrap();
    }
}
