//! Which worker images an Uploader may run: an allowlist of registries (and
//! repository prefixes) from the operator's settings.
//!
//! A worker pod runs with the uploads of every tenant mounted and the servers'
//! credentials in its environment, so whoever can create an Uploader must not be able
//! to run an arbitrary image with them.

/// Docker Hub, as container runtimes complete a reference without a registry.
const DOCKER_HUB: &str = "docker.io";

/// The allowlist: `entries` as given (`ghcr.io/licenseware`, `registry.example.com`,
/// `*` for any image), or, when empty, the repository path of `default_image` (the
/// registry and organisation of the worker released with the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    prefixes: Vec<String>,
    any: bool,
}

impl ImagePolicy {
    pub fn new(entries: &[String], default_image: &str) -> Self {
        let entries: Vec<String> = entries
            .iter()
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        let any = entries.iter().any(|e| e == "*");
        let prefixes = if entries.is_empty() {
            let repository = normalize(default_image);
            let path = repository.split(['@', ':']).next().unwrap_or_default();
            // `ghcr.io/licenseware/licenseware-worker` → `ghcr.io/licenseware`.
            vec![path.rsplit_once('/').map_or(path, |(parent, _)| parent).to_owned()]
        } else {
            entries.iter().filter(|e| *e != "*").map(|e| normalize_prefix(e)).collect()
        };
        Self { prefixes, any }
    }

    /// The allowed prefixes, for messages and logs.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Whether `image` comes from an allowed registry: its normalized reference starts
    /// with an entry followed by `/` (so `ghcr.io/licenseware` does not allow
    /// `ghcr.io/licenseware-evil/...`).
    pub fn allows(&self, image: &str) -> bool {
        if self.any {
            return true;
        }
        let image = normalize(image);
        self.prefixes.iter().any(|prefix| {
            image.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// The condition message for a refused image.
    pub fn refusal(&self, image: &str) -> String {
        format!(
            "worker.image {image} is not from an allowed registry (allowed: {}); the \
             operator's --worker-image-registries lists them",
            self.prefixes.join(", ")
        )
    }
}

/// Whether the first path segment of a reference names a registry host.
fn has_registry(reference: &str) -> bool {
    reference.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    })
}

/// A reference as the runtime resolves it: `nginx` is `docker.io/library/nginx`,
/// `team/app` is `docker.io/team/app`. Registry hosts are case-insensitive.
fn normalize(reference: &str) -> String {
    let reference = reference.trim();
    if has_registry(reference) {
        let (host, rest) = reference.split_once('/').unwrap_or((reference, ""));
        return format!("{}/{rest}", host.to_ascii_lowercase());
    }
    if reference.contains('/') {
        format!("{DOCKER_HUB}/{reference}")
    } else {
        format!("{DOCKER_HUB}/library/{reference}")
    }
}

/// An allowlist entry: a registry host alone (`registry.example.com`) or a host and
/// path; a bare Docker Hub organisation (`team`) means `docker.io/team`.
fn normalize_prefix(entry: &str) -> String {
    let looks_like_host = !entry.contains('/')
        && (entry.contains('.') || entry.contains(':') || entry == "localhost");
    if looks_like_host || has_registry(entry) {
        let (host, rest) = entry.split_once('/').unwrap_or((entry, ""));
        let host = host.to_ascii_lowercase();
        if rest.is_empty() { host } else { format!("{host}/{rest}") }
    } else {
        format!("{DOCKER_HUB}/{entry}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "ghcr.io/licenseware/licenseware-worker:0.1.0";

    fn policy(entries: &[&str]) -> ImagePolicy {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        ImagePolicy::new(&entries, DEFAULT)
    }

    #[test]
    fn empty_allows_only_the_default_images_registry_and_organisation() {
        let p = policy(&[]);
        assert_eq!(p.prefixes(), ["ghcr.io/licenseware"]);
        assert!(p.allows(DEFAULT));
        assert!(p.allows("ghcr.io/licenseware/custom-worker@sha256:abc"));
        assert!(p.allows("GHCR.io/licenseware/custom-worker:1"));
        assert!(!p.allows("ghcr.io/licenseware-evil/worker:1"), "a prefix is a whole segment");
        assert!(!p.allows("ghcr.io/other/worker:1"));
        assert!(!p.allows("busybox"));
        assert!(!p.allows("evil.example.com/ghcr.io/licenseware/worker"));
        assert!(p.refusal("busybox").contains("allowed: ghcr.io/licenseware"));
    }

    #[test]
    fn entries_are_registries_or_repository_prefixes() {
        let p = policy(&["registry.example.com", "ghcr.io/licenseware/", "team"]);
        assert!(p.allows("registry.example.com/any/thing:1"));
        assert!(!p.allows("registry.example.com.evil.io/x:1"));
        assert!(p.allows("ghcr.io/licenseware/w:1"));
        assert!(p.allows("team/app:1"), "Docker Hub organisation");
        assert!(p.allows("docker.io/team/app:1"));
        assert!(!p.allows("teamx/app:1"));
        assert!(!p.allows("app:1"), "docker.io/library is not allowed");
        assert!(!p.allows(DEFAULT.replace("licenseware/", "x/").as_str()));
        let local = policy(&["localhost:5000"]);
        assert!(local.allows("localhost:5000/worker:dev"));
        assert!(!local.allows("localhost:5001/worker:dev"));
    }

    #[test]
    fn a_star_allows_every_image() {
        assert!(policy(&["*"]).allows("busybox"));
    }
}
