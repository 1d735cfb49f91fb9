//! Compiles proto/wgrd/v1/*.proto with protox (pure Rust: no system protoc needed) and
//! generates the prost messages and tonic clients/servers from the descriptor set, which
//! is also kept (OUT_DIR/wgrd_descriptor.bin) for gRPC server reflection.

use prost::Message as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/wgrd/v1/wgrd.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("wgrd_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
