#!/bin/sh
# Runs BIRD 2 in the foreground with CONF, for the lab topologies:
#
#   bird-start.sh CONF
#
# Its control socket is BIRD's default, /run/bird/bird.ctl, in the node's own /run (a
# container's, or the private /run wgrd-lab mounts per node), so a plain `birdc show
# ospf neighbors` inside the node talks to this node's BIRD. The configuration is
# checked first so a mistake fails the node's start with BIRD's message. BIRD's log
# goes where the config says (`log stderr all;` puts it in the node's log).
set -eu
[ $# -eq 1 ] || { echo "usage: bird-start.sh CONF" >&2; exit 2; }
conf="$1"
mkdir -p /run/bird
bird -p -c "$conf"
exec bird -f -c "$conf" -s /run/bird/bird.ctl -P /run/bird/bird.pid
