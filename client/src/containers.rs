//! Container verbs, each with its retry rule (see `retry.rs`). Creates are keyed by name:
//! the spec's hash rides along as a label, so a repeated create can tell its own earlier
//! container (same name, same hash: returned) from someone else's (AlreadyExists).

use crate::retry::Idempotency::{Idempotent, Once};
use crate::{pb, Client, Container, Created, Error, WaitFor};
use prost::Message;
use sha2::{Digest, Sha256};

/// The label holding the hash of the spec a container was created from ([`spec_hash`]).
pub const SPEC_HASH_LABEL: &str = "io.agentd.client.spec-hash";

/// A hash of everything in `spec` but the [`SPEC_HASH_LABEL`] label, the same for equal
/// specs whatever order their maps are in.
pub fn spec_hash(spec: &pb::ContainerSpec) -> String {
    let mut s = spec.clone();
    let mut labels: Vec<(String, String)> = std::mem::take(&mut s.labels).into_iter().collect();
    labels.retain(|(k, _)| k != SPEC_HASH_LABEL);
    let mut sysctls: Vec<(String, String)> = std::mem::take(&mut s.sysctls).into_iter().collect();
    let mut annotations: Vec<(String, String)> = std::mem::take(&mut s.annotations).into_iter().collect();
    // Without its maps the message encodes deterministically (fields in number order);
    // the maps go after it, sorted.
    let mut h = Sha256::new();
    h.update(s.encode_to_vec());
    for (tag, map) in [("labels", &mut labels), ("sysctls", &mut sysctls), ("annotations", &mut annotations)] {
        map.sort();
        h.update(tag.as_bytes());
        for (k, v) in map.iter() {
            for part in [k, v] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

impl Client {
    /// Creates a container (not started).
    ///
    /// With a name, it is safe to repeat, and repeated while the agent is unreachable: if a
    /// container of that name exists with the same spec (an earlier attempt whose reply was
    /// lost, or an earlier run of the caller), it is returned (`existed`); with another spec
    /// the call fails with AlreadyExists. Without a name the agent makes one up, so the
    /// create is sent once: a lost reply cannot be told from a refused create.
    pub async fn create(&self, mut spec: pb::ContainerSpec) -> Result<Created, Error> {
        let name = spec.name.trim_start_matches('/').to_string();
        if name.is_empty() {
            let r = self.create_once(spec).await?;
            return Ok(Created { id: r.id, warnings: r.warnings, existed: false });
        }
        let hash = spec_hash(&spec);
        spec.labels.insert(SPEC_HASH_LABEL.to_string(), hash.clone());
        let (spec, name, hash) = (&spec, &name, &hash);
        self.retry
            .run(Idempotent, |_| async move {
                match self.create_once(spec.clone()).await {
                    Ok(r) => Ok(Created { id: r.id, warnings: r.warnings, existed: false }),
                    Err(Error::AlreadyExists(msg)) => {
                        let c = self.inspect_once(name).await?;
                        if c.labels.get(SPEC_HASH_LABEL) == Some(hash) {
                            Ok(Created { id: c.id, warnings: Vec::new(), existed: true })
                        } else {
                            Err(Error::AlreadyExists(format!(
                                "{msg} (created from another spec than this one: spec hash {} against {hash})",
                                c.labels.get(SPEC_HASH_LABEL).map(String::as_str).unwrap_or("none")
                            )))
                        }
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn create_once(&self, spec: pb::ContainerSpec) -> Result<pb::CreateContainerResponse, Error> {
        let req = pb::CreateContainerRequest { spec: Some(spec) };
        Ok(self.containers().create(req).await?.into_inner())
    }

    /// Starts a created or exited container; a running one is left as it is (so it is
    /// repeated while the agent is unreachable).
    pub async fn start(&self, id: &str) -> Result<(), Error> {
        self.retry
            .run(Idempotent, |_| async move {
                self.containers().start(pb::StartContainerRequest { id: id.to_string() }).await?;
                Ok(())
            })
            .await
    }

    /// Stops a container (SIGTERM, SIGKILL after `timeout_seconds`, default 10). Idempotent.
    pub async fn stop(&self, id: &str, timeout_seconds: Option<u32>) -> Result<(), Error> {
        self.retry
            .run(Idempotent, |_| async move {
                let req = pb::StopContainerRequest { id: id.to_string(), timeout_seconds };
                self.containers().stop(req).await?;
                Ok(())
            })
            .await
    }

    /// Sends `signal` (a name or number; empty: KILL). Sent once: a signal is not idempotent.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), Error> {
        self.retry
            .run(Once, |_| async move {
                let req = pb::KillContainerRequest { id: id.to_string(), signal: signal.to_string() };
                self.containers().kill(req).await?;
                Ok(())
            })
            .await
    }

    /// Removes a container (`force`: a running one too). A repeat after a lost reply that
    /// finds no container is the earlier attempt's success.
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), Error> {
        self.retry
            .run(Idempotent, |attempt| async move {
                let req = pb::RemoveContainerRequest { id: id.to_string(), force, remove_volumes: false };
                match self.containers().remove(req).await.map_err(Error::from) {
                    Ok(_) => Ok(()),
                    Err(Error::NotFound(_)) if attempt > 0 => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// A container by ID, unique ID prefix or name.
    pub async fn inspect(&self, id: &str) -> Result<Container, Error> {
        self.retry.run(Idempotent, |_| self.inspect_once(id)).await
    }

    async fn inspect_once(&self, id: &str) -> Result<Container, Error> {
        let r = self.containers().inspect(pb::InspectContainerRequest { id: id.to_string() }).await?;
        r.into_inner()
            .container
            .map(Container::from)
            .ok_or_else(|| Error::Internal(format!("inspect {id}: empty answer")))
    }

    /// The containers (`all`: also created and exited ones).
    pub async fn list(&self, all: bool) -> Result<Vec<Container>, Error> {
        self.retry
            .run(Idempotent, |_| async move {
                let r = self.containers().list(pb::ListContainersRequest { all }).await?;
                Ok(r.into_inner().containers.into_iter().map(Container::from).collect())
            })
            .await
    }

    /// Blocks until `cond`: the container's exit (its exit code), or its health check
    /// passing (0). Repeated while the agent is unreachable (waiting changes nothing).
    pub async fn wait(&self, id: &str, cond: WaitFor) -> Result<i32, Error> {
        let (condition, fail_unhealthy) = match cond {
            WaitFor::Exit => ("", false),
            WaitFor::Healthy { fail_unhealthy } => ("healthy", fail_unhealthy),
        };
        self.retry
            .run(Idempotent, |_| async move {
                let req = pb::WaitContainerRequest { id: id.to_string(), condition: condition.into(), fail_unhealthy };
                Ok(self.containers().wait(req).await?.into_inner().exit_code)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_hash_ignores_map_order_and_its_own_label() {
        let mut a = pb::ContainerSpec { name: "web".into(), image: "local/busybox".into(), ..Default::default() };
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")] {
            a.labels.insert(k.into(), v.into());
        }
        let mut b = a.clone();
        // A map built in another order (a HashMap's iteration order differs between maps).
        let mut pairs: Vec<(String, String)> = a.labels.clone().into_iter().collect();
        pairs.sort();
        pairs.reverse();
        b.labels = std::collections::HashMap::new();
        for (k, v) in pairs {
            b.labels.insert(k, v);
        }
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.labels.insert(SPEC_HASH_LABEL.into(), "whatever".into());
        assert_eq!(spec_hash(&a), spec_hash(&b), "the hash label is not part of the hash");
        b.command = vec!["sleep".into(), "1".into()];
        assert_ne!(spec_hash(&a), spec_hash(&b));
        let mut c = a.clone();
        c.labels.insert("a".into(), "2".into());
        assert_ne!(spec_hash(&a), spec_hash(&c), "a label's value counts");
        let mut d = a.clone();
        d.sysctls.insert("a".into(), "1".into());
        d.labels.remove("a");
        assert_ne!(spec_hash(&a), spec_hash(&d), "a label is not a sysctl");
    }
}
