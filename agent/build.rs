// The shim binary is linked position-dependent: see src/bin/agent-shim.rs.
fn main() {
    println!("cargo:rustc-link-arg-bin=agent-shim=-no-pie");
}
