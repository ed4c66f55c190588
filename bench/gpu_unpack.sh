#!/bin/sh
# bench/gpu_unpack.sh — on the GPU machine: unpack the binaries that
# tools/gpu-prep.sh carried compressed (.gpu/NAME.xz -> .gpu/NAME), once.
python3 - .gpu/*.xz <<'PY'
import lzma, os, shutil, sys
for z in sys.argv[1:]:
    if z.endswith(".xz") and os.path.exists(z) and not os.path.exists(z[:-3]):
        with lzma.open(z) as src, open(z[:-3] + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(z[:-3] + ".part", 0o755)
        os.replace(z[:-3] + ".part", z[:-3])
PY
