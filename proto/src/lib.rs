//! generated gRPC code (to be written)
