//! libpq `key=value` connection strings, for tools such as `psql` and
//! `pgbench`, for `DATABASE_URL`, and for naming a server in messages.
//!
//! ```
//! use ebb_localpg::conninfo;
//!
//! let config: ebb_localpg::tokio_postgres::Config =
//!     "postgres://alice:secret@db.example:6543/app".parse()?;
//! assert_eq!(
//!     conninfo::connection_string(&config),
//!     "host=db.example port=6543 user=alice password=secret dbname=app"
//! );
//! assert_eq!(
//!     conninfo::describe(&config),
//!     "host=db.example port=6543 user=alice dbname=app"
//! );
//! # Ok::<(), ebb_localpg::tokio_postgres::Error>(())
//! ```

use tokio_postgres::Config;
use tokio_postgres::config::{Host, LoadBalanceHosts, SslMode, TargetSessionAttrs};

/// `config` as a libpq `key=value` connection string, password included,
/// for other programs (`psql "$conninfo"`, `DATABASE_URL`).
///
/// Rendered, in this order and each only when set: `host`, `hostaddr`,
/// `port`, `user`, `password`, `dbname`, `options`, `application_name`,
/// `connect_timeout` (whole seconds, at least 1), `sslmode` (only
/// `disable` or `require`: `prefer` is libpq's default),
/// `target_session_attrs` and `load_balance_hosts` (each unless the
/// default). Other settings (keepalives, ...) are left out. Values are
/// quoted the way libpq expects, so the string parses back to the same
/// settings.
pub fn connection_string(config: &Config) -> String {
    render(config, Password::Include)
}

/// `config` for messages to people: the same as [`connection_string`]
/// without the password, so it can be logged or printed safely.
pub fn describe(config: &Config) -> String {
    render(config, Password::LeaveOut)
}

/// Whether a rendering may show the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Password {
    Include,
    LeaveOut,
}

fn render(config: &Config, password: Password) -> String {
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
    if let Some(secret) = config.get_password() {
        if password == Password::Include {
            push(&mut out, "password", &String::from_utf8_lossy(secret));
        }
    }
    if let Some(dbname) = config.get_dbname() {
        push(&mut out, "dbname", dbname);
    }
    if let Some(options) = config.get_options() {
        push(&mut out, "options", options);
    }
    if let Some(name) = config.get_application_name() {
        push(&mut out, "application_name", name);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        push(
            &mut out,
            "connect_timeout",
            &timeout.as_secs().max(1).to_string(),
        );
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
    let session = match config.get_target_session_attrs() {
        TargetSessionAttrs::ReadWrite => Some("read-write"),
        TargetSessionAttrs::ReadOnly => Some("read-only"),
        _ => None,
    };
    if let Some(session) = session {
        push(&mut out, "target_session_attrs", session);
    }
    if config.get_load_balance_hosts() == LoadBalanceHosts::Random {
        push(&mut out, "load_balance_hosts", "random");
    }
    out
}

/// Appends ` key=value`, quoting the value the way libpq expects when it is
/// empty or holds spaces, quotes or backslashes.
fn push(out: &mut String, key: &str, value: &str) {
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

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
    fn a_url_renders_as_key_value_pairs() {
        let config: Config = "postgres://alice:pw@db.example:6543/app?sslmode=disable"
            .parse()
            .unwrap();
        assert_eq!(
            connection_string(&config),
            "host=db.example port=6543 user=alice password=pw dbname=app sslmode=disable"
        );
    }

    #[test]
    fn the_description_leaves_out_the_password_only() {
        let config: Config = "postgres://alice:pw@db.example:6543/app?sslmode=disable"
            .parse()
            .unwrap();
        assert_eq!(
            describe(&config),
            "host=db.example port=6543 user=alice dbname=app sslmode=disable"
        );
        let mut config = config;
        config.password("pw with 'quotes'");
        assert!(!describe(&config).contains("pw"), "{}", describe(&config));
        assert!(!describe(&config).contains("password"));
    }

    /// Every rendered setting parses back to what it was, also values that
    /// need quoting.
    #[test]
    fn round_trips_through_a_parse() {
        let mut config = Config::new();
        config
            .host_path("/tmp/dir with space")
            .host("db.example")
            .hostaddr(Ipv4Addr::LOCALHOST.into())
            .hostaddr(Ipv6Addr::LOCALHOST.into())
            .port(5433)
            .port(6543)
            .user("o'brien")
            .password(r"back\slash 'n' quote")
            .dbname("")
            .options("-c search_path=app")
            .application_name("ebb test")
            .connect_timeout(Duration::from_secs(7))
            .ssl_mode(SslMode::Require)
            .target_session_attrs(TargetSessionAttrs::ReadWrite)
            .load_balance_hosts(LoadBalanceHosts::Random);
        let reparsed: Config = connection_string(&config).parse().unwrap();
        assert_eq!(reparsed.get_hosts(), config.get_hosts());
        assert_eq!(reparsed.get_hostaddrs(), config.get_hostaddrs());
        assert_eq!(reparsed.get_ports(), [5433, 6543]);
        assert_eq!(reparsed.get_user(), Some("o'brien"));
        assert_eq!(reparsed.get_password(), Some(&br"back\slash 'n' quote"[..]));
        assert_eq!(reparsed.get_dbname(), Some(""));
        assert_eq!(reparsed.get_options(), Some("-c search_path=app"));
        assert_eq!(reparsed.get_application_name(), Some("ebb test"));
        assert_eq!(
            reparsed.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        assert_eq!(reparsed.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            reparsed.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(reparsed.get_load_balance_hosts(), LoadBalanceHosts::Random);
        assert_eq!(connection_string(&reparsed), connection_string(&config));

        let described: Config = describe(&config).parse().unwrap();
        assert_eq!(described.get_password(), None);
        assert_eq!(described.get_dbname(), Some(""));
    }

    #[test]
    fn unset_settings_are_left_out() {
        assert_eq!(connection_string(&Config::new()), "");
        let mut config = Config::new();
        config.dbname("app");
        assert_eq!(connection_string(&config), "dbname=app");
    }
}
