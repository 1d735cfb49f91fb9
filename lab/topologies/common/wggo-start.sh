#!/bin/sh
# Runs wireguard-go as wg0 with a config next to this script, for the lab topologies:
#
#   wggo-start.sh CONF TUNNEL_ADDR/LEN PREFIX...
#
# Starts wireguard-go in the foreground mode (its UAPI socket goes to /run/wireguard,
# which is the node's own: a container's, or the private /run wgrd-lab gives each
# node), waits for the socket (bounded), loads CONF with `wg setconf`, addresses wg0,
# routes each PREFIX into it, and then waits for wireguard-go (so the node's process is
# this script and stopping it stops the tunnel).
set -eu
conf="$1"; addr="$2"; shift 2
WG_PROCESS_FOREGROUND=1 wireguard-go -f wg0 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
n=0
until [ -S /run/wireguard/wg0.sock ]; do
    n=$((n + 1))
    if [ "$n" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "wggo-start: wireguard-go did not open /run/wireguard/wg0.sock" >&2
        exit 1
    fi
    sleep 0.1
done
# wg setconf does not take comments after the keys but does take whole-line comments.
wg setconf wg0 "$conf"
ip addr add "$addr" dev wg0
ip link set wg0 mtu 1420 up
for prefix in "$@"; do
    ip route add "$prefix" dev wg0
done
echo "wggo-start: wg0 up ($addr), routes: $*"
wait "$pid"
