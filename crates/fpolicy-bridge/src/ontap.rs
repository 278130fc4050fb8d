//! fpolicy-bridge's use of the ONTAP control plane: settings from
//! `[ontap]`, the `ontap` commands, self-registration in `serve`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fpolicy_event::EngineType;
use fpolicy_ontap::types::{FileOperations, PersistentStore};
use fpolicy_ontap::{Control, Endpoint, OntapClient, OntapError, Registration, ServerChange};

use crate::config::{Config, TlsMode};
use crate::metrics::Metrics;

/// The password from the environment variable or the file.
pub fn password(cfg: &Config) -> Result<String, OntapError> {
    let o = &cfg.ontap;
    if !o.password_file.as_os_str().is_empty() {
        return std::fs::read_to_string(&o.password_file)
            .map(|p| p.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| {
                OntapError::Config(format!(
                    "ontap.password_file {}: {e}",
                    o.password_file.display()
                ))
            });
    }
    std::env::var(&o.password_env).map_err(|_| {
        OntapError::Config(format!("the ONTAP password: set the environment variable {} (ontap.password_env) or ontap.password_file", o.password_env))
    })
}

pub fn endpoint(cfg: &Config) -> Result<Endpoint, OntapError> {
    let o = &cfg.ontap;
    if o.cluster_url.is_empty() {
        return Err(OntapError::Config(
            "set ontap.cluster_url (or --cluster-url)".into(),
        ));
    }
    let from_env = |var: &str, what: &str| {
        std::env::var(var).map_err(|_| {
            OntapError::Config(format!("{what}: the environment variable {var} is not set"))
        })
    };
    let username = if o.username_env.is_empty() {
        o.username.clone()
    } else {
        from_env(&o.username_env, "ontap.username_env")?
    };
    let ca_pem = if o.ca_bundle_pem_env.is_empty() {
        None
    } else {
        Some(from_env(&o.ca_bundle_pem_env, "ontap.ca_bundle_pem_env")?)
    };
    Ok(Endpoint {
        url: o.cluster_url.clone(),
        username,
        password: password(cfg)?,
        ca_bundle: (!o.ca_bundle.as_os_str().is_empty()).then(|| o.ca_bundle.clone()),
        ca_pem,
        insecure: o.insecure,
        timeout: o.timeout.max(Duration::from_secs(1)),
    })
}

fn operations(ops: &[fpolicy_event::Operation]) -> FileOperations {
    use fpolicy_event::Operation as O;
    let has = |o: O| ops.contains(&o);
    FileOperations {
        create: has(O::Create),
        create_dir: has(O::CreateDir),
        delete: has(O::Delete),
        delete_dir: has(O::DeleteDir),
        rename: has(O::Rename),
        rename_dir: has(O::RenameDir),
        write: has(O::Write),
        close: has(O::Close),
        read: has(O::Read),
        open: has(O::Open),
        setattr: has(O::Setattr),
        getattr: has(O::Getattr),
        link: has(O::Link),
        symlink: has(O::Symlink),
        lookup: has(O::Lookup),
    }
}

/// What `register` makes ONTAP look like.
pub fn registration(cfg: &Config) -> Registration {
    let o = &cfg.ontap;
    let listen_port = cfg.server.listen.port();
    Registration {
        svm: o.svm.clone(),
        policy: o.policy.clone(),
        engine: o.engine.clone(),
        event_prefix: o.event_prefix.clone(),
        port: if o.port == 0 { listen_port } else { o.port },
        protocols: o.protocols.clone(),
        operations: operations(&o.operations),
        volumes: o.volumes.clone(),
        engine_type: match cfg.engine_for(&o.policy) {
            EngineType::Synchronous => "synchronous",
            EngineType::Asynchronous => "asynchronous",
        }
        .into(),
        ssl_option: match cfg.server.tls.mode {
            TlsMode::Off => "no_auth",
            TlsMode::ServerAuth => "server_auth",
            TlsMode::MutualAuth => "mutual_auth",
        }
        .into(),
        mandatory: o.mandatory,
        priority: o.priority,
        keep_alive_interval: format!("PT{}S", o.keep_alive_interval.as_secs()),
        send_buffer: o.send_buffer_bytes,
        persistent_store: (!o.persistent_store.is_empty()).then(|| PersistentStore {
            name: o.persistent_store.clone(),
            volume: Some(o.persistent_store_volume.clone()),
        }),
    }
}

pub async fn control(cfg: &Config) -> Result<Control, OntapError> {
    Control::connect(OntapClient::new(&endpoint(cfg)?)?, registration(cfg)).await
}

/// `host:port` of the cluster URL (for the route-based address).
fn cluster_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:443")
    }
}

/// Self-registration: adds this instance to the engine's primary servers,
/// retrying with backoff (state in `/readyz`), then keeps pruning servers
/// that are disconnected everywhere when configured. Returns the
/// registered address through `registered` for removal at shutdown.
pub async fn self_register(
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    registered: Arc<std::sync::Mutex<Option<IpAddr>>>,
) {
    let mut backoff = crate::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let cluster = cluster_host(&cfg.ontap.cluster_url);
    let (control, addr) = loop {
        let attempt = async {
            let (ip, source) = fpolicy_ontap::advertise::advertise_address(
                Some(&cfg.ontap.advertise_address),
                &cluster,
            )
            .await?;
            let control = control(&cfg).await?;
            let changes = control
                .register(&ServerChange::Add(vec![ip.to_string()]))
                .await?;
            tracing::info!(address = %ip, ?source, ?changes, "registered with ONTAP");
            Ok::<_, OntapError>((control, ip))
        };
        match attempt.await {
            Ok(ok) => break ok,
            Err(e) => {
                metrics
                    .readiness
                    .set_registration(crate::metrics::Registration::Pending, Some(e.to_string()));
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "ONTAP registration failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    };
    *registered.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    metrics
        .readiness
        .set_registration(crate::metrics::Registration::Registered, None);
    let timeout = cfg.ontap.connect_timeout;
    match control.wait_connected(&[addr.to_string()], timeout).await {
        Ok(conns) => tracing::info!(
            connections = conns.len(),
            "every ONTAP node connected to this instance"
        ),
        Err(e) => tracing::warn!(error = %e, "not every node connected yet"),
    }
    if !cfg.ontap.prune_disconnected.is_zero() {
        prune_loop(&control, addr, cfg.ontap.prune_disconnected).await;
    }
}

/// Removes primary servers that every node has reported disconnected for
/// longer than `after` (never this instance).
async fn prune_loop(control: &Control, me: IpAddr, after: Duration) {
    let mut down_since: std::collections::HashMap<String, std::time::Instant> = Default::default();
    loop {
        tokio::time::sleep(Duration::from_secs(15).min(after)).await;
        let (Ok(Some(engine)), Ok(conns)) = (control.engine().await, control.connections().await)
        else {
            continue;
        };
        let now = std::time::Instant::now();
        let mut doomed = Vec::new();
        for s in engine.primary_servers.unwrap_or_default() {
            let mine = conns.iter().filter(|c| c.server == s).collect::<Vec<_>>();
            let down = !mine.is_empty() && mine.iter().all(|c| c.state != "connected");
            if !down || s == me.to_string() {
                down_since.remove(&s);
                continue;
            }
            let since = *down_since.entry(s.clone()).or_insert(now);
            if now.duration_since(since) >= after {
                doomed.push(s);
            }
        }
        if !doomed.is_empty() {
            match control
                .change_servers(&ServerChange::Remove(doomed.clone()))
                .await
            {
                Ok(_) => {
                    tracing::warn!(servers = ?doomed, "pruned servers disconnected on every node")
                }
                Err(e) => tracing::error!(error = %e, "pruning servers failed"),
            }
        }
    }
}

/// Graceful stop: take this instance out of the engine first, so ONTAP
/// sends to the others.
pub async fn deregister(cfg: &Config, addr: IpAddr) {
    let result = async {
        let control = control(cfg).await?;
        control
            .change_servers(&ServerChange::Remove(vec![addr.to_string()]))
            .await
    };
    match tokio::time::timeout(cfg.ontap.timeout.max(Duration::from_secs(1)), result).await {
        Ok(Ok(_)) => tracing::info!(address = %addr, "removed this instance from the ONTAP engine"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not remove this instance from the ONTAP engine")
        }
        Err(_) => tracing::error!("removing this instance from the ONTAP engine timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_host_forms() {
        assert_eq!(
            cluster_host("https://cluster1.example.com"),
            "cluster1.example.com:443"
        );
        assert_eq!(cluster_host("https://10.0.0.5:8443/"), "10.0.0.5:8443");
        assert_eq!(cluster_host("https://[fd00::5]"), "[fd00::5]:443");
    }
}
