"""The end-to-end cases: which checkpoints run_e2e.py builds and runs modelc on.

A Case names a shape from tests/ref/make_checkpoint.py SHAPES, the stored dtype, the
config style (old: rope_theta + rope_scaling{rope_type}; legacy: rope_scaling{type};
new: transformers >= 5 rope_parameters), the shard count, whether the safetensors
header carries __metadata__, and the spec file modelc compiles.

QUICK (the `make test` default) touches every feature once: each dtype, each config
style, tied and untied heads, head_dim != hidden/heads, GQA groups of 2, 3 and 4 and
plain MHA, llama3 rope scaling in all three spellings, sharded checkpoints, a header
without __metadata__, and the non-attention mlp family.  ALL is the cross product.

NEGATIVE lists the error-path checks: (name, what, expected exit status).
"""
from collections import namedtuple

Case = namedtuple("Case", "name shape dtype style shards metadata spec")

LLAMA_SPEC = "models/llama.mdl"
MLP_SPEC = "models/mlp.mdl"

# styles each llama shape is written in, in ALL; the first is the shape's default
STYLES = {"tiny": ("old", "new"), "odd": ("old", "new"), "hd48": ("old", "legacy", "new"),
          "gqa3": ("new", "old"), "mistral": ("old", "new")}
DTYPES = ("f32", "f16", "bf16")


def case(shape, dtype, style=None, shards=1, metadata=True):
    spec = MLP_SPEC if shape == "mlp" else LLAMA_SPEC
    name = f"{shape}-{dtype}"
    if style:
        name += f"-{style}"
    if shards > 1:
        name += f"-sh{shards}"
    if not metadata:
        name += "-nometa"
    return Case(name, shape, dtype, style, shards, metadata, spec)


QUICK = [
    case("tiny", "f32", "old"),
    case("tiny", "f16", "old", shards=3),
    case("odd", "bf16", "old"),
    case("hd48", "f16", "old"),
    case("hd48", "bf16", "legacy"),
    case("gqa3", "f32", "new"),
    case("mistral", "bf16", "new", metadata=False),
    case("mlp", "f32"),
    case("mlp", "bf16"),
]

ALL = []
for _shape, _styles in STYLES.items():
    for _dt in DTYPES:
        for _st in _styles:
            ALL.append(case(_shape, _dt, _st))
ALL += [case("tiny", "f16", "old", shards=3), case("odd", "f32", "new", shards=4),
        case("gqa3", "bf16", "new", shards=2), case("mistral", "bf16", "new", metadata=False),
        case("hd48", "f32", "legacy", shards=2)]
ALL += [case("mlp", dt) for dt in DTYPES] + [case("mlp", "f16", metadata=False)]
assert all(c in ALL for c in QUICK)
assert len({c.name for c in ALL}) == len(ALL)

# error paths, run in both sets
NEGATIVE = [
    ("neg-truncated", "model.safetensors cut short by 100 bytes", 1),
    ("neg-truncated-shard", "shard 2 of 3 cut short by 100 bytes", 1),
    ("neg-unknown-flag", "an unknown command-line flag", 2),
]

SETS = {"quick": QUICK, "all": ALL}
