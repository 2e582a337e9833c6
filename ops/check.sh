#!/usr/bin/env bash
# Validates what of the operations kit can be validated without a cluster or a Docker
# engine: rule syntax and rule unit tests (promtool), YAML and JSON syntax, the systemd
# unit (systemd-analyze) and the Go receiver snippet (go test). Run by .ci/run.
#
# With CI=true every check is required: a missing tool fails the run. Outside CI a check
# whose tool is missing prints a "skipped: …" line instead (and the rest still runs).
set -euo pipefail
cd "$(dirname "$0")"

ci=false
[ "${CI:-}" = true ] && ci=true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a check that needs $1, or fails (CI) / says it skipped (elsewhere) when $1 is missing.
need() {
  command -v "$1" >/dev/null && return 0
  if $ci; then
    echo "ops/check.sh: CI=true and $1 is not installed (needed for $2)" >&2
    exit 1
  fi
  echo "skipped: $2 ($1 is not installed)"
  return 1
}

if need promtool "the Prometheus rules"; then
  promtool check rules prometheus/alerts.yml
  promtool test rules prometheus/alerts_test.yml
fi

# The first python3 that has PyYAML: a pyenv shim on PATH may not see Debian's python3-yaml.
python=
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import yaml" 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "ops/check.sh: no python3 with PyYAML (tried python3 and /usr/bin/python3;" \
    "install Debian's python3-yaml)" >&2
  exit 1
fi
"$python" - <<'PY'
import json, sys, yaml
for path in ["kubernetes/sidecar-sqlite.yaml", "kubernetes/deployment-postgres.yaml", "prometheus/alerts.yml"]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    print(f"{path}: {len(docs)} YAML document(s)")
json.load(open("grafana/certhook.json"))
print("grafana/certhook.json: valid JSON")

# The Kubernetes manifests must start and stay up under the restricted Pod Security
# Standard: every property below once kept a pod from running (issue 18).
def fail(path, why):
    sys.exit(f"{path}: {why}")

def port_of(listen):
    host, port = listen.rsplit(":", 1)
    return host.strip("[]"), int(port)

kinds = {}
for path in ["kubernetes/sidecar-sqlite.yaml", "kubernetes/deployment-postgres.yaml"]:
    for doc in (d for d in yaml.safe_load_all(open(path)) if d):
        kinds.setdefault(path, []).append(doc["kind"])
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        if pod.get("enableServiceLinks") is not False:
            fail(path, "enableServiceLinks must be false (a Service named certhook injects CERTHOOK_* variables)")
        if pod.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(path, "the pod needs seccompProfile RuntimeDefault (restricted Pod Security Standard)")
        certhook = [c for c in pod["containers"] if c["name"] == "certhook"][0]
        env = {e["name"]: e.get("value") for e in certhook.get("env", [])}
        served = {}  # port -> host it is served on
        for key in ["CERTHOOK_LISTEN", "CERTHOOK_METRICS_LISTEN"]:
            if env.get(key):
                host, port = port_of(env[key])
                served[port] = host
        reachable = {p for p, h in served.items() if h not in ("127.0.0.1", "::1", "localhost")}
        for probe in ["readinessProbe", "livenessProbe"]:
            port = certhook[probe]["httpGet"]["port"]
            if port not in reachable:
                fail(path, f"{probe} port {port} is not served on the pod's address (served: {served})")
        scrape = int(doc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
        if scrape not in reachable:
            fail(path, f"prometheus.io/port {scrape} is not served on the pod's address")
        sc = certhook.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem"):
            mounts = {m["mountPath"] for m in certhook.get("volumeMounts", [])}
            if "/tmp" not in mounts:
                fail(path, "a read-only root filesystem needs a writable /tmp (emptyDir)")
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(path, "the container must drop all capabilities and forbid privilege escalation")
if "PodDisruptionBudget" not in kinds["kubernetes/deployment-postgres.yaml"]:
    fail("kubernetes/deployment-postgres.yaml", "the PostgreSQL deployment needs a PodDisruptionBudget")
print("kubernetes manifests: probes and scrape reachable, service links off, seccomp, /tmp, PDB")
PY

# The unit's --config file is the repository's annotated example, installed as the
# install comment says; a unit that names a file the repository does not ship never starts.
config=$(sed -n 's#^ExecStart=.*--config \([^ ]*\).*#\1#p' systemd/certhook.service)
if ! grep -q "install -D -m 0644 certhook.example.toml $config" systemd/certhook.service || [ ! -f ../certhook.example.toml ]; then
  echo "systemd/certhook.service: its --config $config is not installed from certhook.example.toml" >&2
  exit 1
fi
echo "systemd/certhook.service: --config $config comes from certhook.example.toml"

if need systemd-analyze "the systemd unit check"; then
  # verify needs the ExecStart binary to exist; point it at a placeholder copy of the unit.
  # It exits 0 on most unit-file problems (it only warns), so its output is checked too.
  sed "s#/usr/local/bin/certhook#/bin/true#" systemd/certhook.service > "$tmp/certhook.service"
  rc=0
  out=$(systemd-analyze verify "$tmp/certhook.service" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] || echo "$out" | grep -E "Unknown (key|section)|Invalid|bad-setting|Failed to parse"; then
    echo "$out" >&2
    echo "systemd unit has errors (systemd-analyze verify exited $rc)" >&2
    exit 1
  fi
  echo "systemd/certhook.service: verified"
fi

if need go "the Go receiver snippet's test"; then
  # Standard library only: nothing may be downloaded (no toolchain switch, no proxy).
  export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-buildvcs=false
  # Without a usable HOME-based cache, build in the temporary directory.
  gocache=$(go env GOCACHE 2>/dev/null || true)
  if [ -z "$gocache" ] || [ "$gocache" = off ] || ! mkdir -p "$gocache" 2>/dev/null || [ ! -w "$gocache" ]; then
    export GOCACHE="$tmp/go-cache"
  fi
  if [ -z "$(go env GOPATH 2>/dev/null || true)" ]; then
    export GOPATH="$tmp/go"
  fi
  (cd receivers && go vet ./... && go test -count=1 ./...)
fi
echo "ops kit: OK"
