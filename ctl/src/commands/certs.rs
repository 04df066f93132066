//! `certs init|client`: a CA and certificates for mutual TLS (local files only).

use crate::certs;
use crate::cli::CertsCmd;
use crate::error::Res;

/// `certs …`.
pub fn run(cmd: CertsCmd) -> Res<u8> {
    match cmd {
        CertsCmd::Init { dir, host_name } => {
            certs::init(&dir, &host_name)?;
            let d = std::fs::canonicalize(&dir)?;
            let d = d.display();
            println!("CA, server and client certificates written to {d}");
            println!("Start the agent:");
            println!(
                "  agentd --listen tcp://0.0.0.0:7443 --tls-cert {d}/server.pem --tls-key {d}/server-key.pem \\\n         --tls-client-ca {d}/ca.pem"
            );
            println!("Talk to it (role admin; operator.pem and viewer.pem are also there):");
            println!(
                "  agentctl --host tcp://127.0.0.1:7443 --tlscacert {d}/ca.pem --tlscert {d}/admin.pem --tlskey {d}/admin-key.pem info"
            );
        }
        CertsCmd::Client { dir, role, days, expired, name } => {
            certs::client(&dir, &name, role, days, expired)?;
            println!("{}", dir.join(format!("{name}.pem")).display());
        }
    }
    Ok(0)
}
