#!/bin/sh
# Node start-up for the lab topologies, the same under containerlab and wgrd-lab:
#
#   node-init.sh [router] IFACE=ADDR/LEN... -- COMMAND...
#
# With `router`: IPv4/IPv6 forwarding on and reverse-path filtering off (paths are
# asymmetric while routes change), before any interface (the daemon's TUN) is created.
# Then waits for each IFACE (containerlab attaches links after the node's command
# started; bounded to 60 s), gives it ADDR and brings it up, and finally execs COMMAND
# (the node's daemon), which keeps the pid.
set -eu

if [ "${1:-}" = router ]; then
    shift
    echo 1 >/proc/sys/net/ipv4/ip_forward
    echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
    echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter
    echo 0 >/proc/sys/net/ipv4/conf/default/rp_filter
fi

while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    ifc="${1%%=*}"
    addr="${1#*=}"
    shift
    n=0
    until ip link show dev "$ifc" >/dev/null 2>&1; do
        n=$((n + 1))
        if [ "$n" -gt 600 ]; then
            echo "node-init: interface $ifc did not appear within 60 s" >&2
            exit 1
        fi
        sleep 0.1
    done
    ip addr add "$addr" dev "$ifc"
    ip link set "$ifc" up
done
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "node-init: no command after --" >&2; exit 2; }
exec "$@"
