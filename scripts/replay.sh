#!/usr/bin/env bash
# Replay AdmissionReview fixtures against a running webhook and show what it answered.
#
#   scripts/replay.sh [URL] [DIR]
#
# POSTs every *.review.json under DIR (recursively; default tests/fixtures) to URL (default
# https://127.0.0.1:8443/mutate), trusting the CA in $CACERT (default certs/ca.crt, which
# `sidecar-injector serve` generates on first start). For each fixture it prints the decision
# (allowed / denied and why), the warnings and the JSON patch decoded from base64.
# Exits 1 if any request fails (no answer, or an HTTP status other than 200).
# Needs bash, curl and python3 (only to decode JSON; $PYTHON picks another interpreter).
set -euo pipefail

URL=${1:-https://127.0.0.1:8443/mutate}
DIR=${2:-tests/fixtures}
CA=${CACERT:-certs/ca.crt}
PYTHON=${PYTHON:-python3}

die() { echo "replay.sh: $*" >&2; exit 2; }
command -v curl >/dev/null 2>&1 || die "curl is required"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON is required (set PYTHON to another interpreter)"
[[ -r $CA ]] || die "CA file $CA is not readable (set CACERT)"
[[ -d $DIR ]] || die "$DIR is not a directory"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Post everything first (one line per answer in $work/index: name, HTTP status, files), then
# decode all answers with a single python3 run.
count=0
while IFS= read -r -d '' file <&3; do
  count=$((count + 1))
  status=$(curl --silent --show-error --cacert "$CA" -H 'Content-Type: application/json' \
    --data-binary @"$file" -o "$work/$count.body" -w '%{http_code}' "$URL" 2>"$work/$count.err") || status=000
  printf '%s\t%s\t%s\n' "${file#"$DIR"/}" "$status" "$count" >>"$work/index"
done 3< <(find "$DIR" -type f -name '*.review.json' -print0 | LC_ALL=C sort -z)
[[ $count -gt 0 ]] || die "no *.review.json files under $DIR"

"$PYTHON" - "$work" <<'PY'
import base64, json, pathlib, sys

work = pathlib.Path(sys.argv[1])
failed = 0
for entry in (work / "index").read_text().splitlines():
    name, status, n = entry.split("\t")
    print(f"== {name}  HTTP {status}")
    body = work / f"{n}.body"
    raw = body.read_bytes() if body.exists() else b""
    if status == "000":
        failed += 1
        print(f"  error: {(work / f'{n}.err').read_text().strip() or 'request failed'}")
        continue
    try:
        data = json.loads(raw)
    except ValueError:
        failed += 1
        print(f"  error: response is not JSON: {raw[:200]!r}")
        continue
    response = data.get("response") if isinstance(data, dict) else None
    if status != "200" or not isinstance(response, dict):
        failed += 1
        print(f"  error: {data.get('error', data) if isinstance(data, dict) else data}")
        continue
    print(f"  uid: {response.get('uid')}  apiVersion: {data.get('apiVersion')}")
    audit = response.get("auditAnnotations") or {}
    if response.get("allowed"):
        detail = ", ".join(f"{k}={v}" for k, v in audit.items())
        print("  decision: allowed" + (f" ({detail})" if detail else ""))
    else:
        print(f"  decision: denied: {(response.get('status') or {}).get('message', '')}")
    warnings = response.get("warnings") or []
    print(f"  warnings: {len(warnings) or 'none'}")
    for warning in warnings:
        print(f"    - {warning}")
    if response.get("patch"):
        patch = json.loads(base64.b64decode(response["patch"]))
        print(f"  patch ({response.get('patchType')}, {len(patch)} operations):")
        for line in json.dumps(patch, indent=2).splitlines():
            print(f"    {line}")
    else:
        print("  patch: none")
total = len((work / "index").read_text().splitlines())
print(f"{total} reviews, {failed} failed", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
