//! Opening connections with [`TlsSettings`]: rustls (with the `ring`
//! provider) under tokio-postgres, and libpq's `sslmode` on top of the
//! three modes tokio-postgres has.
//!
//! - [`connect`] tries a connection the way the mode says: `allow` without
//!   TLS and then with it, `prefer` with TLS (when the server offers it)
//!   and then without; the others once. A connection whose hosts are all
//!   Unix sockets never uses TLS.
//! - [`MakeTls`] is what tokio-postgres is handed for each attempt. The
//!   rustls configuration is built at each handshake, so the certificate
//!   files are read for every new connection, as libpq reads them.
//! - The server's certificate is checked as the mode says: not at all
//!   (`require` without roots), its chain only (`verify-ca`, or a root
//!   file with a lower mode), or its chain and host name (`verify-full`).

use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{Host, SslMode as DriverMode};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Connection, Socket};

use super::tls::{RootCerts, SslMode, TlsSettings};
use crate::Error;

/// A connection as [`connect`] opens it.
pub(crate) type Connected = (Client, Connection<Socket, TlsStream<Socket>>);

/// Opens a connection to the first of `connection`'s hosts that will have
/// it (see [`hosts`](super::hosts)), to each as libpq does with the same
/// `sslmode`, and with the kind of session `target_session_attrs` asks for.
pub(crate) async fn connect(
    connection: &Config,
    tls: &TlsSettings,
) -> Result<Connected, tokio_postgres::Error> {
    let wanted = connection.get_target_session_attrs();
    super::hosts::connect_any(connection, |config, _host| async move {
        let (client, mut connection) = connect_one(&config, tls).await?;
        super::hosts::check_session(&client, &mut connection, wanted).await?;
        Ok((client, connection))
    })
    .await
}

/// Opens a connection to the one host `connection` names with `tls`, as
/// libpq does with the same `sslmode` (see the module documentation).
///
/// When `allow` or `prefer` try twice and both attempts fail, the error
/// is the one that says more: the TLS attempt's.
pub(crate) async fn connect_one(
    connection: &Config,
    tls: &TlsSettings,
) -> Result<Connected, tokio_postgres::Error> {
    let make = MakeTls::new(tls.clone());
    let attempt = |mode: DriverMode| {
        let mut config = connection.clone();
        config.ssl_mode(mode);
        let make = make.clone();
        async move { config.connect(make).await }
    };
    if only_unix_sockets(connection) {
        return attempt(DriverMode::Disable).await;
    }
    match tls.mode {
        SslMode::Disable => attempt(DriverMode::Disable).await,
        SslMode::Allow => match attempt(DriverMode::Disable).await {
            // The server refused the session without TLS.
            Err(err) if err.as_db_error().is_some() => attempt(DriverMode::Require).await,
            plain => plain,
        },
        SslMode::Prefer => match attempt(DriverMode::Prefer).await {
            Err(err) if err.as_db_error().is_some() || is_handshake_failure(&err) => {
                attempt(DriverMode::Disable).await.map_err(|_| err)
            }
            tls => tls,
        },
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            attempt(DriverMode::Require).await
        }
    }
}

/// True when every host `config` names is a Unix socket directory, where
/// the server offers no TLS.
pub(crate) fn only_unix_sockets(config: &Config) -> bool {
    #[cfg(unix)]
    {
        !config.get_hosts().is_empty()
            && config.get_hostaddrs().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| matches!(host, Host::Unix(_)))
    }
    #[cfg(not(unix))]
    {
        let _ = config;
        false
    }
}

/// True when `err` is a failed TLS handshake (as opposed to the server
/// refusing the session, or the network).
fn is_handshake_failure(err: &tokio_postgres::Error) -> bool {
    ebb_retry::find_in_chain::<HandshakeError>(err).is_some()
}

/// Builds the rustls configuration `settings` call for, reading their
/// files: what [`PgStore::new`](super::PgStore::new) does once to refuse
/// unusable settings early, and every TLS connection does again.
pub(crate) fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, Error> {
    settings.validate()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::InvalidTlsSetting {
            setting: "sslmode",
            problem: "rustls offers no protocol version".into(),
            source: Some(err.into()),
        })?;
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match &settings.root_certs {
        Some(roots) if settings.checks_chain() => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots_store(roots)?, provider)
                .build()
                .map_err(|err| Error::InvalidTlsSetting {
                    setting: "sslrootcert",
                    problem: "its certificates cannot check a server's".into(),
                    source: Some(err.into()),
                })?;
            if settings.mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
        _ => Arc::new(Unchecked(algorithms)),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|err| file_error("sslcert", cert, err))?;
            if chain.is_empty() {
                return Err(Error::invalid_tls(
                    "sslcert",
                    format!("{} holds no PEM certificate", cert.display()),
                ));
            }
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|err| file_error("sslkey", key, err))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|err| Error::InvalidTlsSetting {
                    setting: "sslkey",
                    problem: format!("{} does not go with {}", key.display(), cert.display()),
                    source: Some(err.into()),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    // What libpq 17 sends; servers before 17 ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Arc::new(config))
}

/// The CA certificates `roots` names.
fn roots_store(roots: &RootCerts) -> Result<Arc<RootCertStore>, Error> {
    match roots {
        RootCerts::File(path) => {
            let mut store = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|err| file_error("sslrootcert", path, err))?;
            let (added, _unusable) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::invalid_tls(
                    "sslrootcert",
                    format!("{} holds no usable PEM certificate", path.display()),
                ));
            }
            Ok(Arc::new(store))
        }
        RootCerts::System => {
            system_roots().map_err(|problem| Error::invalid_tls("sslrootcert", problem))
        }
    }
}

/// The platform's trusted roots, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "`system`: no platform root certificates found ({})",
                    errors.join("; ")
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

fn file_error(
    setting: &'static str,
    path: &std::path::Path,
    err: rustls::pki_types::pem::Error,
) -> Error {
    Error::InvalidTlsSetting {
        setting,
        problem: format!("cannot read {}", path.display()),
        source: Some(err.into()),
    }
}

/// `require` (and `prefer`, `allow`) without roots: the connection is
/// encrypted, the certificate taken as it comes. The handshake's
/// signatures are still checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the host name is not. webpki checks
/// the chain before the name, so a name error means the chain is good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What tokio-postgres is handed to make TLS connections with (see the
/// module documentation).
#[derive(Debug, Clone)]
pub(crate) struct MakeTls {
    /// The settings, read again (files included) for each handshake.
    settings: Arc<TlsSettings>,
}

impl MakeTls {
    pub(crate) fn new(settings: TlsSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    /// The handshake with `host` (the name its certificate must have).
    pub(crate) fn connector(&self, host: &str) -> TlsConnector {
        TlsConnector {
            settings: Arc::clone(&self.settings),
            host: host.to_owned(),
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = TlsStream<S>;
    type TlsConnect = TlsConnector;
    type Error = Error;

    /// Called for attempts without TLS too, so nothing is read here.
    fn make_tls_connect(&mut self, host: &str) -> Result<TlsConnector, Error> {
        Ok(self.connector(host))
    }
}

/// One TLS handshake with one host.
#[derive(Debug)]
pub(crate) struct TlsConnector {
    settings: Arc<TlsSettings>,
    /// The host name (`host`, not `hostaddr`) the certificate must name
    /// under `verify-full`.
    host: String,
}

impl<S> TlsConnect<S> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = TlsStream<S>;
    type Error = HandshakeError;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        let failed = |cause| HandshakeError {
            host: self.host.clone(),
            cause,
        };
        let config = match client_config(&self.settings) {
            Ok(config) => config,
            Err(err) => return Handshake::Failed(Some(failed(Cause::Settings(err)))),
        };
        let name = match ServerName::try_from(self.host.clone()) {
            Ok(name) => name,
            Err(err) if self.settings.mode == SslMode::VerifyFull => {
                let err = io::Error::new(io::ErrorKind::InvalidInput, err);
                return Handshake::Failed(Some(failed(Cause::Io(err))));
            }
            // Only `verify-full` checks the name: any other host is
            // connected to without one (and without SNI).
            Err(_) => ServerName::IpAddress(Ipv4Addr::UNSPECIFIED.into()),
        };
        Handshake::Running {
            handshake: Box::new(tokio_rustls::TlsConnector::from(config).connect(name, stream)),
            host: self.host,
        }
    }
}

/// A TLS handshake under way (or one that could not start).
pub(crate) enum Handshake<S> {
    Running {
        /// Boxed: the handshake's state is a kilobyte.
        handshake: Box<tokio_rustls::Connect<S>>,
        host: String,
    },
    Failed(Option<HandshakeError>),
}

impl<S> Future for Handshake<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Result<TlsStream<S>, HandshakeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Running { handshake, host } => {
                Pin::new(&mut **handshake).poll(cx).map(|done| match done {
                    Ok(stream) => Ok(TlsStream(stream)),
                    Err(err) => Err(HandshakeError {
                        host: host.clone(),
                        cause: Cause::from_io(err),
                    }),
                })
            }
            Self::Failed(err) => {
                Poll::Ready(Err(err.take().expect("a failed handshake is polled once")))
            }
        }
    }
}

/// A TLS handshake that failed, naming the host: the error tokio-postgres
/// reports as "error performing TLS handshake", with this as its source.
#[derive(Debug)]
pub struct HandshakeError {
    host: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    /// The settings could not be used (a file gone since the store was
    /// made, say).
    Settings(Error),
    /// rustls refused the server, or the server refused us.
    Tls(rustls::Error),
    /// The network.
    Io(io::Error),
}

impl Cause {
    /// tokio-rustls reports rustls's errors as I/O errors of kind
    /// `InvalidData`; they are taken out again so that they are not
    /// mistaken for a network failure (see
    /// [`Error::is_transient`](crate::Error::is_transient)).
    fn from_io(err: io::Error) -> Self {
        type Inner = dyn std::error::Error + Send + Sync;
        if !err.get_ref().is_some_and(<Inner>::is::<rustls::Error>) {
            return Self::Io(err);
        }
        let kind = err.kind();
        match err.into_inner().map(<Inner>::downcast::<rustls::Error>) {
            Some(Ok(tls)) => Self::Tls(*tls),
            Some(Err(other)) => Self::Io(io::Error::new(kind, other)),
            None => Self::Io(io::Error::from(kind)),
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = &self.host;
        match &self.cause {
            Cause::Tls(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                write!(
                    f,
                    "server {host}: its certificate is not signed by a CA in sslrootcert"
                )
            }
            Cause::Tls(rustls::Error::AlertReceived(_)) => {
                write!(
                    f,
                    "server {host} ended the handshake (refused our certificate, or none)"
                )
            }
            _ => write!(f, "server {host}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match &self.cause {
            Cause::Settings(err) => err,
            Cause::Tls(err) => err,
            Cause::Io(err) => err,
        })
    }
}

/// The stream of a connection over TLS, as tokio-postgres drives it.
#[derive(Debug)]
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// `tls-server-end-point` (RFC 5929), for SCRAM-SHA-256-PLUS: a digest
    /// of the server's certificate with the hash of its signature (SHA-256
    /// for MD5 and SHA-1).
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        let Some(cert) = session.peer_certificates().and_then(<[_]>::first) else {
            return ChannelBinding::none();
        };
        match channel_binding_digest(cert) {
            Some(algorithm) => ChannelBinding::tls_server_end_point(
                ring::digest::digest(algorithm, cert.as_ref())
                    .as_ref()
                    .to_vec(),
            ),
            None => ChannelBinding::none(),
        }
    }
}

/// The digest `tls-server-end-point` uses for `cert`: the hash of its
/// signature algorithm, SHA-256 for weaker ones; `None` for algorithms
/// without a hash of their own (Ed25519) or a certificate that does not
/// parse.
fn channel_binding_digest(cert: &CertificateDer<'_>) -> Option<&'static ring::digest::Algorithm> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
    // SEQUENCE { algorithm OID, .. }, .. }
    let (certificate, _) = der_element(cert.as_ref(), 0x30)?;
    let (_, rest) = der_element(certificate, 0x30)?;
    let (algorithm, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    match oid {
        // md5, sha1 (RSA 4, 5; ECDSA 1) and sha256 (RSA 11, ECDSA 2)
        [prefix @ .., 4 | 5 | 11] if prefix == RSA => Some(&ring::digest::SHA256),
        [prefix @ .., 1 | 2] if prefix == ECDSA => Some(&ring::digest::SHA256),
        [prefix @ .., 12] if prefix == RSA => Some(&ring::digest::SHA384),
        [prefix @ .., 3] if prefix == ECDSA => Some(&ring::digest::SHA384),
        [prefix @ .., 13] if prefix == RSA => Some(&ring::digest::SHA512),
        [prefix @ .., 4] if prefix == ECDSA => Some(&ring::digest::SHA512),
        _ => None,
    }
}

/// The contents of the DER element with `tag` at the start of `input`,
/// and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0, |len, &byte| (len << 8) | usize::from(byte))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

impl<S> AsyncRead for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_only_settings_never_use_tls() {
        let config: Config = "host=/run/pg,/run/other".parse().unwrap();
        assert!(only_unix_sockets(&config));
        let mixed: Config = "host=/run/pg,db.example".parse().unwrap();
        assert!(!only_unix_sockets(&mixed));
        let tcp: Config = "host=db.example".parse().unwrap();
        assert!(!only_unix_sockets(&tcp));
    }

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(
            der_element(&[0x06, 0x01, 0x2a, 0xff], 0x06),
            Some((&[0x2a][..], &[0xff][..]))
        );
        let long: Vec<u8> = [0x30, 0x81, 0x80].into_iter().chain([7; 0x80]).collect();
        assert_eq!(
            der_element(&long, 0x30).map(|(inner, _)| inner.len()),
            Some(0x80)
        );
        assert_eq!(der_element(&[0x30, 0x05, 0x00], 0x30), None);
        assert_eq!(der_element(&[0x31, 0x00], 0x30), None);
    }

    #[test]
    fn unreadable_files_are_named() {
        let settings = TlsSettings {
            mode: SslMode::VerifyFull,
            root_certs: Some(RootCerts::File("/nonexistent/ca.pem".into())),
            ..TlsSettings::default()
        };
        let err = client_config(&settings).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidTlsSetting {
                    setting: "sslrootcert",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
