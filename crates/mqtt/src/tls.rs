//! `[mqtt.tls]`: MQTT over TLS for every dolbom client. The broker's certificate is verified
//! against `ca_file` (or the system's roots) and its name against `mqtt.host` (or `server_name`,
//! for a broker reached by address); a client certificate is optional. The client key is a
//! secret and is read by `dolbom_secret`'s rules: a key every user may read is refused.
//!
//! rustls with the `ring` provider: pure Rust plus a little C and assembly that cross-compiles
//! with the ordinary aarch64 gcc, where aws-lc-rs would need cmake on every build host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that signed the broker's certificate; absent: the system's roots.
    /// Relative paths are taken from the config file's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name the broker's certificate must carry, when `mqtt.host` is an address or an alias
    /// the certificate does not name. Default: `mqtt.host`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// A client certificate (PEM) for brokers that require one (`require_certificate true`).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM): a secret file (see `dolbom_secret`), or `$CREDENTIALS_DIRECTORY/NAME`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error(transparent)]
    Secret(#[from] dolbom_secret::SecretError),
}

impl TlsError {
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Invalid { key, .. } => key,
            TlsError::Secret(e) => e.key(),
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError::Invalid { key, message: message.into() }
}

impl TlsConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // Name the key that is missing, not the one that is there.
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) => {
                return Err(("mqtt.tls.client_key_file", "mqtt.tls.client_cert_file is set: name its key too".into()))
            }
            (None, Some(_)) => {
                return Err((
                    "mqtt.tls.client_cert_file",
                    "mqtt.tls.client_key_file is set: name the certificate it belongs to".into(),
                ))
            }
            _ => {}
        }
        if let Some(name) = &self.server_name {
            if ServerName::try_from(name.as_str()).is_err() {
                return Err(("mqtt.tls.server_name", format!("= {name:?}: not a DNS name or IP address")));
            }
        }
        Ok(())
    }

    /// Reads the certificates and the key and builds the client's TLS settings.
    pub fn client_config(&self, host: &str, base: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(ca) => {
                let path = resolve(base, ca);
                let certs = read_certs("mqtt.tls.ca_file", &path)?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(invalid("mqtt.tls.ca_file", format!("{}: no usable CA certificate", path.display())));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(invalid(
                        "mqtt.tls.ca_file",
                        "not set, and this system has no CA certificates (install ca-certificates, or name the broker's CA file)",
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| invalid("mqtt.tls.ca_file", e.to_string()))?;
        let name = self.server_name.as_deref().unwrap_or(host);
        let expected = ServerName::try_from(name.to_string())
            .map_err(|_| invalid("mqtt.tls.server_name", format!("{name:?} is not a DNS name or IP address")))?;
        let verifier = Arc::new(NamedVerifier { inner: webpki, name: expected });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("mqtt.tls", e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs("mqtt.tls.client_cert_file", &resolve(base, cert))?;
                let pem = dolbom_secret::read("mqtt.tls.client_key_file", key, base)?;
                let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                    .map_err(|e| invalid("mqtt.tls.client_key_file", format!("no PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| invalid("mqtt.tls.client_key_file", format!("does not fit the certificate: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_path_buf()
    }
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, format!("{}: not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(key, format!("{}: no certificate in it", path.display())));
    }
    Ok(certs)
}

/// The Web PKI's verification, against the configured name rather than the one the connection
/// was opened with (rumqttc uses `mqtt.host`), so `server_name` works for a broker reached by
/// address. Everything else (chain, validity, signatures) is the Web PKI verifier's own.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A failed TLS connection in words an installer can act on.
pub fn explain(error: &rumqttc::TlsError) -> String {
    let rustls_error = match error {
        rumqttc::TlsError::TLS(e) => Some(e),
        rumqttc::TlsError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    let Some(e) = rustls_error else {
        return format!("TLS connection to the broker failed: {error}");
    };
    match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => format!(
            "TLS: the broker's certificate is not signed by a trusted CA (check mqtt.tls.ca_file; without it the system's roots are used): {e}"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS: the broker's certificate is not valid for the name the kiosk expects (mqtt.host, or mqtt.tls.server_name): {e}"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. } | CertificateError::NotValidYet,
        ) => format!("TLS: the broker's certificate is outside its validity period (or this clock is wrong): {e}"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "TLS: the broker did not answer in TLS; is mqtt.port a plain MQTT listener? (use the TLS port, or remove [mqtt.tls]): {e}"
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("TLS: the broker refused the handshake ({alert:?}); does it require a client certificate (mqtt.tls.client_cert_file)? {e}")
        }
        _ => format!("TLS handshake with the broker failed: {e}"),
    }
}
