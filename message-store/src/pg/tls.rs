//! The TLS settings of a [`PgStore`](super::PgStore)'s connections, as
//! libpq reads them: [`TlsSettings`] with its [`SslMode`] and
//! [`RootCerts`]. How a connection is opened with them is in `tls_connect`.
//!
//! tokio-postgres knows three of libpq's six `sslmode`s and none of its
//! certificate settings, so ebb takes `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` out of `DATABASE_URL` itself (see
//! [`PgStoreConfig::from_env`](super::PgStoreConfig::from_env)) and keeps
//! them here.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// libpq's `sslmode`: whether a connection uses TLS, and what it checks.
///
/// Over a Unix socket no mode uses TLS (the server offers none there, and
/// libpq does not ask).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Without TLS first; with TLS if the server refuses that (a
    /// `pg_hba.conf` that accepts only `hostssl`).
    Allow,
    /// With TLS if the server offers it, else without; and without if the
    /// TLS attempt fails (its handshake, or the server refuses the
    /// session). libpq's default, and ebb's.
    #[default]
    Prefer,
    /// TLS or nothing. The server's certificate is not checked, unless
    /// [`TlsSettings::root_certs`] names a file: then its chain is, as
    /// with [`VerifyCa`](Self::VerifyCa) (as libpq does when a root
    /// certificate file exists).
    Require,
    /// TLS, and the server's certificate must chain to one of
    /// [`TlsSettings::root_certs`]; its host name is not checked.
    VerifyCa,
    /// TLS, the chain checked as with [`VerifyCa`](Self::VerifyCa), and
    /// the certificate must name the host connected to (the `host`
    /// setting, not `hostaddr`).
    VerifyFull,
}

impl SslMode {
    /// The mode's name in connection strings (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// True for the modes that check the server's certificate chain
    /// whatever else is set.
    fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    /// libpq's names; anything else is [`Error::InvalidTlsSetting`].
    fn from_str(text: &str) -> Result<Self, Error> {
        Ok(match text {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(Error::invalid_tls(
                    "sslmode",
                    format!(
                        "{other:?} is not one of disable, allow, prefer, require, verify-ca, \
                         verify-full"
                    ),
                ));
            }
        })
    }
}

/// Where the certificates of the authorities that may sign the server's
/// certificate come from (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootCerts {
    /// A PEM file of one or more CA certificates, read whenever a
    /// connection is opened (so a replaced file is picked up, as by libpq).
    File(PathBuf),
    /// The platform's trusted roots (`sslrootcert=system`), read once per
    /// process. As with libpq, they may only be used with
    /// [`SslMode::VerifyFull`]: any CA may sign a certificate for some
    /// other host.
    System,
}

impl RootCerts {
    /// `system`, or else the path of a file.
    fn parse(text: &str) -> Self {
        match text {
            "system" => Self::System,
            path => Self::File(path.into()),
        }
    }
}

/// How a store's connections use TLS: libpq's `sslmode`, `sslrootcert`,
/// `sslcert` and `sslkey`.
///
/// Plain data; the default is libpq's (`prefer`, nothing checked, no
/// client certificate). [`validate`](Self::validate) refuses combinations
/// libpq refuses, and [`PgStore::new`](super::PgStore::new) reads the
/// files once to refuse unusable ones before any connection is opened.
///
/// ebb reads no default files: where libpq would look in `~/.postgresql/`
/// for `root.crt`, `postgresql.crt` and `postgresql.key`, name them.
///
/// ```
/// use ebb_message_store::pg::{RootCerts, SslMode, TlsSettings};
///
/// let tls = TlsSettings {
///     mode: SslMode::VerifyFull,
///     root_certs: Some(RootCerts::File("/etc/ebb/db-ca.pem".into())),
///     ..TlsSettings::default()
/// };
/// tls.validate()?;
/// # Ok::<(), ebb_message_store::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Whether to use TLS and what to check. Default:
    /// [`SslMode::Prefer`]; [`SslMode::VerifyFull`] when `root_certs` is
    /// [`RootCerts::System`] and the settings name no mode (libpq's rule,
    /// applied when reading them).
    pub mode: SslMode,
    /// Whose signature on the server's certificate is trusted. Needed by
    /// `verify-ca` and `verify-full`; with `require`, `prefer` or `allow`
    /// a file makes the chain checked too. Default: none.
    pub root_certs: Option<RootCerts>,
    /// A PEM file with the client's certificate (and any intermediates),
    /// for servers whose `pg_hba.conf` says `cert` or `clientcert`. Needs
    /// [`client_key`](Self::client_key). Default: none.
    pub client_cert: Option<PathBuf>,
    /// A PEM file with the client certificate's private key (PKCS#8,
    /// PKCS#1 or SEC1). Default: none.
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// The settings tokio-postgres's own `sslmode` stands for, as
    /// [`PgStoreConfig::new`](super::PgStoreConfig::new) takes them from
    /// the connection settings it is given.
    pub(crate) fn from_driver(mode: tokio_postgres::config::SslMode) -> Self {
        use tokio_postgres::config::SslMode as Driver;
        Self {
            mode: match mode {
                Driver::Disable => SslMode::Disable,
                Driver::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
            ..Self::default()
        }
    }

    /// The settings `params` name (taken out of `DATABASE_URL`), each
    /// falling back to its libpq variable as `var` gives it
    /// (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`).
    pub(crate) fn from_params(
        params: TlsParams,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mode = params.mode.or_else(|| var("PGSSLMODE"));
        let root_certs = params
            .root_cert
            .or_else(|| var("PGSSLROOTCERT"))
            .map(|text| RootCerts::parse(&text));
        let mode = match (mode, &root_certs) {
            (Some(mode), _) => mode.parse()?,
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::default(),
        };
        let settings = Self {
            mode,
            root_certs,
            client_cert: params.cert.or_else(|| var("PGSSLCERT")).map(Into::into),
            client_key: params.key.or_else(|| var("PGSSLKEY")).map(Into::into),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses what libpq refuses: a mode that checks the server's
    /// certificate without roots to check it against, the platform's roots
    /// with a mode below `verify-full`, and a client certificate without
    /// its key (or a key without a certificate). Files are read when a
    /// connection is opened, not here.
    pub fn validate(&self) -> Result<(), Error> {
        if self.mode.verifies() && self.root_certs.is_none() {
            return Err(Error::invalid_tls(
                "sslrootcert",
                format!(
                    "sslmode={} checks the server's certificate: name the CA's certificate \
                     file, or `system` for the platform's roots",
                    self.mode
                ),
            ));
        }
        if self.root_certs == Some(RootCerts::System) && self.mode != SslMode::VerifyFull {
            return Err(Error::invalid_tls(
                "sslmode",
                format!(
                    "sslmode={} may not be used with sslrootcert=system (use verify-full)",
                    self.mode
                ),
            ));
        }
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => Err(Error::invalid_tls(
                "sslkey",
                "sslcert is set: name the file of its private key too".into(),
            )),
            (None, Some(_)) => Err(Error::invalid_tls(
                "sslcert",
                "sslkey is set: name the file of its certificate too".into(),
            )),
            _ => Ok(()),
        }
    }

    /// True when the server's certificate chain is checked.
    pub(crate) fn checks_chain(&self) -> bool {
        self.mode.verifies() || matches!(self.root_certs, Some(RootCerts::File(_)))
    }
}

/// The TLS settings found in a connection string, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub(crate) mode: Option<String>,
    pub(crate) root_cert: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

impl TlsParams {
    /// Takes `value` if `key` is one of the settings kept here; false
    /// leaves the pair to tokio-postgres.
    pub(crate) fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.root_cert,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: Option<&str>, root: Option<&str>) -> TlsParams {
        TlsParams {
            mode: mode.map(Into::into),
            root_cert: root.map(Into::into),
            ..TlsParams::default()
        }
    }

    #[test]
    fn the_six_modes_and_nothing_else() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
        }
        let err = "verify".parse::<SslMode>().unwrap_err();
        assert!(matches!(err, Error::InvalidTlsSetting { .. }), "{err:?}");
        assert!(err.to_string().contains("sslmode"), "{err}");
        assert!(err.to_string().contains("\"verify\""), "{err}");
    }

    #[test]
    fn the_string_wins_over_the_variables() {
        let settings = TlsSettings::from_params(params(Some("require"), None), |name| {
            (name == "PGSSLMODE").then(|| "disable".to_owned())
        })
        .unwrap();
        assert_eq!(settings.mode, SslMode::Require);
        let settings = TlsSettings::from_params(TlsParams::default(), |name| match name {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/ca.pem".to_owned()),
            "PGSSLCERT" => Some("/me.pem".to_owned()),
            "PGSSLKEY" => Some("/me.key".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            settings,
            TlsSettings {
                mode: SslMode::VerifyCa,
                root_certs: Some(RootCerts::File("/ca.pem".into())),
                client_cert: Some("/me.pem".into()),
                client_key: Some("/me.key".into()),
            }
        );
        let default = TlsSettings::from_params(TlsParams::default(), |_| None).unwrap();
        assert_eq!(default, TlsSettings::default());
        assert_eq!(default.mode, SslMode::Prefer);
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let settings = TlsSettings::from_params(params(None, Some("system")), |_| None).unwrap();
        assert_eq!(settings.mode, SslMode::VerifyFull);
        assert_eq!(settings.root_certs, Some(RootCerts::System));
        let err = TlsSettings::from_params(params(Some("require"), Some("system")), |_| None)
            .unwrap_err();
        assert!(err.to_string().contains("sslrootcert=system"), "{err}");
    }

    #[test]
    fn checking_modes_need_roots_and_certificates_need_keys() {
        for mode in ["verify-ca", "verify-full"] {
            let err = TlsSettings::from_params(params(Some(mode), None), |_| None).unwrap_err();
            assert!(err.to_string().contains("sslrootcert"), "{err}");
        }
        let only_cert = TlsParams {
            cert: Some("/me.pem".into()),
            ..TlsParams::default()
        };
        let err = TlsSettings::from_params(only_cert, |_| None).unwrap_err();
        assert!(err.to_string().contains("sslkey"), "{err}");
    }

    #[test]
    fn a_root_file_makes_require_check_the_chain() {
        let mut settings = TlsSettings {
            mode: SslMode::Require,
            ..TlsSettings::default()
        };
        assert!(!settings.checks_chain());
        settings.root_certs = Some(RootCerts::File("/ca.pem".into()));
        assert!(settings.checks_chain());
    }
}
