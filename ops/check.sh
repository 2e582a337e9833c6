#!/usr/bin/env bash
# Validates what of the operations kit can be validated without a cluster or a Docker
# engine: rule syntax and rule unit tests (promtool), YAML and JSON syntax, and the
# systemd unit (systemd-analyze, when present). Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts_test.yml
python3 - <<'PY'
import json, sys, yaml
for path in ["kubernetes/sidecar-sqlite.yaml", "kubernetes/deployment-postgres.yaml", "prometheus/alerts.yml"]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    print(f"{path}: {len(docs)} YAML document(s)")
json.load(open("grafana/certhook.json"))
print("grafana/certhook.json: valid JSON")
PY
if command -v systemd-analyze >/dev/null; then
  # verify needs the ExecStart binary to exist; point it at a placeholder copy of the unit.
  tmp=$(mktemp -d)
  sed "s#/usr/local/bin/certhook#/bin/true#" systemd/certhook.service > "$tmp/certhook.service"
  out=$(systemd-analyze verify "$tmp/certhook.service" 2>&1 || true)
  if echo "$out" | grep -E "Unknown (key|section)|Invalid|bad-setting|Failed to parse"; then
    echo "systemd unit has errors" >&2
    exit 1
  fi
  echo "systemd/certhook.service: verified"
  rm -rf "$tmp"
fi
echo "ops kit: OK"
