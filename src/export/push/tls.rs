//! HTTPS for the push client (feature `tls`): rustls with the `ring`
//! provider, the Mozilla root certificates (`webpki-roots`) and any extra
//! certificate authorities the exporter is given.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::error::Error;

/// What every connection of one client shares: the configuration and the
/// name the server's certificate must carry.
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    server: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// For `host` (a DNS name or an IP address), trusting the Mozilla roots
    /// and the certificates in `extra_pem`.
    pub(crate) fn new(host: &str, extra_pem: &[String]) -> Result<Self, Error> {
        let bad = |why: String| Error::InvalidConfig(why);
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (n, pem) in extra_pem.iter().enumerate() {
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert =
                    cert.map_err(|e| bad(format!("extra root certificate {n}: not PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("extra root certificate {n}: refused: {e}")))?;
                found += 1;
            }
            if found == 0 {
                return Err(bad(format!(
                    "extra root certificate {n}: no CERTIFICATE block in it"
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = ServerName::try_from(host.to_owned())
            .map_err(|e| bad(format!("{host:?} is not a TLS server name: {e}")))?;
        Ok(Tls {
            config: Arc::new(config),
            server,
        })
    }

    /// A TLS stream over `socket`; the handshake happens on the first
    /// write.
    pub(crate) fn wrap<S: Read + Write>(
        &self,
        socket: S,
    ) -> Result<StreamOwned<ClientConnection, S>, String> {
        let conn = ClientConnection::new(Arc::clone(&self.config), self.server.clone())
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(StreamOwned::new(conn, socket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_extra_certificates_and_names_are_refused() {
        assert!(Tls::new("example.com", &[]).is_ok());
        assert!(Tls::new("127.0.0.1", &[]).is_ok());
        let no_block = Tls::new("example.com", &["hello".into()]).unwrap_err();
        assert!(
            no_block.to_string().contains("no CERTIFICATE"),
            "{no_block}"
        );
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(Tls::new("example.com", &[garbage.into()]).is_err());
        assert!(Tls::new("bad name with spaces", &[]).is_err());
    }
}
