//! Client TLS trust for the connections fpolicy-bridge opens (the ONTAP
//! REST API, LDAP): certificate verification is on, against a CA bundle or
//! the system's roots; turning it off is an explicit [`Trust::Insecure`].
//! One crypto provider (aws-lc-rs), as everywhere in the graph.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;

/// Whom a client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// PEM text (e.g. from a secret in the environment).
    Pem(String),
    /// A PEM bundle file.
    File(PathBuf),
    /// The operating system's roots.
    SystemRoots,
    /// Any certificate: anyone on the path can impersonate the server.
    Insecure,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{source_name}: {message}")]
    Certificates {
        source_name: String,
        message: String,
    },
    #[error("TLS: {0}")]
    Config(String),
}

/// A client configuration that trusts what `trust` says.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    client_config_with_identity(trust, None)
}

/// A client certificate chain and its private key, both PEM files (mutual
/// TLS).
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity<'a> {
    pub cert_chain: &'a std::path::Path,
    pub key: &'a std::path::Path,
}

/// Like [`client_config`], presenting `identity` when the server asks.
pub fn client_config_with_identity(
    trust: &Trust,
    identity: Option<ClientIdentity<'_>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let config = server_trust(trust)?;
    let Some(id) = identity else {
        return Ok(config.with_no_client_auth());
    };
    let file_error = |path: &std::path::Path, message: String| TlsError::Certificates {
        source_name: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(id.cert_chain)
        .map_err(|e| file_error(id.cert_chain, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(id.cert_chain, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(id.cert_chain, "no certificate".into()));
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(id.key)
        .map_err(|e| file_error(id.key, e.to_string()))?;
    config
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// The part of a client configuration that says whom it trusts.
fn server_trust(
    trust: &Trust,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, TlsError>
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let roots = match trust {
        Trust::Insecure => {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider))));
        }
        Trust::Pem(pem) => roots(
            "CA bundle PEM text",
            CertificateDer::pem_slice_iter(pem.as_bytes()).map(|c| c.map_err(|e| e.to_string())),
        )?,
        Trust::File(path) => {
            let name = path.display().to_string();
            let certs =
                CertificateDer::pem_file_iter(path).map_err(|e| TlsError::Certificates {
                    source_name: name.clone(),
                    message: e.to_string(),
                })?;
            roots(&name, certs.map(|c| c.map_err(|e| e.to_string())))?
        }
        Trust::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            roots("the system's CA roots", found.certs.into_iter().map(Ok))?
        }
    };
    Ok(builder.with_root_certificates(roots))
}

fn roots(
    source_name: &str,
    certs: impl Iterator<Item = Result<CertificateDer<'static>, String>>,
) -> Result<rustls::RootCertStore, TlsError> {
    let bad = |message: String| TlsError::Certificates {
        source_name: source_name.to_owned(),
        message,
    };
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store
            .add(cert.map_err(bad)?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("no certificate".into()));
    }
    Ok(store)
}

/// Accepts any certificate (signatures are still checked): only with
/// [`Trust::Insecure`], which callers log loudly.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused_with_its_name() {
        let e = client_config(&Trust::Pem("not a certificate".into())).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = client_config(&Trust::File("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(client_config(&Trust::Insecure).is_ok());
    }
}
