//! Typed views over the bytes of IP packets the data path inspects and builds: IPv4/IPv6
//! headers, ICMP/ICMPv6 messages, the internet checksum.
