//! Compiles agent/v1/*.proto and the vendored CRI (cri/runtime/v1/api.proto) without a system protoc: protox parses them into a file
//! descriptor set, which tonic-prost-build turns into Rust and which we also embed for
//! gRPC server reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "agent/v1/container.proto",
        "agent/v1/image.proto",
        "agent/v1/system.proto",
        "agent/v1/group.proto",
        "agent/v1/network.proto",
        "agent/v1/volume.proto",
        // The Kubernetes CRI (package runtime.v1), served beside our own API.
        "cri/runtime/v1/api.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let bytes = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("agent_descriptor.bin"), bytes)?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
