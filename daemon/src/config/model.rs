//! The validated configuration model. Every value here has passed validation in
//! [`super::load`]; code that consumes a `Config` does not re-check it.

use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use ipnetwork::IpNetwork;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub const DEFAULT_LISTEN_PORT: u16 = 51820;
pub const DEFAULT_TUNNEL_MTU: u16 = 1420;
pub const DEFAULT_HOST_MTU: u16 = 1420;
pub const DEFAULT_HOST_INTERFACE: &str = "wgrd0";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/wgrd/wgrd.sock";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub router: RouterConfig,
    pub host: Option<HostConfig>,
    pub tunnels: Vec<TunnelConfig>,
    pub routes: Vec<StaticRoute>,
    /// The gRPC API's listeners and persistence (`[control]`).
    pub control: ControlConfig,
    /// Per-packet switches of the forwarding decision (`[forwarding]`).
    pub forwarding: ForwardingConfig,
    /// Masquerading and port forwarding through the host's nftables (`[nat]`).
    pub nat: NatConfig,
    /// The OSPF speaker (`[ospf]`); absent: no OSPF.
    pub ospf: Option<OspfConfig>,
    /// The BGP speaker (`[bgp]`, see `super::bgp`); absent: no BGP.
    pub bgp: Option<super::bgp::BgpConfig>,
    /// Named route policies (`[[policy]]`), in file order; neighbors refer to them by name.
    pub policies: Vec<super::bgp::PolicyConfig>,
    /// Named prefix lists (`[[prefix-list]]`), in file order. Policies that use one hold
    /// its entries already (see `PolicyMatch::prefix_list_name`); kept here for saving.
    pub prefix_lists: Vec<super::bgp::PrefixListConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// Identifies the router to routing protocols; also one of its local addresses.
    pub router_id: Ipv4Addr,
    pub private_key: PrivateKey,
    /// Where the key came from, if a file (kept so a saved config refers to the file again).
    pub private_key_file: Option<PathBuf>,
    /// The UDP port shared by every tunnel that does not set its own.
    pub listen_port: u16,
    /// Address the shared UDP socket binds to; unspecified (all addresses, v4 and v6) by default.
    pub listen_address: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Name of the kernel TUN interface.
    pub interface: String,
    /// Addresses given to the TUN interface. They belong to the host (the kernel answers
    /// them); their subnets are routed to the host.
    pub addresses: Vec<IpNetwork>,
    /// Mirror FIB routes that point at tunnels into the kernel routing table via the TUN.
    pub export_routes: bool,
    pub mtu: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TunnelConfig {
    pub name: String,
    pub peer_public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    pub preshared_key_file: Option<PathBuf>,
    /// None: the peer always dials in (remote-access server style); the endpoint is learned.
    pub endpoint: Option<SocketAddr>,
    /// Seconds between keepalives when otherwise idle; None disables them.
    pub persistent_keepalive: Option<u16>,
    /// This router's addresses on the tunnel (connected routes and local addresses).
    pub addresses: Vec<IpNetwork>,
    pub mtu: u16,
    /// A UDP port of this tunnel's own instead of the router's shared one.
    pub listen_port: Option<u16>,
    /// OSPF on this tunnel (`ospf = { ... }`); None: the defaults of `[ospf]`.
    pub ospf: Option<TunnelOspf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNetwork,
    pub via: RouteVia,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteVia {
    /// The tunnel with this name.
    Tunnel(String),
    /// The kernel-facing TUN (the host and its LAN).
    Host,
    /// Drop silently.
    Blackhole,
}

/// `[control]`: where the gRPC API listens, and whether API changes are saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// The Unix socket (mode 0660).
    pub socket: PathBuf,
    /// Optional TCP listener.
    pub listen: Option<SocketAddr>,
    /// TLS for the TCP listener; required unless `plaintext` (loopback only).
    pub tls: Option<ControlTls>,
    /// Plaintext TCP, allowed only on a loopback `listen` address.
    pub plaintext: bool,
    /// Save the config file after every successful change over the API.
    pub persist: bool,
}

/// Files of the TCP listener's TLS: server certificate chain and key, and the CA that
/// client certificates must chain to (clients without one are refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            listen: None,
            tls: None,
            plaintext: false,
            persist: false,
        }
    }
}

impl Config {
    pub fn tunnel(&self, name: &str) -> Option<&TunnelConfig> {
        self.tunnels.iter().find(|t| t.name == name)
    }
}

/// `[forwarding]`: switches of the userspace forwarding decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingConfig {
    /// Lower the MSS of TCP SYNs that enter or leave a tunnel to fit its MTU.
    pub mss_clamp: bool,
}

impl Default for ForwardingConfig {
    fn default() -> Self {
        ForwardingConfig { mss_clamp: true }
    }
}

/// `[nat]`: masquerading and port forwarding between the host's LAN interfaces and the
/// host TUN, done by the kernel in an nftables table of wgrd's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatConfig {
    /// Write the forwarding sysctls NAT needs (otherwise they are only checked).
    pub set_sysctls: bool,
    /// `[[nat.masquerade]]`, in file order.
    pub masquerade: Vec<Masquerade>,
    /// `[[nat.port-forward]]`, in file order.
    pub port_forwards: Vec<PortForward>,
}

impl NatConfig {
    /// True when there is no NAT rule at all (wgrd then never runs `nft`).
    pub fn is_empty(&self) -> bool {
        self.masquerade.is_empty() && self.port_forwards.is_empty()
    }
}

/// Traffic from `from` leaving the host through `out_interface` gets the address of that
/// interface as its source (SNAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masquerade {
    pub from: Vec<NatSource>,
    pub out_interface: String,
}

/// Which traffic a masquerade rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NatSource {
    /// `"tunnel:*"`: everything that arrives from wgrd (the host TUN).
    AllTunnels,
    /// `"tunnel:NAME"`: from wgrd with a source inside the tunnel's subnets or the static
    /// routes via it.
    Tunnel(String),
    /// A source prefix, from any interface.
    Prefix(IpNetwork),
}

/// Connections to `port` on the host arriving on `in_interface` go to `to` (DNAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub in_interface: String,
    pub protocol: NatProtocol,
    pub port: u16,
    pub to: SocketAddr,
    /// Also masquerade them toward wgrd, so the endpoint answers to the host's TUN address
    /// and needs no route to the site.
    pub masquerade: bool,
}

impl std::fmt::Display for NatSource {
    /// As written in the config: `tunnel:*`, `tunnel:NAME` or the prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatSource::AllTunnels => write!(f, "tunnel:*"),
            NatSource::Tunnel(name) => write!(f, "tunnel:{name}"),
            NatSource::Prefix(p) => write!(f, "{p}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatProtocol {
    Tcp,
    Udp,
}

impl NatProtocol {
    pub fn name(self) -> &'static str {
        match self {
            NatProtocol::Tcp => "tcp",
            NatProtocol::Udp => "udp",
        }
    }
}

/// `[ospf]`: the OSPFv2 speaker. Every tunnel is a point-to-point interface of `area`
/// unless its own `ospf = { enabled = false }` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfConfig {
    pub enabled: bool,
    /// The area of tunnels that name none.
    pub area: Ipv4Addr,
    /// `[[ospf.areas]]`: areas that are not plain ones (stub), by id.
    pub areas: Vec<OspfArea>,
    /// Timers of tunnels that choose none.
    pub profile: OspfProfile,
    /// Routes of other sources originated as AS-external-LSAs.
    pub redistribute: Vec<OspfRedistribute>,
    /// `liveness-ms`: tunnel liveness interval of tunnels that set none (turns liveness
    /// on for them whatever their profile).
    pub liveness_ms: Option<u32>,
}

impl Default for OspfConfig {
    fn default() -> Self {
        OspfConfig {
            enabled: true,
            area: Ipv4Addr::UNSPECIFIED,
            areas: vec![],
            profile: OspfProfile::Default,
            redistribute: vec![],
            liveness_ms: None,
        }
    }
}

/// `[[ospf.areas]]`: one area's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfArea {
    pub id: Ipv4Addr,
    /// A stub area (RFC 2328 3.6): no AS-external-LSAs in it; its border routers send a
    /// default summary instead.
    pub stub: bool,
    /// Totally stubby: the border routers send only the default summary into it.
    pub no_summary: bool,
    /// Metric of the default summary a border router sends into this stub area.
    pub default_cost: u32,
    /// `ranges`: a border router advertises this area's routes inside one of them as
    /// the range alone (one summary-LSA).
    pub ranges: Vec<ipnetwork::Ipv4Network>,
}

pub const DEFAULT_STUB_DEFAULT_COST: u32 = 1;

/// The tunnel liveness interval of OSPF tunnels when `liveness-ms` is not set (either
/// profile; BGP uses the same interval). Probes cost about ten 32-byte keepalives a second
/// per tunnel each way; only a peer that probes too (another wgrd) is ever declared silent.
pub const DEFAULT_LIVENESS_MS: u32 = 300;
/// Bounds of `liveness-ms` (the timer thread ticks at least every quarter of the shortest
/// interval, so 100 ms still detects a silent peer within about 125 ms).
pub const LIVENESS_MS_MIN: u32 = 100;
pub const LIVENESS_MS_MAX: u32 = 60_000;

/// Timer sets for OSPF interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OspfProfile {
    /// Hello 10 s, dead 40 s, retransmit 5 s (RFC 2328's usual values).
    #[default]
    Default,
    /// Hello 1 s, dead 3 s, retransmit 1 s, and tunnel liveness of 1 s: a silent peer
    /// ends the adjacency at once.
    Fast,
}

impl OspfProfile {
    pub fn name(self) -> &'static str {
        match self {
            OspfProfile::Default => "default",
            OspfProfile::Fast => "fast",
        }
    }
    /// (hello, dead, retransmit) in seconds.
    pub fn timers(self) -> (u16, u32, u16) {
        match self {
            OspfProfile::Default => (10, 40, 5),
            OspfProfile::Fast => (1, 3, 1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedistributeFrom {
    Connected,
    Static,
    /// The selected BGP routes of the RIB (eBGP and iBGP), followed as they change.
    Bgp,
}

impl RedistributeFrom {
    pub fn name(self) -> &'static str {
        match self {
            RedistributeFrom::Connected => "connected",
            RedistributeFrom::Static => "static",
            RedistributeFrom::Bgp => "bgp",
        }
    }
}

pub const DEFAULT_OSPF_COST: u16 = 10;
pub const DEFAULT_EXTERNAL_METRIC: u32 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfRedistribute {
    pub from: RedistributeFrom,
    pub metric: u32,
    /// External metric type: 1 (E1, metric added to the path cost) or 2 (E2).
    pub metric_type: u8,
    /// `prefix-list`: only prefixes matching one entry are originated; empty: all.
    pub prefix_list: Vec<super::bgp::PrefixListEntry>,
}

/// Per-tunnel `ospf = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TunnelOspf {
    /// `enabled = false` keeps OSPF off this tunnel.
    pub disabled: bool,
    /// The tunnel's area; None: `[ospf] area`.
    pub area: Option<Ipv4Addr>,
    pub cost: Option<u16>,
    pub hello: Option<u16>,
    pub dead: Option<u32>,
    pub profile: Option<OspfProfile>,
    /// Cryptographic authentication (`auth = { ... }`); None: null authentication.
    pub auth: Option<OspfAuth>,
    /// `liveness-ms`: this tunnel's liveness interval (turns liveness on).
    pub liveness_ms: Option<u32>,
}

/// A tunnel's `ospf = { auth = { key-id = 1, key-file = "ospf.key", type = "..." } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfAuth {
    pub key_id: u8,
    /// As written in the file (saved back so).
    pub key_file: String,
    pub algorithm: OspfAuthType,
    /// The key file's text without the line end.
    pub key: OspfSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OspfAuthType {
    Md5,
    #[default]
    HmacSha256,
}

impl OspfAuthType {
    pub fn name(self) -> &'static str {
        match self {
            OspfAuthType::Md5 => "md5",
            OspfAuthType::HmacSha256 => "hmac-sha256",
        }
    }
}

/// A secret whose `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct OspfSecret(pub Vec<u8>);

impl std::fmt::Debug for OspfSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
