#!/usr/bin/env python3
"""End-to-end tests of `modelc build` (executables and --lib) and `make install`.

  test_build.py --modelc build/modelc

- an executable built from models/llama.mdl gives logits bit-identical to
  `modelc run` and the same tokens, and `--version` names the spec, the build
  options and a content hash;
- two builds of the same inputs (from different working directories) are
  byte-identical;
- a failed build (bad spec; unwritable output) exits 1 and leaves no file;
- `build --target cuda` writes an executable with the plan and the cubin
  inside that links no CUDA library: bit-identical to `modelc run --target
  cuda` on a GPU machine, failing with the same message where there is no
  driver; two CUDA builds from different directories, each compiling afresh
  (NVRTC's -lineinfo records the working directory), are byte-identical;
- `make install PREFIX=tmp` installs modelc, the runtime, modelc.h and modelc.pc;
  examples/embed builds against that tree with pkg-config and its tokens equal
  `modelc run`'s; built with TARGET=cuda (a `--lib --target cuda` library) its
  tokens equal `modelc run --target cuda`'s on a GPU, and without a driver
  modelc_open fails with MODELC_EDEVICE and the driver's message.
Ends with `N passed, N failed`.
"""
import argparse, os, random, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}{'  ' + detail if detail and not ok else ''}", flush=True)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelc", default=os.path.join(ROOT, "build", "modelc"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    modelc = os.path.abspath(a.modelc)
    tmp = tempfile.mkdtemp(prefix="modelc-build-test-")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"test_build: seed {seed}, dir {tmp}", flush=True)
    ck = os.path.join(tmp, "tiny")
    subprocess.run([PY, os.path.join(ROOT, "tests", "ref", "make_checkpoint.py"), "--out", ck, "--shape", "tiny",
                    "--dtype", "bf16", "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    spec = os.path.join(ROOT, "models", "llama.mdl")
    toks = ",".join(str(rng.randrange(512)) for _ in range(rng.randrange(4, 12)))

    # executable vs modelc run
    exe = os.path.join(tmp, "tiny-exe")
    b = run([modelc, "build", spec, "--weights", ck, "-o", exe])
    check("build executable", b.returncode == 0 and os.path.exists(exe), b.stderr)
    r_run = run([modelc, "run", spec, "--weights", ck, "--tokens", toks, "--max-new", "24", "--quiet",
                 "--logits-out", os.path.join(tmp, "run.npy")])
    r_exe = run([exe, "--weights", ck, "--tokens", toks, "--max-new", "24", "--quiet",
                 "--logits-out", os.path.join(tmp, "exe.npy")])
    same = (r_run.returncode == 0 and r_exe.returncode == 0 and
            open(os.path.join(tmp, "run.npy"), "rb").read() == open(os.path.join(tmp, "exe.npy"), "rb").read())
    check("executable logits bit-identical to modelc run", same, r_exe.stderr + r_run.stderr)
    check("executable tokens equal modelc run", r_exe.stdout == r_run.stdout and r_exe.stdout.strip() != "",
          f"{r_exe.stdout!r} vs {r_run.stdout!r}")
    v = run([exe, "--version"])
    check("--version names spec, options and hash",
          v.returncode == 0 and "spec llama.mdl" in v.stdout and "options --target cpu" in v.stdout
          and "content " in v.stdout and tmp not in v.stdout, v.stdout)
    nolib = run(["ldd", exe])
    banned = ("LLVM", "nvrtc", "jansson") + (() if "libasan" in nolib.stdout else ("stdc++",))   # SAN=1: asan needs it
    check("executable needs no LLVM, NVRTC or jansson", all(x not in nolib.stdout for x in banned), nolib.stdout)
    bad_tok = run([exe, "--weights", ck, "--tokens", "1,99999", "--max-new", "2"])
    check("executable rejects a token id past the vocabulary", bad_tok.returncode == 1 and "out of range" in bad_tok.stderr,
          bad_tok.stderr)
    usage = run([exe, "--bogus"])
    check("executable: unknown option exits 2", usage.returncode == 2, usage.stderr)

    # reproducible
    exe2 = os.path.join(tmp, "tiny-exe2")
    other = os.path.join(tmp, "elsewhere")
    os.makedirs(other)
    b2 = run([modelc, "build", os.path.relpath(spec, other), "--weights", ck, "-o", exe2], cwd=other)
    check("two builds are byte-identical", b2.returncode == 0 and open(exe, "rb").read() == open(exe2, "rb").read(),
          b2.stderr)

    # CUDA executables: built with NVRTC here; run where there is a GPU (bit-identical to modelc run),
    # elsewhere they must fail as modelc run does
    if os.environ.get("MODELC_NO_NVRTC"):
        print("SKIP  build --target cuda (MODELC_NO_NVRTC is set)", flush=True)
    else:
        cexe = os.path.join(tmp, "tiny-cuda")
        cb = run([modelc, "build", spec, "--weights", ck, "--target", "cuda", "-o", cexe],
                 env=dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache")))
        check("build --target cuda executable", cb.returncode == 0 and os.path.exists(cexe), cb.stderr)
        cv = run([cexe, "--version"])
        check("CUDA executable --version names the target, NVRTC and the hash",
              cv.returncode == 0 and "options --target cuda:sm_" in cv.stdout and "nvrtc NVRTC" in cv.stdout
              and "content " in cv.stdout and tmp not in cv.stdout, cv.stdout)
        cl = run(["ldd", cexe])
        check("CUDA executable links no CUDA, NVRTC, LLVM or jansson library (it opens the driver when it runs)",
              all(x not in cl.stdout for x in ("libcuda", "nvrtc", "LLVM", "jansson")), cl.stdout)
        r_cr = run([modelc, "run", spec, "--weights", ck, "--target", "cuda", "--tokens", toks, "--max-new", "8",
                    "--quiet", "--logits-out", os.path.join(tmp, "run-cuda.npy")])
        r_ce = run([cexe, "--weights", ck, "--tokens", toks, "--max-new", "8", "--quiet",
                    "--logits-out", os.path.join(tmp, "exe-cuda.npy")])
        if r_cr.returncode != 0 and "no CUDA driver" in r_cr.stderr:
            check("CUDA executable without a driver: exit 1, modelc run's message, nothing on stdout",
                  r_ce.returncode == 1 and r_ce.stdout == "" and "no CUDA driver" in r_ce.stderr
                  and not os.path.exists(os.path.join(tmp, "exe-cuda.npy")), r_ce.stderr)
        else:
            same = (r_cr.returncode == 0 and r_ce.returncode == 0 and r_ce.stdout == r_cr.stdout and
                    open(os.path.join(tmp, "run-cuda.npy"), "rb").read() ==
                    open(os.path.join(tmp, "exe-cuda.npy"), "rb").read())
            check("CUDA executable: logits and tokens bit-identical to modelc run --target cuda", same,
                  r_ce.stderr + r_cr.stderr)
        cexe2 = os.path.join(tmp, "tiny-cuda2")
        cb2 = run([modelc, "build", os.path.relpath(spec, other), "--weights", ck, "--target", "cuda", "--time-passes",
                   "-o", cexe2], cwd=other, env=dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "fresh-cache")))
        check("two CUDA builds from different directories, the second with an empty cache, are byte-identical",
              cb2.returncode == 0 and "NVRTC" in cb2.stderr and "(cached)" not in cb2.stderr
              and open(cexe, "rb").read() == open(cexe2, "rb").read(), cb2.stderr)

    # failed builds leave nothing
    bad_spec = os.path.join(tmp, "bad.mdl")
    open(bad_spec, "w").write("model bad {\n  x = linear(\n}\n")
    out = os.path.join(tmp, "never")
    f1 = run([modelc, "build", bad_spec, "--weights", ck, "-o", out])
    check("bad spec: exit 1, no output", f1.returncode == 1 and not os.path.exists(out) and "bad.mdl:" in f1.stderr,
          f1.stderr)
    f2 = run([modelc, "build", spec, "--weights", ck, "-o", os.path.join(tmp, "no", "such", "dir", "x")])
    check("unwritable output: exit 1", f2.returncode == 1, f2.stderr)
    leftovers = [n for n in os.listdir(tmp) if ".tmp." in n]
    check("no temporary files left", not leftovers, str(leftovers))

    # install + the embedding example through pkg-config
    prefix = os.path.join(tmp, "prefix")
    i = run(["make", "-C", ROOT, "--no-print-directory", "install", f"PREFIX={prefix}"])
    installed = all(os.path.exists(os.path.join(prefix, p)) for p in
                    ("bin/modelc", "lib/libmodelc_rt.a", "include/modelc.h", "lib/pkgconfig/modelc.pc"))
    check("make install PREFIX=...", i.returncode == 0 and installed, i.stdout + i.stderr)
    ex = os.path.join(tmp, "embed")
    shutil.copytree(os.path.join(ROOT, "examples", "embed"), ex)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    san = "libasan" in run(["ldd", modelc]).stdout   # a SAN=1 modelc installs an instrumented runtime
    mk = run(["make", "-C", ex, "--no-print-directory", f"MODELC={prefix}/bin/modelc", f"SPEC={spec}",
              f"WEIGHTS={ck}"] + (["CFLAGS=-fsanitize=address,undefined"] if san else []), env=env)
    check("examples/embed builds against the installed tree", mk.returncode == 0, mk.stdout + mk.stderr)
    g = run([os.path.join(ex, "generate"), ck] + toks.split(","))
    ref16 = run([modelc, "run", spec, "--weights", ck, "--tokens", toks, "--max-new", "16", "--quiet"])
    check("example's tokens equal modelc run", g.returncode == 0 and g.stdout == ref16.stdout,
          f"{g.stdout!r} {g.stderr!r} vs {ref16.stdout!r}")
    g_bad = run([os.path.join(ex, "generate"), os.path.join(tmp, "missing")] + ["1"])
    check("example reports a missing checkpoint through modelc_errmsg", g_bad.returncode == 1 and "missing" in g_bad.stderr,
          g_bad.stderr)

    # the same program against a library of GPU kernels (--target cuda): on a GPU its tokens equal
    # modelc run --target cuda's; without a driver, modelc_open fails with MODELC_EDEVICE (7)
    if not os.environ.get("MODELC_NO_NVRTC"):
        exc = os.path.join(tmp, "embed-cuda")
        shutil.copytree(os.path.join(ROOT, "examples", "embed"), exc)
        mk = run(["make", "-C", exc, "--no-print-directory", f"MODELC={prefix}/bin/modelc", f"SPEC={spec}",
                  f"WEIGHTS={ck}", "TARGET=cuda"] + (["CFLAGS=-fsanitize=address,undefined"] if san else []), env=env)
        hdr = open(os.path.join(exc, "model.h")).read() if os.path.exists(os.path.join(exc, "model.h")) else ""
        check("examples/embed builds against a --lib --target cuda library (no CUDA library linked)",
              mk.returncode == 0 and "--target cuda:sm_" in hdr
              and "libcuda" not in run(["ldd", os.path.join(exc, "libmodel.so")]).stdout, mk.stdout + mk.stderr)
        gc = run([os.path.join(exc, "generate"), ck] + toks.split(","))
        rc16 = run([modelc, "run", spec, "--weights", ck, "--target", "cuda", "--tokens", toks, "--max-new", "16",
                    "--quiet"])
        if rc16.returncode != 0 and "no CUDA driver" in rc16.stderr:
            check("CUDA library without a driver: modelc_open says so (MODELC_EDEVICE), exit 1, no tokens",
                  gc.returncode == 1 and gc.stdout == "" and "error 7:" in gc.stderr and "no CUDA driver" in gc.stderr,
                  gc.stdout + gc.stderr)
        else:
            check("CUDA library: the example's tokens equal modelc run --target cuda",
                  gc.returncode == 0 and gc.stdout == rc16.stdout, f"{gc.stdout!r} {gc.stderr!r} vs {rc16.stdout!r}")

    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    p = sum(results)
    print(f"{p} passed, {len(results) - p} failed")
    return 0 if p == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
