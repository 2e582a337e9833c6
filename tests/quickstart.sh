#!/usr/bin/env bash
# Runs the README's quickstart block as it is written (between the quickstart markers), in
# a scratch directory: a new user's first signed delivery, proved on every CI run. The only
# change: `cargo install` goes to a scratch root and reuses this checkout's debug build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

block=$(awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on' "$repo/README.md" |
  sed -e '/^```/d')
[ -n "$block" ] || { echo "quickstart: no block between the markers in README.md" >&2; exit 1; }
# The install line, pointed at a scratch root and this checkout's build.
block=$(printf '%s\n' "$block" |
  sed -e "s#^cargo install --path crates/certhook --locked#cargo install --quiet --path '$repo/crates/certhook' --locked --debug --root '$tmp/root'#")

cd "$tmp"
export PATH="$tmp/root/bin:$PATH" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
for port in 8080 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "quickstart: port $port is taken; the README's commands need it free" >&2
    exit 1
  fi
done
printf '%s\n' "$block" > quickstart-block.sh
# Bounded: a step that never happens fails the run instead of hanging it.
if ! timeout 180 bash -euo pipefail -m quickstart-block.sh > out.txt 2>&1; then
  echo "quickstart: the README's block failed:" >&2
  cat out.txt >&2
  cat quickstart/serve.log >&2 2>/dev/null || true
  exit 1
fi
for expect in "x-infisical-signature: verified" "webhook-signature: verified" "activate with: certhook channel activate"; do
  grep -q "$expect" quickstart/listen.log || { echo "quickstart: listen.log lacks '$expect'" >&2; cat quickstart/listen.log >&2; exit 1; }
done
grep -q "delivered" out.txt || { echo "quickstart: deliveries list shows nothing delivered" >&2; cat out.txt >&2; exit 1; }
echo "quickstart: the README's first delivery was received and verified"
