//! The gate in front of smoltcp: is this a whole, checksummed, unfragmented TCP segment?
//!
//! smoltcp drops bad packets silently; checking them here first lets the stack count
//! why it dropped them (`wgrd status` shows the counters). Reads only; owns no state.
//! Checks RFC 791 (header checksum, fragments), RFC 8200 (no extension headers are
//! expected on the router's own TCP) and RFC 9293 section 3.1 (TCP checksum).

use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

/// Why a packet never reached the TCP state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Truncated, wrong version, lengths that do not add up.
    #[error("malformed")]
    Malformed,
    #[error("bad checksum")]
    BadChecksum,
    /// A fragment, or IPv6 extension headers: our peers send neither (the MSS keeps
    /// segments within the tunnel MTU), so supporting them buys nothing.
    #[error("unsupported")]
    Unsupported,
}

/// Accepts `packet` when it is an IPv4 or IPv6 packet carrying one complete TCP segment
/// whose checksums verify.
pub fn check_tcp(packet: &[u8]) -> Result<(), Rejected> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => check_v4(packet),
        Some(6) => check_v6(packet),
        _ => Err(Rejected::Malformed),
    }
}

fn check_v4(packet: &[u8]) -> Result<(), Rejected> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| Rejected::Malformed)?;
    if !ip.verify_checksum() {
        return Err(Rejected::BadChecksum);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Rejected::Unsupported);
    }
    if ip.next_header() != IpProtocol::Tcp {
        return Err(Rejected::Unsupported);
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    check_segment(ip.payload(), &src, &dst)
}

fn check_v6(packet: &[u8]) -> Result<(), Rejected> {
    let ip = Ipv6Packet::new_checked(packet).map_err(|_| Rejected::Malformed)?;
    if ip.next_header() != IpProtocol::Tcp {
        return Err(Rejected::Unsupported);
    }
    let (src, dst) = (
        IpAddress::Ipv6(ip.src_addr()),
        IpAddress::Ipv6(ip.dst_addr()),
    );
    check_segment(ip.payload(), &src, &dst)
}

fn check_segment(segment: &[u8], src: &IpAddress, dst: &IpAddress) -> Result<(), Rejected> {
    let tcp = TcpPacket::new_checked(segment).map_err(|_| Rejected::Malformed)?;
    if !tcp.verify_checksum(src, dst) {
        return Err(Rejected::BadChecksum);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN from 169.254.1.1:40000 to 169.254.1.0:179 (MSS 1380), as smoltcp's
    /// peers send it: 20 bytes of IPv4, 24 of TCP.
    const SYN_V4: [u8; 44] = [
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x2d, 0x64, 0xa9, 0xfe, 0x01,
        0x01, 0xa9, 0xfe, 0x01, 0x00, // IPv4
        0x9c, 0x40, 0x00, 0xb3, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0x64, // TCP
    ];

    fn with_checksums(mut p: [u8; 44]) -> [u8; 44] {
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.fill_checksum();
        let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
        TcpPacket::new_unchecked(&mut p[20..]).fill_checksum(&src, &dst);
        p
    }

    #[test]
    fn accepts_a_checksummed_syn() {
        assert_eq!(check_tcp(&with_checksums(SYN_V4)), Ok(()));
    }

    #[test]
    fn rejects_what_smoltcp_would_drop_silently() {
        let good = with_checksums(SYN_V4);
        assert_eq!(check_tcp(&[]), Err(Rejected::Malformed));
        assert_eq!(check_tcp(&good[..30]), Err(Rejected::Malformed));
        let mut bad_ip = good;
        bad_ip[8] = 1; // TTL changed, IP checksum not updated
        assert_eq!(check_tcp(&bad_ip), Err(Rejected::BadChecksum));
        let mut bad_tcp = good;
        bad_tcp[43] ^= 1;
        assert_eq!(check_tcp(&bad_tcp), Err(Rejected::BadChecksum));
        let mut fragment = SYN_V4;
        fragment[6] = 0x20; // more fragments
        assert_eq!(
            check_tcp(&with_checksums(fragment)),
            Err(Rejected::Unsupported)
        );
        let mut short_data_offset = SYN_V4;
        short_data_offset[32] = 0x40; // data offset 16 bytes, below the minimum
        assert_eq!(
            check_tcp(&with_checksums(short_data_offset)),
            Err(Rejected::Malformed)
        );
        let mut version = good;
        version[0] = 0x55;
        assert_eq!(check_tcp(&version), Err(Rejected::Malformed));
    }

    #[test]
    fn ipv6_with_an_extension_header_is_unsupported() {
        let mut p = vec![0u8; 40 + 8];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&8u16.to_be_bytes());
        p[6] = 0; // hop-by-hop options
        p[7] = 64;
        assert_eq!(check_tcp(&p), Err(Rejected::Unsupported));
        p.truncate(39);
        assert_eq!(check_tcp(&p), Err(Rejected::Malformed));
    }
}
