#!/bin/sh
# Runs FRR's zebra and ospfd for the lab topologies, as the `frr` user (FRR refuses to
# run its daemons as root):
#
#   frr-start.sh DIR
#
# DIR holds zebra.conf and ospfd.conf (FRR's own config language). They are copied to
# /run/frr, the node's own /run (a container's, or the private one wgrd-lab mounts per
# node), owned by frr: the node's files may sit where that user cannot read them. The
# pid files, the zserv socket and the vty sockets are FRR's defaults in /run/frr, so a
# plain `vtysh -c 'show ip ospf neighbor'` inside the node talks to this node's FRR.
# zebra runs in the background (log /run/frr/zebra.log); once its zserv socket is there
# (bounded to 15 s) ospfd replaces this script in the foreground, logging to stdout.
set -eu
[ $# -eq 1 ] || { echo "usage: frr-start.sh DIR" >&2; exit 2; }
src="$1"
lib=/usr/lib/frr
run=/run/frr
mkdir -p "$run"
chown frr:frr "$run"
chmod 755 "$run"
for f in zebra.conf ospfd.conf; do
    cp "$src/$f" "$run/$f"
    chown frr:frr "$run/$f"
    chmod 640 "$run/$f"
done
# The daemons keep the working directory; make it one the frr user can reach.
cd "$run"
common="-u frr -g frr -z $run/zserv.api --vty_socket $run -P 0"
# shellcheck disable=SC2086
"$lib/zebra" -d $common -f "$run/zebra.conf" -i "$run/zebra.pid" --log "file:$run/zebra.log"
n=0
until [ -S "$run/zserv.api" ]; do
    n=$((n + 1))
    if [ "$n" -gt 150 ]; then
        echo "frr-start: zebra did not open $run/zserv.api; its log:" >&2
        cat "$run/zebra.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
echo "frr-start: zebra up"
# shellcheck disable=SC2086
exec "$lib/ospfd" $common -f "$run/ospfd.conf" -i "$run/ospfd.pid" --log stdout
