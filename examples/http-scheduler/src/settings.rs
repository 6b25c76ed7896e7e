//! The scheduler's settings, as the binary reads them from its
//! environment; every field has its default.

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::AddressPolicy;
use crate::spec::RetrySpec;

/// The scheduler's settings; see the crate documentation for the
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `EBB_SCHEDULER_ADDR`: where the API listens. Default
    /// `127.0.0.1:8080`; port 0 picks a free port (the log says which).
    pub addr: SocketAddr,
    /// `EBB_SCHEDULER_ALLOW_LOOPBACK=1`, `EBB_SCHEDULER_ALLOW_PRIVATE=1`:
    /// which non-public addresses jobs may call. Default: none.
    pub addresses: AddressPolicy,
    /// `EBB_SCHEDULER_MAX_CONCURRENCY`: runs in flight at once in this
    /// process, across jobs. Default 16.
    pub max_concurrency: usize,
    /// `EBB_SCHEDULER_CALL_TIMEOUT_MS`: one call's limit, redirects and
    /// reading the body included. Default 10,000.
    pub call_timeout: Duration,
    /// `EBB_SCHEDULER_BODY_LIMIT`: response bytes captured per call.
    /// Default 4,096.
    pub body_limit: usize,
    /// `EBB_SCHEDULER_MAX_RETRY_AFTER_MS`: the longest `Retry-After`
    /// honoured; a response asking for a longer wait is not retried.
    /// Default 60,000.
    pub max_retry_after: Duration,
    /// `EBB_SCHEDULER_MAX_REDIRECTS`: redirects followed per call, each
    /// hop's address checked. Default 5.
    pub max_redirects: usize,
    /// `EBB_SCHEDULER_CALLBACK_RETRY_MS`: the waits before each retry of a
    /// callback (comma-separated milliseconds). Default `100,1000,5000`.
    pub callback_retry_ms: Vec<i64>,
    /// `EBB_SCHEDULER_LEASE_MARGIN_MS`: added to the longest a run can
    /// take to make its lease. Default 2,000.
    pub lease_margin: Duration,
    /// `EBB_SCHEDULER_KEEP_RUNS`: runs kept per job. Default 100.
    pub keep_runs: u32,
    /// `EBB_SCHEDULER_KEEP_FOR_MS`: how long a finished run is kept.
    /// Default 7 days.
    pub keep_for: Duration,
    /// `EBB_SCHEDULER_SNAPSHOT_INTERVAL`: a job's snapshot is written
    /// every this many events. Default 100.
    pub snapshot_interval: i64,
    /// `EBB_SCHEDULER_INSTANCE`: this process's name in `RunStarted`'s
    /// `by`. Default `pid-PID`.
    pub instance: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            addresses: AddressPolicy::default(),
            max_concurrency: 16,
            call_timeout: Duration::from_secs(10),
            body_limit: 4096,
            max_retry_after: Duration::from_secs(60),
            max_redirects: 5,
            callback_retry_ms: vec![100, 1_000, 5_000],
            lease_margin: Duration::from_secs(2),
            keep_runs: 100,
            keep_for: Duration::from_secs(7 * 24 * 3600),
            snapshot_interval: 100,
            instance: format!("pid-{}", std::process::id()),
        }
    }
}

impl Settings {
    /// Reads the settings from the process's environment; a value that
    /// does not parse is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable's value, if set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        fn parsed<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
        ) -> Result<Option<T>, String>
        where
            T::Err: std::fmt::Display,
        {
            value
                .map(|value| {
                    value
                        .trim()
                        .parse()
                        .map_err(|err| format!("{name}={value:?} is not valid: {err}"))
                })
                .transpose()
        }
        let flag = |name: &str| -> Result<bool, String> {
            match var(name).as_deref().map(str::trim) {
                None | Some("0" | "false" | "no") => Ok(false),
                Some("1" | "true" | "yes") => Ok(true),
                Some(other) => Err(format!("{name}={other:?} is not 0 or 1")),
            }
        };
        let millis = |name: &str, default: Duration| -> Result<Duration, String> {
            Ok(parsed::<u64>(name, var(name))?.map_or(default, Duration::from_millis))
        };
        let defaults = Self::default();
        let settings = Self {
            addr: parsed("EBB_SCHEDULER_ADDR", var("EBB_SCHEDULER_ADDR"))?.unwrap_or(defaults.addr),
            addresses: AddressPolicy {
                allow_loopback: flag("EBB_SCHEDULER_ALLOW_LOOPBACK")?,
                allow_private: flag("EBB_SCHEDULER_ALLOW_PRIVATE")?,
            },
            max_concurrency: parsed(
                "EBB_SCHEDULER_MAX_CONCURRENCY",
                var("EBB_SCHEDULER_MAX_CONCURRENCY"),
            )?
            .unwrap_or(defaults.max_concurrency),
            call_timeout: millis("EBB_SCHEDULER_CALL_TIMEOUT_MS", defaults.call_timeout)?,
            body_limit: parsed("EBB_SCHEDULER_BODY_LIMIT", var("EBB_SCHEDULER_BODY_LIMIT"))?
                .unwrap_or(defaults.body_limit),
            max_retry_after: millis("EBB_SCHEDULER_MAX_RETRY_AFTER_MS", defaults.max_retry_after)?,
            max_redirects: parsed(
                "EBB_SCHEDULER_MAX_REDIRECTS",
                var("EBB_SCHEDULER_MAX_REDIRECTS"),
            )?
            .unwrap_or(defaults.max_redirects),
            callback_retry_ms: match var("EBB_SCHEDULER_CALLBACK_RETRY_MS") {
                None => defaults.callback_retry_ms,
                Some(list) => list
                    .split(',')
                    .map(|item| {
                        item.trim().parse::<i64>().ok().filter(|ms| *ms >= 0).ok_or_else(|| {
                            format!(
                                "EBB_SCHEDULER_CALLBACK_RETRY_MS={list:?} is not a list of milliseconds"
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            lease_margin: millis("EBB_SCHEDULER_LEASE_MARGIN_MS", defaults.lease_margin)?,
            keep_runs: parsed("EBB_SCHEDULER_KEEP_RUNS", var("EBB_SCHEDULER_KEEP_RUNS"))?
                .unwrap_or(defaults.keep_runs),
            keep_for: millis("EBB_SCHEDULER_KEEP_FOR_MS", defaults.keep_for)?,
            snapshot_interval: parsed(
                "EBB_SCHEDULER_SNAPSHOT_INTERVAL",
                var("EBB_SCHEDULER_SNAPSHOT_INTERVAL"),
            )?
            .unwrap_or(defaults.snapshot_interval),
            instance: var("EBB_SCHEDULER_INSTANCE").unwrap_or(defaults.instance),
        };
        if settings.max_concurrency == 0 {
            return Err("EBB_SCHEDULER_MAX_CONCURRENCY must be at least 1".into());
        }
        if settings.call_timeout.is_zero() {
            return Err("EBB_SCHEDULER_CALL_TIMEOUT_MS must be at least 1".into());
        }
        if settings.keep_runs == 0 {
            return Err("EBB_SCHEDULER_KEEP_RUNS must be at least 1".into());
        }
        Ok(settings)
    }

    /// How long a claim of a run of a job with `retry` (and a callback,
    /// if `callback`) holds: the longest the run can take (each attempt's
    /// timeout, each retry's wait or the longest `Retry-After` honoured,
    /// the callback's attempts and waits) plus the margin. Past it, the
    /// run is claimed again by any instance.
    pub fn lease(&self, retry: &RetrySpec, callback: bool) -> Duration {
        let attempts = 1 + retry.intervals_ms.len() as u32;
        let waits: Duration = retry
            .intervals_ms
            .iter()
            .map(|&ms| {
                let interval = Duration::from_millis(ms.max(0) as u64);
                if retry.retry_status.is_empty() {
                    interval
                } else {
                    interval.max(self.max_retry_after)
                }
            })
            .sum();
        let mut lease = self.call_timeout * attempts + waits + self.lease_margin;
        if callback {
            let attempts = 1 + self.callback_retry_ms.len() as u32;
            let waits: Duration = self
                .callback_retry_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms.max(0) as u64))
                .sum();
            lease += self.call_timeout * attempts + waits;
        }
        lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn settings_parse_and_name_the_bad_variable() {
        let settings = Settings::from_lookup(env(&[
            ("EBB_SCHEDULER_ADDR", "127.0.0.1:0"),
            ("EBB_SCHEDULER_ALLOW_LOOPBACK", "1"),
            ("EBB_SCHEDULER_CALL_TIMEOUT_MS", "500"),
            ("EBB_SCHEDULER_CALLBACK_RETRY_MS", "10, 20"),
        ]))
        .unwrap();
        assert_eq!(settings.addr.port(), 0);
        assert!(settings.addresses.allow_loopback);
        assert!(!settings.addresses.allow_private);
        assert_eq!(settings.call_timeout, Duration::from_millis(500));
        assert_eq!(settings.callback_retry_ms, [10, 20]);
        assert_eq!(Settings::from_lookup(env(&[])).unwrap().max_concurrency, 16);
        for (name, bad) in [
            ("EBB_SCHEDULER_ADDR", "nowhere"),
            ("EBB_SCHEDULER_ALLOW_LOOPBACK", "maybe"),
            ("EBB_SCHEDULER_MAX_CONCURRENCY", "0"),
            ("EBB_SCHEDULER_CALLBACK_RETRY_MS", "1,x"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(name, bad)].into_boxed_slice());
            let err = Settings::from_lookup(env(pairs)).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn a_lease_covers_every_attempt_wait_and_the_callback() {
        let settings = Settings {
            call_timeout: Duration::from_millis(1_000),
            max_retry_after: Duration::from_millis(3_000),
            callback_retry_ms: vec![100],
            lease_margin: Duration::from_millis(500),
            ..Settings::default()
        };
        let retry = RetrySpec {
            intervals_ms: vec![100, 5_000],
            ..RetrySpec::default()
        };
        // 3 calls, waits max(100, 3000) + max(5000, 3000), margin.
        assert_eq!(
            settings.lease(&retry, false),
            Duration::from_millis(3_000 + 8_000 + 500)
        );
        // The callback: 2 calls and a 100 ms wait.
        assert_eq!(
            settings.lease(&retry, true),
            Duration::from_millis(11_500 + 2_100)
        );
    }
}
