//! libpq `key=value` connection strings, for tools such as `psql` and
//! `pgbench` and for `DATABASE_URL`.

use std::fmt::Write as _;

use tokio_postgres::config::{Host, SslMode};

/// Appends ` key=value`, quoting the value the way libpq expects when it is
/// empty or holds spaces, quotes or backslashes.
pub(crate) fn push(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        out.push_str(value);
    } else {
        out.push('\'');
        for c in value.chars() {
            if c == '\'' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
    }
}

/// Renders a parsed configuration back into a connection string, with
/// `dbname` replaced, so a server given by `DATABASE_URL` can be named to
/// other programs for any of its databases.
pub(crate) fn from_config(config: &tokio_postgres::Config, dbname: &str) -> String {
    let mut out = String::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        push(&mut out, "host", &hosts.join(","));
    }
    let hostaddrs: Vec<String> = config
        .get_hostaddrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    if !hostaddrs.is_empty() {
        push(&mut out, "hostaddr", &hostaddrs.join(","));
    }
    let ports: Vec<String> = config.get_ports().iter().map(ToString::to_string).collect();
    if !ports.is_empty() {
        push(&mut out, "port", &ports.join(","));
    }
    if let Some(user) = config.get_user() {
        push(&mut out, "user", user);
    }
    if let Some(password) = config.get_password() {
        push(&mut out, "password", &String::from_utf8_lossy(password));
    }
    push(&mut out, "dbname", dbname);
    if let Some(options) = config.get_options() {
        push(&mut out, "options", options);
    }
    if let Some(name) = config.get_application_name() {
        push(&mut out, "application_name", name);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        let mut secs = String::new();
        let _ = write!(secs, "{}", timeout.as_secs().max(1));
        push(&mut out, "connect_timeout", &secs);
    }
    let sslmode = match config.get_ssl_mode() {
        SslMode::Disable => Some("disable"),
        SslMode::Require => Some("require"),
        // Prefer is libpq's default too; leave it out.
        _ => None,
    };
    if let Some(mode) = sslmode {
        push(&mut out, "sslmode", mode);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        let mut out = String::new();
        push(&mut out, "host", "/tmp/x");
        push(&mut out, "password", "it's a \\secret");
        push(&mut out, "options", "");
        assert_eq!(out, r"host=/tmp/x password='it\'s a \\secret' options=''");
    }

    #[test]
    fn url_round_trips_with_another_dbname() {
        let config: tokio_postgres::Config =
            "postgres://alice:pw@db.example:6543/app?sslmode=disable"
                .parse()
                .unwrap();
        assert_eq!(
            from_config(&config, "other"),
            "host=db.example port=6543 user=alice password=pw dbname=other sslmode=disable"
        );
        let reparsed: tokio_postgres::Config = from_config(&config, "other").parse().unwrap();
        assert_eq!(reparsed.get_dbname(), Some("other"));
        assert_eq!(reparsed.get_ports(), &[6543]);
    }
}
