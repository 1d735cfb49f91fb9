#!/bin/sh
# Brings up one wireguard-go interface and goes on with the node's next command, for
# nodes with several tunnels or a routing daemon:
#
#   wggo-up.sh IFACE CONF TUNNEL_ADDR/LEN [-- COMMAND...]
#
# Starts wireguard-go IFACE in its own background (daemon) mode, waits for its UAPI
# socket in /run/wireguard (the node's own /run; bounded to 10 s), loads CONF with
# `wg setconf`, addresses IFACE and brings it up with MTU 1420. No routes: a routing
# daemon (BIRD, FRR) installs them. Then execs COMMAND, if any, which may be another
# wggo-up.sh: chains like `wggo-up.sh wg0 ... -- wggo-up.sh wg1 ... -- bird-start.sh ...`
# keep the routing daemon the node's process. Unlike wggo-start.sh it does not stay
# around for wireguard-go, which the node's teardown stops with everything else.
set -eu
[ $# -ge 3 ] || { echo "usage: wggo-up.sh IFACE CONF ADDR/LEN [-- COMMAND...]" >&2; exit 2; }
ifc="$1"; conf="$2"; addr="$3"; shift 3
sock="/run/wireguard/$ifc.sock"
if [ -e "$sock" ]; then
    echo "wggo-up: $sock exists already" >&2
    exit 1
fi
wireguard-go "$ifc"
n=0
until [ -S "$sock" ]; do
    n=$((n + 1))
    if [ "$n" -gt 100 ]; then
        echo "wggo-up: wireguard-go did not open $sock" >&2
        exit 1
    fi
    sleep 0.1
done
# wg setconf takes whole-line comments, not comments after a value.
wg setconf "$ifc" "$conf"
ip addr add "$addr" dev "$ifc"
ip link set "$ifc" mtu 1420 up
echo "wggo-up: $ifc up ($addr)"
if [ "${1:-}" = "--" ]; then
    shift
    [ $# -gt 0 ] || { echo "wggo-up: no command after --" >&2; exit 2; }
    exec "$@"
fi
