//! `agentctl certs`: a small CA for a test fleet, and server/client certificates signed by it
//! (rcgen), so mutual TLS takes two commands to set up.

use crate::cli::{self, Role};
use anyhow::Context;
use clap::ValueEnum;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Sets the validity to [today + `from_days`, today + `to_days`] (UTC dates).
pub fn set_validity(p: &mut CertificateParams, from_days: i64, to_days: i64) {
    use chrono::Datelike;
    let day = |off: i64| {
        let today = chrono::Utc::now().date_naive();
        let d = if off >= 0 {
            today.checked_add_days(chrono::Days::new(off as u64))
        } else {
            today.checked_sub_days(chrono::Days::new(off.unsigned_abs()))
        }
        .unwrap_or(today);
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    p.not_before = day(from_days);
    p.not_after = day(to_days);
}

/// A CA: its certificate (PEM) and the issuer that signs with its key.
pub struct Ca {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA private key, PEM.
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new self-signed CA valid for ten years.
    pub fn generate(name: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut p, -1, 3650);
        let cert = p.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Ca { cert_pem: cert.pem(), key_pem, issuer: Issuer::new(p, key) })
    }

    /// Loads a CA written by [`init`].
    pub fn load(dir: &Path) -> anyhow::Result<Ca> {
        let cert_pem = std::fs::read_to_string(dir.join("ca.pem"))
            .with_context(|| format!("read {}", dir.join("ca.pem").display()))?;
        let key_pem = std::fs::read_to_string(dir.join("ca-key.pem"))
            .with_context(|| format!("read {}", dir.join("ca-key.pem").display()))?;
        let key = KeyPair::from_pem(&key_pem).context("parse ca-key.pem")?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).context("parse ca.pem")?;
        Ok(Ca { cert_pem, key_pem, issuer })
    }

    /// Signs a server certificate for `names` (DNS names or IP addresses), valid for a year.
    pub fn server(&self, names: &[String]) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names.to_vec())?;
        p.distinguished_name.push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("agentd"));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut p, -1, 365);
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a client certificate `CN=cn, OU=role`, valid from `from_days` to `to_days`
    /// relative to today.
    pub fn client(&self, cn: &str, role: &str, from_days: i64, to_days: i64) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationalUnitName, role);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut p, from_days, to_days);
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// `agentctl certs init`: a CA, a server certificate for `hosts`, and one client certificate
/// per role (`admin.pem`, `operator.pem`, `viewer.pem`, each with its `-key.pem`) in `dir`.
pub fn init(dir: &Path, hosts: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    if dir.join("ca.pem").exists() {
        anyhow::bail!("{} already holds a CA (ca.pem); use `agentctl certs client` to sign more", dir.display());
    }
    let ca = Ca::generate("node-agent CA")?;
    write_new(&dir.join("ca.pem"), &ca.cert_pem, false)?;
    write_new(&dir.join("ca-key.pem"), &ca.key_pem, true)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str() {
            names.push(h.to_string());
        }
    }
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let (cert, key) = ca.server(&names)?;
    write_new(&dir.join("server.pem"), &cert, false)?;
    write_new(&dir.join("server-key.pem"), &key, true)?;
    for role in Role::value_variants() {
        let role = cli::name(role);
        let (cert, key) = ca.client(&role, &role, -1, 365)?;
        write_new(&dir.join(format!("{role}.pem")), &cert, false)?;
        write_new(&dir.join(format!("{role}-key.pem")), &key, true)?;
    }
    Ok(())
}

/// `agentctl certs client`: one more client certificate signed by the CA in `dir`.
pub fn client(dir: &Path, cn: &str, role: Role, days: i64, expired: bool) -> anyhow::Result<()> {
    if cn.is_empty() || cn.contains('/') || cn.starts_with('.') {
        anyhow::bail!("invalid client name {cn:?}: it names the files <name>.pem and <name>-key.pem");
    }
    if days <= 0 {
        anyhow::bail!("invalid --days {days}: must be at least 1");
    }
    let ca = Ca::load(dir)?;
    let (from, to) = if expired { (-30, -1) } else { (-1, days) };
    let (cert, key) = ca.client(cn, &cli::name(&role), from, to)?;
    write_new(&dir.join(format!("{cn}.pem")), &cert, false)?;
    write_new(&dir.join(format!("{cn}-key.pem")), &key, true)?;
    Ok(())
}

/// Writes `data` to `path`, with mode 0600 for private keys and 0644 for certificates;
/// never overwrites (a CA key lost by accident cannot be got back).
fn write_new(path: &Path, data: &str, private: bool) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(data.as_bytes()).with_context(|| format!("write {}", path.display()))
}
