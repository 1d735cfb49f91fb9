//! The configs the harness renders must be what the daemon accepts: every field the
//! namespace tests use goes through `wgrd check -c`. Needs no root and no namespaces
//! (only the `wgrd` binary, built on demand), so it runs in a plain `cargo test`.

use anyhow::{bail, Result};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use wgrd_tests::wgrd::wgrd_bin;
use wgrd_tests::{Keypair, WgrdConf, WgrdTunnel};

/// Test-only key pairs, so this test needs no `wg` installed.
fn fixed_keys() -> (Keypair, Keypair, Keypair) {
    // From `wg genkey | tee k | wg pubkey`.
    let k = |private: &str, public: &str| Keypair {
        private: private.into(),
        public: public.into(),
    };
    (
        k(
            "aAnMB/ASofkPZpB49s7jfNOVXZUtE7/AA1+4qSNTFEE=",
            "Cnnvk59xwYdslZxYVsnXBuDMgG77fbIzNwhtPL6TglM=",
        ),
        k(
            "qIz8+ids7AqCcN4qqELJp0/8Z5873L9VI26xJN3z00o=",
            "5h/2eU3rSLtBLh6BvDPqafdf+ytscrYPH2ZAXQymxVY=",
        ),
        k(
            "WK2URFvAtvi82uE/voUP/8LWSuQr2Q1BOstI/2mCS1Q=",
            "XpPQV3BebRhFmOpk/t5vpr2Bg4wjCrNmwas+ExX4zAU=",
        ),
    )
}

#[test]
fn rendered_configs_pass_wgrd_check() -> Result<()> {
    let (ka, kb, kc) = fixed_keys();
    let conf = WgrdConf::new("10.255.0.1", &ka)
        .export_routes(true)
        .tunnel(
            WgrdTunnel::new("to-rB", &kb.public, Some("192.168.77.2:51820"))
                .addresses(&["169.254.0.0/31"])
                .keepalive(25),
        )
        .tunnel(WgrdTunnel::new("to-rC", &kc.public, None).addresses(&["169.254.1.0/31"]))
        .route("10.2.0.0/24", "to-rB")
        .route("10.3.0.0/24", "to-rC")
        .route("10.0.0.0/8", "blackhole")
        .route("10.1.0.0/24", "host");
    let bin = wgrd_bin()?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("r.key");
    std::fs::write(&key, format!("{}\n", ka.private))?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    let file = dir.path().join("wgrd.toml");
    std::fs::write(&file, conf.to_toml(&key))?;
    let out = Command::new(&bin)
        .arg("check")
        .arg("-c")
        .arg(&file)
        .output()?;
    if !out.status.success() {
        bail!(
            "wgrd check refused the harness config:\n{}\n{}\nconfig:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            conf.to_toml(&key)
        );
    }
    Ok(())
}
