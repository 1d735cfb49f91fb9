fn main() { eprintln!("wgrctl: the gRPC API is not built yet (issue 3)"); std::process::exit(2) }
