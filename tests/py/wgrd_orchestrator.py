#!/usr/bin/env python3
"""A non-Rust client of wgrd's gRPC API, as an orchestration tool would drive it.

Generates the Python stubs from wgrd.proto with grpc_tools.protoc, then over the daemon's
Unix socket: Version; Tunnels.List; GetConfig; ApplyConfig of the running TOML plus one
new tunnel; Tunnels.List again (the new tunnel is there, the old one kept its counters);
Tunnels.Get of the new one; an invalid ApplyConfig (INVALID_ARGUMENT listing the field,
nothing changed). Prints one line per step; exits non-zero on the first failure.

Usage: wgrd_orchestrator.py SOCKET PROTO_ROOT OUT_DIR
  PROTO_ROOT: the directory holding wgrd/v1/wgrd.proto (proto/proto in the repository)
  OUT_DIR:    an empty scratch directory for the generated modules

Needs: pip install grpcio grpcio-tools (nothing else).
"""

import base64
import os
import sys


def generate_stubs(proto_root, out_dir):
    from grpc_tools import protoc

    try:  # the well-known types shipped with grpc_tools
        from importlib.resources import files

        include = str(files("grpc_tools") / "_proto")
    except Exception:  # pragma: no cover - old Pythons
        import pkg_resources

        include = pkg_resources.resource_filename("grpc_tools", "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "wgrd/v1/wgrd.proto",
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")
    sys.path.insert(0, out_dir)


def step(msg):
    print(f"py: {msg}", flush=True)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    socket, proto_root, out_dir = sys.argv[1:]
    generate_stubs(proto_root, out_dir)

    import grpc
    from wgrd.v1 import wgrd_pb2 as pb
    from wgrd.v1 import wgrd_pb2_grpc as rpc

    timeout = 10
    # grpc-core sends the socket path as :authority for unix: targets, which is not a
    # valid HTTP/2 authority (the server resets the stream); say "localhost" as Go does.
    channel = grpc.insecure_channel(
        f"unix:{os.path.abspath(socket)}",
        options=[("grpc.default_authority", "localhost")],
    )
    grpc.channel_ready_future(channel).result(timeout=timeout)
    system = rpc.SystemStub(channel)
    tunnels = rpc.TunnelsStub(channel)

    v = system.Version(pb.VersionRequest(), timeout=timeout)
    assert v.api == "wgrd.v1", v
    step(f"version {v.version} api {v.api}")

    before = tunnels.List(pb.ListTunnelsRequest(), timeout=timeout).tunnels
    names = sorted(t.name for t in before)
    step(f"tunnels before: {names}")
    assert names == ["to-r2"], names

    running = system.GetConfig(pb.GetConfigRequest(), timeout=timeout)
    assert "(redacted)" in running.toml or "private-key-file" in running.toml
    peer = base64.b64encode(os.urandom(32)).decode()
    desired = running.toml + (
        "\n[[tunnel]]\n"
        'name = "from-python"\n'
        f'peer-public-key = "{peer}"\n'
        'addresses = ["169.254.9.0/31"]\n'
        "mtu = 1380\n"
    )
    dry = system.ApplyConfig(
        pb.ApplyConfigRequest(input=pb.ConfigInput(toml=desired), dry_run=True),
        timeout=timeout,
    )
    step(f"dry run: {dry.summary}".replace("\n", " "))
    assert list(dry.summary.tunnels_added) == ["from-python"], dry.summary
    after_dry = sorted(
        t.name for t in tunnels.List(pb.ListTunnelsRequest(), timeout=timeout).tunnels
    )
    assert after_dry == names, f"dry run changed the tunnels: {after_dry}"

    applied = system.ApplyConfig(
        pb.ApplyConfigRequest(input=pb.ConfigInput(toml=desired)), timeout=timeout
    )
    step(f"applied: {applied.summary}".replace("\n", " "))
    assert list(applied.summary.tunnels_added) == ["from-python"], applied.summary
    assert not applied.summary.tunnels_replaced, applied.summary

    after = tunnels.List(pb.ListTunnelsRequest(), timeout=timeout).tunnels
    by_name = {t.name: t for t in after}
    step(f"tunnels after: {sorted(by_name)}")
    assert sorted(by_name) == ["from-python", "to-r2"], sorted(by_name)
    new = by_name["from-python"]
    assert new.peer_public_key == peer, new
    assert list(new.addresses) == ["169.254.9.0/31"], new.addresses
    assert new.mtu == 1380, new.mtu

    got = tunnels.Get(pb.GetTunnelRequest(name="from-python"), timeout=timeout)
    assert got.name == "from-python"
    step(f"get from-python: peer {got.peer_public_key[:8]}... mtu {got.mtu}")

    # A bad change is refused as a whole, every problem named by its field.
    bad = desired + (
        "\n[[tunnel]]\n"
        'name = "from-python"\n'
        'peer-public-key = "not a key"\n'
    )
    try:
        system.ApplyConfig(
            pb.ApplyConfigRequest(input=pb.ConfigInput(toml=bad)), timeout=timeout
        )
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert "tunnel[3]" in e.details(), e.details()
        step(f"invalid apply refused: {e.code().name}: {e.details()!r}")
    else:
        raise AssertionError("an invalid config was applied")
    final = sorted(
        t.name for t in tunnels.List(pb.ListTunnelsRequest(), timeout=timeout).tunnels
    )
    assert final == ["from-python", "to-r2"], final
    step("OK")


if __name__ == "__main__":
    main()
