//! TLS through rustls with libpq's `sslmode` meanings.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::params::{ConnParams, Host, SslMode};
use crate::postgres::error::{PgError, PgResult};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// libpq's default root certificate file.
fn default_root_cert() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".postgresql/root.crt");
    path.exists().then_some(path)
}

fn load_roots(params: &ConnParams, path: &PathBuf) -> PgResult<RootCertStore> {
    let fail = |reason: String| PgError::Tls {
        target: params.target(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(format!("cannot read sslrootcert {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(fail(format!(
            "sslrootcert {} holds no certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// Checks the chain but not the name (`verify-ca`), or nothing at all but
/// the handshake signatures (`require` without a root certificate).
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls configuration for `params.sslmode` (not called for `disable`).
pub fn client_config(params: &ConnParams) -> PgResult<ClientConfig> {
    let fail = |reason: String| PgError::Tls {
        target: params.target(),
        reason,
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?;
    let root_path = params.sslrootcert.clone().or_else(default_root_cert);
    let config = match (params.sslmode, root_path) {
        (SslMode::VerifyFull, Some(path)) => {
            builder.with_root_certificates(load_roots(params, &path)?)
        }
        (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer | SslMode::Disable, Some(path)) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(
                Arc::new(load_roots(params, &path)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| fail(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    chain: Some(verifier),
                    provider,
                }))
        }
        (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
            return Err(fail(
                "sslmode verify-ca/verify-full needs a root certificate: add `sslrootcert=/path/ca.crt` to the URL (or put it in ~/.postgresql/root.crt)".into(),
            ))
        }
        (_, None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                chain: None,
                provider,
            })),
    };
    Ok(config.with_no_client_auth())
}

/// The name the server certificate must carry.
pub fn server_name(params: &ConnParams) -> PgResult<ServerName<'static>> {
    let host = match &params.host {
        Host::Tcp { host, .. } => host.clone(),
        Host::Unix { .. } => "localhost".to_owned(),
    };
    ServerName::try_from(host.clone()).map_err(|e| PgError::Tls {
        target: params.target(),
        reason: format!("`{host}` is not a valid TLS server name: {e}"),
    })
}
