//! The simulator as a TLS client, as ONTAP is with `ssl-option`
//! `server-auth` (verify the server against a CA) or `mutual-auth` (also
//! present a client certificate).

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Clone)]
pub struct SimTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

impl SimTls {
    /// `ca`: the CA that signed the server certificate; `client`: a
    /// certificate chain and key for mutual-auth.
    pub fn from_pem(
        ca: &Path,
        client: Option<(&Path, &Path)>,
        server_name: &str,
    ) -> Result<SimTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| read_err(ca, e))? {
            roots
                .add(cert.map_err(|e| read_err(ca, e))?)
                .map_err(|e| read_err(ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| read_err(cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| read_err(cert, e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_err(key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| e.to_string())?
            }
        };
        Ok(SimTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from(server_name.to_owned())
                .map_err(|e| format!("server name {server_name:?}: {e}"))?,
        })
    }

    pub async fn connect(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}
