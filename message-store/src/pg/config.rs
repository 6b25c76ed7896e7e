//! Connection settings from the environment, as libpq reads them.

use std::str::FromStr;

use crate::Error;

/// The connection settings in `DATABASE_URL` (a `postgres://` URL or a
/// `key=value` string), or else those of the libpq variables:
///
/// | variable | default |
/// |---|---|
/// | `PGHOST` | `/var/run/postgresql` if that socket directory exists, else `localhost` |
/// | `PGPORT` | 5432 |
/// | `PGUSER` | `USER` |
/// | `PGPASSWORD` | none |
/// | `PGDATABASE` | the user name |
///
/// ```no_run
/// let config = ebb_message_store::pg::config_from_env()?;
/// # Ok::<(), ebb_message_store::Error>(())
/// ```
pub fn config_from_env() -> Result<tokio_postgres::Config, Error> {
    config_from(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

pub(crate) fn config_from(
    var: impl Fn(&str) -> Option<String>,
) -> Result<tokio_postgres::Config, Error> {
    if let Some(url) = var("DATABASE_URL") {
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|err| {
            Error::InvalidConfig(format!("DATABASE_URL is not a connection string: {err}"))
        })?;
        // libpq's defaults for what the URL leaves out.
        if config.get_user().is_none() {
            config.user(
                var("PGUSER")
                    .or_else(|| var("USER"))
                    .unwrap_or_else(|| "postgres".into()),
            );
        }
        if config.get_dbname().is_none() {
            let user = config.get_user().unwrap_or_default().to_owned();
            config.dbname(var("PGDATABASE").unwrap_or(user));
        }
        return Ok(config);
    }
    let mut config = tokio_postgres::Config::new();
    let host = var("PGHOST").unwrap_or_else(|| {
        if std::path::Path::new("/var/run/postgresql").is_dir() {
            "/var/run/postgresql".into()
        } else {
            "localhost".into()
        }
    });
    for host in host.split(',') {
        config.host(host);
    }
    let port = match var("PGPORT") {
        Some(port) => port
            .parse()
            .map_err(|_| Error::InvalidConfig(format!("PGPORT is not a port number: {port:?}")))?,
        None => 5432,
    };
    config.port(port);
    let user = var("PGUSER")
        .or_else(|| var("USER"))
        .unwrap_or_else(|| "postgres".into());
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    config.dbname(var("PGDATABASE").unwrap_or_else(|| user.clone()));
    config.user(user);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<tokio_postgres::Config, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn database_url_wins() {
        let config = from(&[
            ("DATABASE_URL", "postgres://alice@db.example:6543/store"),
            ("PGUSER", "bob"),
        ])
        .unwrap();
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_dbname(), Some("store"));
        assert_eq!(config.get_ports(), [6543]);
    }

    #[test]
    fn a_url_without_user_or_database_gets_libpq_s_defaults() {
        let config = from(&[
            ("DATABASE_URL", "postgres://db.example/"),
            ("USER", "carol"),
        ])
        .unwrap();
        assert_eq!(config.get_user(), Some("carol"));
        assert_eq!(config.get_dbname(), Some("carol"));
    }

    #[test]
    fn libpq_variables_with_defaults() {
        let config = from(&[("PGHOST", "127.0.0.1"), ("PGUSER", "bob")]).unwrap();
        assert_eq!(config.get_user(), Some("bob"));
        assert_eq!(config.get_dbname(), Some("bob"));
        assert_eq!(config.get_ports(), [5432]);
    }

    #[test]
    fn bad_values_are_reported() {
        let err = from(&[("PGPORT", "fifty")]).unwrap_err();
        assert!(err.to_string().contains("PGPORT"), "{err}");
        let err = from(&[("DATABASE_URL", "postgres://x:notaport/")]).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }
}
