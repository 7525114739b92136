//! Kubernetes pod metadata: the pure half (decoding a `PodList`, indexing it by IP and UID).
//! The HTTP half is `api.rs`.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// What a record says about a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodMeta {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.nodeName`.
    pub node: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Debug, Default, Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    cont: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Pod {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Debug, Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    node_name: Option<String>,
    #[serde(default)]
    host_network: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pod_ips: Vec<PodIp>,
    phase: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PodIp {
    ip: String,
}

/// One decoded pod: its metadata and the IPs that identify it (none for `hostNetwork` pods,
/// which share the node's addresses, and for finished pods, whose IPs may be reused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEntry {
    /// Metadata.
    pub meta: PodMeta,
    /// IPs owned by this pod alone.
    pub ips: Vec<IpAddr>,
}

/// One page of `GET /api/v1/pods`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPage {
    /// The pods.
    pub pods: Vec<PodEntry>,
    /// `metadata.continue`: the token of the next page.
    pub cont: Option<String>,
}

/// Decodes a `PodList`. Pods without a UID are dropped (nothing could find them).
pub fn parse_pod_list(body: &[u8]) -> Result<PodPage, serde_json::Error> {
    let list: PodList = serde_json::from_slice(body)?;
    let pods = list
        .items
        .into_iter()
        .filter(|p| !p.metadata.uid.is_empty())
        .map(|p| {
            let finished = matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed"));
            let mut ips: Vec<IpAddr> = Vec::new();
            if !p.spec.host_network && !finished {
                for ip in p.status.pod_ips.iter().map(|i| i.ip.as_str()).chain(p.status.pod_ip.as_deref()) {
                    if let Ok(ip) = ip.parse::<IpAddr>() {
                        let ip = super::procfs::canonical_ip(ip);
                        if !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                }
            }
            let meta = PodMeta {
                namespace: p.metadata.namespace,
                name: p.metadata.name,
                uid: p.metadata.uid,
                labels: p.metadata.labels.unwrap_or_default(),
                node: p.spec.node_name,
            };
            PodEntry { meta, ips }
        })
        .collect();
    Ok(PodPage { pods, cont: list.metadata.cont.filter(|c| !c.is_empty()) })
}

/// The pods of this node, by IP and by UID.
#[derive(Debug, Default)]
pub struct PodIndex {
    /// Pod IP → pod.
    pub by_ip: HashMap<IpAddr, Arc<PodMeta>>,
    /// Pod UID → pod.
    pub by_uid: HashMap<String, Arc<PodMeta>>,
}

impl PodIndex {
    /// Indexes at most `max_pods` pods; returns the index and how many did not fit.
    pub fn build(pods: Vec<PodEntry>, max_pods: usize) -> (PodIndex, usize) {
        let mut idx = PodIndex::default();
        let mut over = 0;
        for p in pods {
            if idx.by_uid.len() >= max_pods {
                over += 1;
                continue;
            }
            let meta = Arc::new(p.meta);
            for ip in p.ips {
                idx.by_ip.insert(ip, Arc::clone(&meta));
            }
            idx.by_uid.insert(meta.uid.clone(), meta);
        }
        (idx, over)
    }

    /// Pods indexed.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc"},"items":[
      {"metadata":{"name":"web-7d9f","namespace":"shop","uid":"7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d","labels":{"app":"web","tier":"front"}},
       "spec":{"nodeName":"n1","containers":[{"name":"web","image":"nginx"}]},
       "status":{"phase":"Running","podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"},{"ip":"fd00::5"}]}},
      {"metadata":{"name":"kube-proxy-x","namespace":"kube-system","uid":"11111111-2222-3333-4444-555555555555"},
       "spec":{"nodeName":"n1","hostNetwork":true},"status":{"phase":"Running","podIP":"192.168.0.10"}},
      {"metadata":{"name":"job-1","namespace":"batch","uid":"22222222-2222-3333-4444-555555555555"},
       "spec":{"nodeName":"n1"},"status":{"phase":"Succeeded","podIP":"10.244.1.9"}},
      {"metadata":{"name":"pending","namespace":"x","uid":"33333333-2222-3333-4444-555555555555"},"spec":{},"status":{"phase":"Pending"}},
      {"metadata":{"name":"no-uid","namespace":"x"}}
    ]}"#;

    #[test]
    fn decodes_pods_and_their_own_ips() {
        let page = parse_pod_list(LIST.as_bytes()).expect("parse");
        assert_eq!(page.cont.as_deref(), Some("abc"));
        assert_eq!(page.pods.len(), 4);
        let web = &page.pods[0];
        assert_eq!(web.meta.namespace, "shop");
        assert_eq!(web.meta.labels.get("tier").map(String::as_str), Some("front"));
        assert_eq!(web.meta.node.as_deref(), Some("n1"));
        assert_eq!(web.ips, vec!["10.244.1.5".parse::<IpAddr>().expect("ip"), "fd00::5".parse().expect("ip")]);
        assert!(page.pods[1].ips.is_empty(), "hostNetwork pods share the node's IP");
        assert!(page.pods[2].ips.is_empty(), "finished pods' IPs may be reused");
        assert!(page.pods[3].ips.is_empty());
        let (idx, over) = PodIndex::build(page.pods, 2);
        assert_eq!((idx.len(), over), (2, 2));
        assert_eq!(idx.by_ip.len(), 2);
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(parse_pod_list(b"").is_err());
        assert!(parse_pod_list(b"{\"items\": 3}").is_err());
        assert!(parse_pod_list(b"{\"items\": [{\"metadata\": 1}]}").is_err());
        assert_eq!(parse_pod_list(b"{}").expect("empty").pods.len(), 0);
        for cut in 0..LIST.len() - 1 {
            assert!(parse_pod_list(&LIST.as_bytes()[..cut]).is_err());
        }
    }
}
