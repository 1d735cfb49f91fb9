#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*): a few valid messages of each
kind, built here by hand from the RFC layouts. Run from fuzz/: python3 make_seeds.py"""
import os
import struct


def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


# ---- BGP (RFC 4271 4) ----
def bgp(ty, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), ty) + bytes(body)


def cap(code, data):
    return bytes([code, len(data)]) + bytes(data)


caps = (cap(1, [0, 1, 0, 1]) + cap(1, [0, 2, 0, 1]) + cap(2, []) + cap(65, struct.pack("!I", 4200000001))
        + cap(5, [0, 1, 0, 1, 0, 2]) + cap(64, [0x40, 0x78]))
open_msg = bgp(1, struct.pack("!BHH4sB", 4, 23456, 90, bytes([192, 0, 2, 1]), len(caps) + 2) + bytes([2, len(caps)]) + caps)
keepalive = bgp(4, b"")
notification = bgp(3, [6, 2, 3, ord("b"), ord("y"), ord("e")])
refresh = bgp(5, [0, 2, 0, 1])


def attr(flags, code, value):
    value = bytes(value)
    if len(value) > 255:
        return bytes([flags | 0x10, code]) + struct.pack("!H", len(value)) + value
    return bytes([flags, code, len(value)]) + value


def as_path(asns, width):
    fmt = "!I" if width == 4 else "!H"
    return bytes([2, len(asns)]) + b"".join(struct.pack(fmt, a) for a in asns)


def attrs(width):
    return (attr(0x40, 1, [0]) + attr(0x40, 2, as_path([65001, 65002], width)) + attr(0x40, 3, [10, 0, 0, 1])
            + attr(0x80, 4, struct.pack("!I", 100)) + attr(0x40, 5, struct.pack("!I", 200)) + attr(0x40, 6, [])
            + attr(0xc0, 7, struct.pack("!H" if width == 2 else "!I", 65001) + bytes([10, 0, 0, 9]))
            + attr(0xc0, 8, struct.pack("!II", 0xfde90001, 0xffffff01))
            + attr(0x80, 9, [10, 9, 9, 9]) + attr(0x80, 10, [1, 1, 1, 1, 2, 2, 2, 2])
            + attr(0xc0, 32, struct.pack("!III", 4200000001, 1, 2)) + attr(0xc0, 99, [1, 2, 3]))


mp_reach_v6 = attr(0x80, 14, struct.pack("!HBB", 2, 1, 32) + bytes(range(16)) + bytes([0xfe, 0x80] + [0] * 13 + [1])
                   + bytes([0]) + bytes([64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]) + bytes([128]) + bytes(range(16)))
mp_unreach_v6 = attr(0x80, 15, struct.pack("!HB", 2, 1) + bytes([48, 0x20, 0x01, 0x0d, 0xb8, 0, 2]))
as4 = attr(0xc0, 17, as_path([4200000001, 65002], 4)) + attr(0xc0, 18, struct.pack("!I", 4200000001) + bytes([10, 0, 0, 9]))


def update(withdrawn, a, nlri):
    return bgp(2, struct.pack("!H", len(withdrawn)) + bytes(withdrawn) + struct.pack("!H", len(a)) + a + bytes(nlri))


nlri = [24, 10, 1, 0, 32, 192, 0, 2, 7, 0, 8, 10]
upd2 = update([16, 172, 16], attrs(2) + as4, nlri)
upd4 = update([], attrs(4), nlri)
upd6 = update([], attr(0x40, 1, [2]) + attr(0x40, 2, as_path([65001], 4)) + mp_reach_v6 + mp_unreach_v6, [])
eor = update([], b"", [])

for sel, name, m in [(0, "open", open_msg), (1, "open4", open_msg), (0, "keepalive", keepalive),
                     (0, "notification", notification), (1, "refresh", refresh), (0, "update2", upd2),
                     (1, "update4", upd4), (1, "update-v6", upd6), (0, "eor", eor)]:
    put("bgp_message", name, bytes([sel]) + m)
put("bgp_message", "stream", bytes([3]) + open_msg + keepalive + upd4 + upd6 + keepalive)
put("bgp_message", "stream-bad-marker", bytes([5]) + keepalive + b"\xfe" + keepalive[1:])

for sel, name, a in [(2, "full2", attrs(2) + as4), (3, "full4", attrs(4)), (1, "mp-v6", mp_reach_v6 + mp_unreach_v6),
                     (0, "withdraw-only", mp_unreach_v6), (3, "extended", attr(0xc0, 8, b"\x00\x00\x00\x01" * 80))]:
    put("bgp_attrs", name, bytes([sel]) + a)


# ---- OSPFv2 (RFC 2328 A.3, A.4) ----
def fletcher(lsa):
    lsa = bytearray(lsa)
    lsa[16:18] = b"\0\0"
    data = lsa[2:]
    c0 = c1 = 0
    for b in data:
        c0 = (c0 + b) % 255
        c1 = (c1 + c0) % 255
    x = ((len(data) - 15) * c0 - c1) % 255
    if x <= 0:
        x += 255
    y = 510 - c0 - x
    if y > 255:
        y -= 255
    lsa[16:18] = bytes([x, y & 0xff])
    return bytes(lsa)


def lsa(ls_type, lsid, body, age=1):
    hdr = struct.pack("!HBB4s4sIHH", age, 0x02, ls_type, bytes(lsid), bytes([10, 0, 0, 1]), 0x80000001, 0,
                      20 + len(body))
    return fletcher(hdr + bytes(body))


router_lsa = lsa(1, [10, 0, 0, 1], [0x02, 0, 0, 3] + [10, 0, 0, 2, 0, 0, 0, 7, 1, 0, 0, 10]
                 + [10, 1, 0, 0, 255, 255, 255, 0, 3, 1, 0, 1, 8, 0, 0, 5] + [10, 0, 0, 3, 10, 0, 0, 1, 2, 0, 0, 4])
network_lsa = lsa(2, [10, 0, 0, 1], [255, 255, 255, 0, 10, 0, 0, 1, 10, 0, 0, 2])
summary_lsa = lsa(3, [10, 2, 0, 0], [255, 255, 0, 0, 0, 0, 0, 20])
asbr_lsa = lsa(4, [10, 0, 0, 7], [0, 0, 0, 0, 0, 0, 0, 30])
external_lsa = lsa(5, [0, 0, 0, 0], [0, 0, 0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42])

for name, l in [("router", router_lsa), ("network", network_lsa), ("summary", summary_lsa), ("asbr", asbr_lsa),
                ("external", external_lsa)]:
    put("ospf_lsa", name, bytes([0]) + l)
put("ospf_lsa", "router-repair", bytes([3]) + router_lsa)


def csum(data):
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | (data[i + 1] if i + 1 < len(data) else 0)
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ospf(ty, body, au_type=0, auth=b"\0" * 8):
    body = bytes(body)
    hdr = bytearray(struct.pack("!BBH4s4sHH8s", 2, ty, 24 + len(body), bytes([10, 0, 0, 1]), bytes(4), 0, au_type,
                                b"\0" * 8))
    p = hdr + body
    if au_type != 2:
        c = csum(bytes(p[:16]) + bytes(p[24:]))
        p[12:14] = struct.pack("!H", c)
        p[16:24] = auth
    else:
        p[16:24] = auth
    return bytes(p)


hello = ospf(1, [255, 255, 255, 252, 0, 10, 0x02, 1, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2])
hdrs = router_lsa[:20] + network_lsa[:20]
dd = ospf(2, struct.pack("!HBBI", 1420, 0x02, 0x07, 1234) + hdrs)
lsr = ospf(3, struct.pack("!I4s4s", 1, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 1])))
lsu = ospf(4, struct.pack("!I", 5) + router_lsa + network_lsa + summary_lsa + asbr_lsa + external_lsa)
ack = ospf(5, hdrs)
simple = ospf(1, [255, 255, 255, 252, 0, 10, 0x02, 1, 0, 0, 0, 40] + [0] * 8, au_type=1, auth=b"secret!!")
crypto = ospf(1, [255, 255, 255, 252, 0, 10, 0x02, 1, 0, 0, 0, 40] + [0] * 8, au_type=2,
              auth=bytes([0, 0, 1, 16, 0, 0, 0, 9])) + bytes(16)
for name, p in [("hello", hello), ("dd", dd), ("lsr", lsr), ("lsu", lsu), ("ack", ack), ("simple", simple),
                ("crypto", crypto)]:
    put("ospf_packet", name, bytes([0]) + p)
put("ospf_packet", "lsu-repair", bytes([1]) + lsu)


# ---- IP packets for the forwarding decision ----
def v4(proto, src, dst, payload, ttl=64, flags=0x4000):
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 7, flags, ttl, proto, 0, bytes(src),
                                bytes(dst)))
    hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
    return bytes(hdr) + bytes(payload)


def icmp(ty, code, rest):
    m = bytearray([ty, code, 0, 0]) + bytes(rest)
    m[2:4] = struct.pack("!H", csum(bytes(m)))
    return bytes(m)


def v6(nh, src, dst, payload, hops=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hops, bytes(src), bytes(dst)) + bytes(payload)


def v6_icmp(src, dst, ty, code, rest):
    m = bytearray([ty, code, 0, 0]) + bytes(rest)
    pseudo = bytes(src) + bytes(dst) + struct.pack("!I", len(m)) + b"\0\0\0\x3a"
    m[2:4] = struct.pack("!H", csum(pseudo + bytes(m)))
    return v6(58, src, dst, bytes(m))


a6 = lambda *tail: [0x20, 0x01, 0x0d, 0xb8] + [0] * (12 - len(tail)) + list(tail)
echo = v4(1, [10, 0, 0, 2], [10, 0, 0, 1], icmp(8, 0, b"\x12\x34\x00\x01" + b"ping" * 8))
udp_ttl1 = v4(17, [10, 0, 0, 2], [198, 51, 100, 9], struct.pack("!HHHH", 1000, 33434, 16, 0) + b"traceroo", ttl=1)
udp_big = v4(17, [10, 0, 0, 2], [100, 64, 0, 4], struct.pack("!HHHH", 1000, 53, 1408, 0) + bytes(1400), flags=0)
syn = v4(6, [10, 0, 0, 2], [198, 51, 100, 22],
         struct.pack("!HHIIBBHHH", 40000, 179, 1, 0, 0x70, 0x02, 65535, 0, 0) + bytes([2, 4, 0x05, 0xb4, 1, 1, 4, 2,
                                                                                       1, 3, 3, 7]))
ospf_mc = v4(89, [10, 0, 0, 2], [224, 0, 0, 5], hello, ttl=1)
echo6 = v6_icmp(a6(2), a6(1), 128, 0, b"\x12\x34\x00\x01" + b"ping6" * 6)
echo6_ll = v6_icmp([0xfe, 0x80] + [0] * 13 + [2], [0xfe, 0x80] + [0] * 13 + [1], 128, 0, b"\0\1\0\1")
udp6 = v6(17, a6(1, 2), [0x20, 0x01, 0x0d, 0xb8, 0, 2] + [0] * 9 + [9], struct.pack("!HHHH", 1, 2, 1208, 0)
          + bytes(1200), hops=1)
ext6 = v6(0, a6(2), a6(9), bytes([44, 0, 1, 4, 0, 0, 0, 0]) + bytes([58, 0, 0, 1, 0, 0, 0, 7])
          + bytes([128, 0, 0, 0, 0, 1, 0, 1]))
mtu = struct.pack("!H", 1420)
for name, ingress, p in [("echo", 0, echo), ("udp-ttl1", 0, udp_ttl1), ("udp-big", 2, udp_big), ("syn", 0x0a, syn),
                         ("ospf", 0, ospf_mc), ("echo6", 0, echo6), ("echo6-ll", 0, echo6_ll), ("udp6-hop1", 1, udp6),
                         ("ext6", 2, ext6)]:
    put("ip_forward", name, bytes([ingress]) + mtu + bytes([250]) + p)
put("ip_forward", "udp-big-mtu1280", bytes([0x02]) + struct.pack("!H", 1280) + bytes([250]) + udp_big)
