# shellcheck shell=bash
# Shared helpers for the lab scripts (lab/demo, lab/bench-throughput): namespaces with a
# per-run prefix, veth links, sites, daemons, and a teardown that removes everything the
# run created (registered with `trap lab_teardown EXIT` by the caller).
#
# Safety: everything lives in namespaces named "$LAB_PREFIX*"; the host's own interfaces,
# routes and firewall are never touched. All waits are bounded.

LAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_PREFIX="wgrdlab-$$-"
LAB_TMP="$(mktemp -d /tmp/wgrdlab.XXXXXX)"
LAB_NODES=()

lab_log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
lab_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Full namespace name of a node.
ns() { printf '%s%s' "$LAB_PREFIX" "$1"; }
# Run a command inside node $1. (In the background, $! would be a subshell's pid: spawn
# daemons with nsenter directly instead.)
in_ns() { local n="$1"; shift; nsenter --net="/run/netns/$(ns "$n")" "$@"; }

lab_require_root() {
    [ "$(id -u)" -eq 0 ] || lab_die "run as root (network namespaces and TUN devices)"
    [ -c /dev/net/tun ] || lab_die "no /dev/net/tun"
}

# lab_require_tools "pkg:tool ..." : install missing Debian packages with apt-get.
lab_require_tools() {
    local missing=() pkg tool item
    for item in "$@"; do
        pkg="${item%%:*}"; tool="${item#*:}"
        command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 ||
        lab_die "missing packages: ${missing[*]} (and no apt-get to install them)"
    lab_log "installing missing Debian packages with apt-get: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# Build (release) and locate the wgrd binary; $WGRD_BIN overrides both.
lab_build_wgrd() {
    if [ -n "${WGRD_BIN:-}" ]; then WGRD="$WGRD_BIN"; return; fi
    lab_log "building wgrd (cargo build --release -p wgrd)"
    (cd "$LAB_ROOT" && cargo build --release -q -p wgrd --bin wgrd)
    local target="${CARGO_TARGET_DIR:-$LAB_ROOT/target}"
    case "$target" in /*) ;; *) target="$LAB_ROOT/$target" ;; esac
    WGRD="$target/release/wgrd"
    [ -x "$WGRD" ] || lab_die "built wgrd but $WGRD is missing"
}

lab_add() {
    ip netns add "$(ns "$1")"
    LAB_NODES+=("$1")
    ip -n "$(ns "$1")" link set lo up
}

lab_router() {
    lab_add "$1"
    in_ns "$1" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward
        echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
        echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter
        echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter'
}

# lab_link A IF_A B IF_B : a veth pair created directly inside both namespaces.
lab_link() {
    ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$3")" link set "$4" up
}

lab_addr() { ip -n "$(ns "$1")" addr add "$3" dev "$2"; }
lab_route() { local n="$1"; shift; ip -n "$(ns "$n")" route add "$@"; }

# lab_site ROUTER LAN N : LAN host 10.N.0.2/24 behind router 10.N.0.1/24.
lab_site() {
    lab_router "$1"; lab_add "$2"
    lab_link "$2" eth0 "$1" eth-lan
    lab_addr "$2" eth0 "10.$3.0.2/24"
    lab_addr "$1" eth-lan "10.$3.0.1/24"
    lab_route "$2" default via "10.$3.0.1"
}

# lab_wait SECONDS DESCRIPTION CMD... : poll every 0.1 s.
lab_wait() {
    local secs="$1" what="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "timed out after ${secs}s waiting for $what" >&2; return 1; }
        sleep 0.1
    done
}

# lab_start_wgrd NODE CONFIG : runs wgrd in NODE, log in $LAB_TMP/wgrd-NODE.log.
lab_start_wgrd() {
    local log="$LAB_TMP/wgrd-$1.log"
    # nsenter directly, not the in_ns function: $! must be the daemon's own pid.
    NO_COLOR=1 nsenter --net="/run/netns/$(ns "$1")" "$WGRD" run -c "$2" >"$log" 2>&1 &
    eval "WGRD_PID_$1=$!"
    if ! lab_wait 10 "wgrd on $1" ip -n "$(ns "$1")" link show dev wgrd0 up; then
        echo "wgrd on $1 did not come up; its log:" >&2
        cat "$log" >&2
        return 1
    fi
}

# lab_stop_wgrd NODE : SIGTERM and wait (bounded).
lab_stop_wgrd() {
    local var="WGRD_PID_$1" pid
    pid="${!var:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    eval "WGRD_PID_$1="
}

# lab_start_wggo NODE KEYFILE PORT ADDR PEER_PUB [ENDPOINT] : wireguard-go as wg0 in its own
# mount namespace (its UAPI socket dir /run/wireguard is otherwise shared by all namespaces).
lab_start_wggo() {
    local node="$1" key="$2" port="$3" addr="$4" peer="$5" ep="${6:-}" pid conf
    WG_PROCESS_FOREGROUND=1 nsenter --net="/run/netns/$(ns "$node")" unshare -m --propagation slave sh -c \
        'mount -t tmpfs wgrdlab /run && mkdir /run/wireguard && exec wireguard-go -f wg0' \
        >"$LAB_TMP/wggo-$node.log" 2>&1 &
    pid=$!
    eval "WGGO_PID_$node=$pid"
    lab_wait 10 "wireguard-go on $node" test -S "/proc/$pid/root/run/wireguard/wg0.sock" ||
        { cat "$LAB_TMP/wggo-$node.log" >&2; lab_die "wireguard-go on $node did not start"; }
    conf="$LAB_TMP/wggo-$node.conf"
    {
        printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n' "$(cat "$key")" "$port"
        printf '[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0, ::/0\n' "$peer"
        [ -n "$ep" ] && printf 'Endpoint = %s\n' "$ep"
    } >"$conf"
    nsenter -t "$pid" -m -n wg setconf wg0 "$conf"
    lab_addr "$node" wg0 "$addr"
    ip -n "$(ns "$node")" link set wg0 mtu 1420 up
}

lab_stop_wggo() {
    local var="WGGO_PID_$1" pid
    pid="${!var:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    eval "WGGO_PID_$1="
}

# lab_keypair NAME : $LAB_TMP/NAME.key (0600) and $LAB_TMP/NAME.pub.
lab_keypair() {
    (umask 077; "$WGRD" genkey >"$LAB_TMP/$1.key")
    "$WGRD" pubkey <"$LAB_TMP/$1.key" >"$LAB_TMP/$1.pub"
}

# lab_iperf CLIENT SERVER SERVER_ADDR SECONDS : prints receiver Gbit/s.
lab_iperf() {
    local client="$1" server="$2" addr="$3" secs="$4" spid out
    nsenter --net="/run/netns/$(ns "$server")" iperf3 -s -1 -B "$addr" >/dev/null 2>&1 &
    spid=$!
    lab_wait 5 "iperf3 server" sh -c "nsenter --net=/run/netns/$(ns "$server") ss -Hltn 'sport = :5201' | grep -q ."
    out="$(in_ns "$client" timeout $((secs + 20)) iperf3 -c "$addr" -t "$secs" -f g --connect-timeout 3000)" || true
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    # The receiver's summary line: "... 0.00-10.00 sec  1.2 GBytes  1.05 Gbits/sec  receiver".
    printf '%s\n' "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") v = $(i-1) }
        END { print (v == "" ? "0" : v) }'
}

# Kill everything inside our namespaces, delete them, remove temp files. Idempotent.
lab_teardown() {
    local n name pid
    for n in "${LAB_NODES[@]}"; do
        name="$(ns "$n")"
        # Daemons first, gracefully (so wgrd removes its TUN and routes), then the rest.
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 0.3
    for n in "${LAB_NODES[@]}"; do
        name="$(ns "$n")"
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$name" 2>/dev/null || true
    done
    LAB_NODES=()
    rm -rf "$LAB_TMP"
}
