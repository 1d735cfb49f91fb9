//! The API's TCP listener with TLS and client-certificate authentication, in process (no
//! root): a CA, a server and client certificates are made at test time (rcgen), a router
//! on loopback serves the API on 127.0.0.1:0, and clients connect with tonic.
//!
//! - a client whose certificate the CA signed gets answers;
//! - a client without a certificate, or with one from another CA, is refused;
//! - plaintext TCP on a non-loopback address is refused by config validation (and by the
//!   listener itself for a config built in code); on loopback it is allowed.

use rcgen::{
    BasicConstraints, Certificate as RcCert, CertificateParams, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use wgrd::config::{self, ControlConfig};
use wgrd::control::{Control, ControlServer, ListenError};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd_proto::v1 as pb;

/// Bound on each connection attempt and call.
const WAIT: Duration = Duration::from_secs(10);

/// A CA (certificate and key) that signs leaf certificates.
struct Ca {
    cert: RcCert,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf certificate for `name` (and 127.0.0.1), for server or client use.
    /// Returns (certificate PEM, key PEM).
    fn issue(&self, name: &str, server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Config text of a router on loopback with no tunnels; `control` is the `[control]` body.
fn config_text(control: &str) -> String {
    format!(
        "[router]\n\
         router-id = \"10.255.0.1\"\n\
         private-key-file = \"r1.key\"\n\
         listen-port = 0\n\
         listen-address = \"127.0.0.1\"\n\
         \n\
         [control]\n\
         socket = \"api.sock\"\n\
         {control}"
    )
}

/// A router serving the API over TLS on 127.0.0.1:<ephemeral>, with its certificates.
struct TlsLab {
    dir: tempfile::TempDir,
    router: Arc<Router>,
    server: Option<ControlServer>,
    addr: SocketAddr,
    ca: Ca,
}

impl TlsLab {
    async fn start() -> TlsLab {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("wgrd test CA");
        let (srv_cert, srv_key) = ca.issue("localhost", true);
        write(dir.path(), "ca.pem", &ca.pem());
        write(dir.path(), "server.pem", &srv_cert);
        write(dir.path(), "server.key", &srv_key);
        write(dir.path(), "r1.key", &PrivateKey::generate().to_base64());
        let text = config_text(
            "listen = \"127.0.0.1:0\"\n\
             tls-cert = \"server.pem\"\n\
             tls-key = \"server.key\"\n\
             tls-client-ca = \"ca.pem\"\n",
        );
        let path = dir.path().join("r1.toml");
        write(dir.path(), "r1.toml", &text);
        let config = config::load_file(&path).unwrap_or_else(|e| panic!("config: {e}"));
        assert!(config.control.tls.is_some(), "TLS configured");
        let settings = config.control.clone();
        let router = Arc::new(Router::start(config).await.unwrap());
        let control = Arc::new(Control::new(Arc::clone(&router), Some(path)));
        let server = ControlServer::start(control, &settings).await.unwrap();
        let addr = server.tcp_addr().expect("TCP listener bound");
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        TlsLab {
            dir,
            router,
            server: Some(server),
            addr,
            ca,
        }
    }

    /// Connect over TLS trusting the lab's CA, presenting `identity` (cert, key PEM) if any,
    /// and call System/Version. Err carries the transport or status message.
    async fn version(
        &self,
        identity: Option<(String, String)>,
    ) -> Result<pb::VersionResponse, String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca.pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let endpoint = Endpoint::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| format!("tls config: {e}"))?
            .connect_timeout(WAIT)
            .timeout(WAIT);
        let call = async {
            let channel: Channel = endpoint
                .connect()
                .await
                .map_err(|e| format!("connect: {e:?}"))?;
            pb::system_client::SystemClient::new(channel)
                .version(pb::VersionRequest {})
                .await
                .map(|r| r.into_inner())
                .map_err(|s| format!("call: {s}"))
        };
        tokio::time::timeout(WAIT * 2, call)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.router.shutdown().await;
        drop(self.dir);
    }
}

#[tokio::test]
async fn tls_client_with_cert_from_the_ca_is_served() {
    let lab = TlsLab::start().await;
    let client = lab.ca.issue("orchestrator", false);
    let v = lab.version(Some(client.clone())).await.unwrap();
    assert_eq!(v.api, "wgrd.v1");
    // A second call on a fresh connection, to another service, works too.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(lab.ca.pem()))
        .domain_name("localhost")
        .identity(Identity::from_pem(client.0, client.1));
    let channel = Endpoint::from_shared(format!("https://{}", lab.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let list = pb::tunnels_client::TunnelsClient::new(channel)
        .list(pb::ListTunnelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(list.tunnels.is_empty());
    lab.stop().await;
}

#[tokio::test]
async fn tls_client_without_cert_is_refused() {
    let lab = TlsLab::start().await;
    let err = lab
        .version(None)
        .await
        .expect_err("served without a client cert");
    println!("no client certificate: refused: {err}");
    // The listener keeps serving good clients afterwards.
    let good = lab.ca.issue("orchestrator", false);
    lab.version(Some(good)).await.unwrap();
    lab.stop().await;
}

#[tokio::test]
async fn tls_client_with_cert_from_another_ca_is_refused() {
    let lab = TlsLab::start().await;
    let other = Ca::new("someone else's CA");
    let err = lab
        .version(Some(other.issue("intruder", false)))
        .await
        .expect_err("served a certificate from another CA");
    println!("foreign client certificate: refused: {err}");
    lab.stop().await;
}

/// A plaintext HTTP/2 client on the TLS port gets nothing.
#[tokio::test]
async fn tls_plaintext_client_is_refused() {
    let lab = TlsLab::start().await;
    // Plain HTTP/2 to the TLS port.
    let res = async {
        let channel = Endpoint::from_shared(format!("http://{}", lab.addr))
            .unwrap()
            .connect_timeout(WAIT)
            .timeout(WAIT)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        pb::system_client::SystemClient::new(channel)
            .version(pb::VersionRequest {})
            .await
            .map_err(|e| e.to_string())
    };
    let res = tokio::time::timeout(WAIT * 2, res).await;
    assert!(
        !matches!(res, Ok(Ok(_))),
        "a plaintext client was served on the TLS listener"
    );
    lab.stop().await;
}

#[test]
fn plaintext_tcp_on_non_loopback_is_refused_by_validation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r1.key", &PrivateKey::generate().to_base64());
    let file = dir.path().join("r1.toml");
    let check = |control: &str| config::parse_str(&config_text(control), &file);

    for addr in [
        "0.0.0.0:9771",
        "192.0.2.1:9771",
        "[::]:9771",
        "[2001:db8::1]:9771",
    ] {
        let errs = check(&format!("listen = \"{addr}\"\nplaintext = true\n"))
            .expect_err(&format!("plaintext on {addr} accepted"))
            .to_string();
        assert!(
            errs.contains("control.listen") && errs.contains("loopback"),
            "{addr}: {errs}"
        );
    }
    // Without plaintext = true, a TCP listener without TLS is refused anywhere.
    for addr in ["0.0.0.0:9771", "127.0.0.1:9771"] {
        let errs = check(&format!("listen = \"{addr}\"\n"))
            .expect_err("TCP without TLS accepted")
            .to_string();
        assert!(errs.contains("tls-cert"), "{addr}: {errs}");
    }
    // Loopback plaintext is allowed when asked for explicitly.
    for addr in ["127.0.0.1:9771", "[::1]:9771"] {
        let c = check(&format!("listen = \"{addr}\"\nplaintext = true\n"))
            .unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert!(c.control.plaintext && c.control.tls.is_none());
    }
}

/// A config built in code (not through the loader) cannot slip a non-loopback plaintext
/// listener past the server either.
#[tokio::test]
async fn listener_refuses_plaintext_on_non_loopback() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r1.key", &PrivateKey::generate().to_base64());
    let path = dir.path().join("r1.toml");
    write(dir.path(), "r1.toml", &config_text(""));
    let config = config::load_file(&path).unwrap();
    let router = Arc::new(Router::start(config).await.unwrap());
    let control = Arc::new(Control::new(Arc::clone(&router), Some(path)));
    let settings = ControlConfig {
        socket: dir.path().join("api.sock"),
        listen: Some("0.0.0.0:0".parse().unwrap()),
        tls: None,
        plaintext: true,
        persist: false,
    };
    match ControlServer::start(control, &settings).await {
        Err(ListenError::Tls(msg)) => assert!(msg.contains("loopback"), "{msg}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(s) => {
            s.shutdown().await;
            panic!("plaintext listener on 0.0.0.0 started");
        }
    }
    router.shutdown().await;
}
