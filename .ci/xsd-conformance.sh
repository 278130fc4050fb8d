#!/usr/bin/env bash
# Validates every kind of message fpolicy-proto emits against NetApp's XSDs.
# The XSDs are reference material in ../shared (never copied into this repo);
# when they are absent this step says so and is skipped.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
xsd_dir="${FPOLICY_XSD_DIR:-$repo/../shared/fpolicy-reference/xsd}"
if [[ ! -d "$xsd_dir" ]]; then
  echo "xsd-conformance: SKIPPED: NetApp XSDs not found at $xsd_dir (set FPOLICY_XSD_DIR)"
  exit 0
fi
command -v xmllint >/dev/null || { echo "xsd-conformance: xmllint missing (apt-get install libxml2-utils)"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The shared XSDs start with a provenance comment before the XML declaration,
# which is not well-formed: drop everything up to the first '-->'.
for xsd in "$xsd_dir"/*.xsd; do
  python3 - "$xsd" "$work/$(basename "$xsd")" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
if text.lstrip().startswith("<!--"):
    text = text[text.index("-->") + 3:].lstrip()
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
done

cargo run -q -p fpolicy-proto --example emit-corpus -- "$work/corpus"

declare -A schema=(
  [Handshake]=xsd_handshake_req.xsd
  [HandshakeResp]=xsd_handshake_resp.xsd
  [FscreenReq]=xsd_fscreen_req.xsd
  [FscreenResp]=xsd_fscreen_resp.xsd
  [FscreenCancel]=xsd_fscreen_cancel.xsd
  [FscreenQueryStatus]=xsd_status_query_req.xsd
  [FscreenStatusResp]=xsd_status_query_resp.xsd
  [BackPressure]=xsd_back_pressure.xsd
  [Alert]=xsd_alert.xsd
  [VolNotf]=xsd_vol_notf.xsd
  [Outage]=xsd_outage.xsd
)

passed=0
failed=0
for f in "$work"/corpus/*.xml; do
  name="$(basename "$f")"
  case "$name" in
    *.header.xml) xsd=xsd_header.xsd ;;
    *.body.*.xml)
      root="${name##*.body.}"; root="${root%.xml}"
      xsd="${schema[$root]:-}"
      if [[ -z "$xsd" ]]; then echo "xsd-conformance: no schema for root <$root> ($name)"; failed=$((failed+1)); continue; fi
      ;;
    *) continue ;;
  esac
  if out="$(xmllint --noout --schema "$work/$xsd" "$f" 2>&1)"; then
    passed=$((passed+1))
  else
    echo "xsd-conformance: FAIL $name against $xsd"; echo "$out"
    failed=$((failed+1))
  fi
done
echo "xsd-conformance: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
