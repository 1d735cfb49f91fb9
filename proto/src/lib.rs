//! wgrd-proto: the gRPC API of wgrd (package `wgrd.v1`), generated at build time from
//! `proto/wgrd/v1/wgrd.proto` by prost/tonic with protox (no system protoc).
//!
//! This crate holds only generated code and the encoded descriptor set for reflection;
//! the services are implemented in the daemon (`wgrd::control`), the CLI is `wgrctl`.

/// Package `wgrd.v1`: messages, `*_client` and `*_server` modules.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("wgrd.v1");
}

/// The encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/wgrd_descriptor.bin"));

/// The API's package name, as `Version` reports it.
pub const API: &str = "wgrd.v1";
