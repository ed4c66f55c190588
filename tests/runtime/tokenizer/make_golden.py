#!/usr/bin/env python3
"""tests/runtime/tokenizer/make_golden.py — writes the tokenizer test data
beside it, with Hugging Face `tokenizers` and `sentencepiece` as the
references.  Not run by `make test` (the C test reads what it wrote):

    pip install gguf tokenizers sentencepiece
    python3 tests/runtime/tokenizer/make_golden.py SmolLM2-135M-Instruct.Q4_1.gguf

smollm2/tokenizer.json   SmolLM2's vocabulary cut down to what the golden texts
                         need (ids kept, so with gaps): every byte token, the
                         special tokens, and each merge the BPE of a golden
                         word ever finds among its adjacent pairs, with the
                         tokens it names — on these texts it tokenizes exactly
                         as the full vocabulary does (checked below).  Merges
                         are written "a b", as older tokenizer.json files do.
smollm2/tokenizer_config.json   bos/eos and the GGUF's chat template.
<pre>.golden.txt      expected ids for SmolLM2's vocabulary under the smollm,
                         gpt2, llama3 and qwen2 pre-tokenizers.
spm/meta.json            a 500-piece SentencePiece BPE model (byte fallback, one
                         user-defined piece) trained here, as GGUF tokenizer.ggml.* keys.
spm/tokenizer.json       the same model as a Llama-2-style tokenizer.json.
spm.golden.txt / spm_hf.golden.txt   expected ids from sentencepiece / tokenizers.

Golden files: '> "json text"' (or '>! ' to parse special tokens), then '= ids'.
"""
import json
import os
import random
import sys

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "", "Hello world", "Hello, world! How are you today?", " Hello", "hello   world", "   leading spaces",
    "trailing spaces   ", "tabs\tand\ttabs", "\n\n\n", "line one\nline two\r\nline three\n", " \t \n ",
    "I'm sure it's fine: they've said we'll go, you'd know, don't worry", "IT'S WE'LL I'M", "'s 'tis 're",
    "12345", "3.14159 and 2024-11-23", "x = 1000000 + 42", "naïve café Über straße", "日本語のテキスト", "中文分词测试",
    "한국어 문장", "🙂👍🏽 emoji 🚀", "e\u0301 combining", "Ünïcödé ÀÉÎÕÜ", "non\u00a0breaking\u3000ideographic",
    "def f(x):\n    return x**2  # square\n", "<div class=\"a\">&nbsp;</div>", "snake_case_name and CamelCase",
    "http://example.com/a?b=1&c=2", "٣ ² Ⅻ ½ digits", "x\u200by\ufeffz", "...!!!???", "a\n\n  b\n \n",
    "The quick brown fox jumps over the lazy dog. " * 3,
]
SPECIAL_TEXTS = [
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "text<|endoftext|>more<|im_end|>", "<|im_start|><|im_end|>", "<|im_start<|im_end|>|>",
]


def write_golden(path, rows):
    with open(path, "w") as f:
        f.write("# expected ids (make_golden.py): '> text' or '>! text' (parse special tokens), then '= ids'\n")
        for text, special, ids in rows:
            f.write(("> " if not special else ">! ") + json.dumps(text) + "\n")
            f.write("= " + " ".join(map(str, ids)) + "\n")


def bytelevel_pre(pre):
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre in ("smollm", "gpt2"))
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl])
    if pre == "gpt2":
        return bl
    pattern = LLAMA3_RE if pre == "llama3" else LLAMA3_RE.replace(r"\p{N}{1,3}", r"\p{N}")
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False), bl])


def hf_bytelevel(vocab, merges, pre, nspecial):
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre == "llama3"))
    tk.pre_tokenizer = bytelevel_pre(pre)
    tk.decoder = decoders.ByteLevel()
    inv = {i: s for s, i in vocab.items()}
    tk.add_special_tokens([AddedToken(inv[i], special=True, normalized=False) for i in range(nspecial)])
    return tk


def encode_rows(tk, texts, special_texts):
    rows = [(t, False, tk.encode(t).ids) for t in texts]
    for t in special_texts:
        rows.append((t, True, tk.encode(t).ids))
        tk.encode_special_tokens = True   # the same text with specials as plain text
        rows.append((t, False, tk.encode(t).ids))
        tk.encode_special_tokens = False
    return rows


def needed_merges(tk, rank, texts):
    """Every merge the BPE of these texts' words finds among adjacent pairs."""
    seen = set()
    for text in texts:
        for word, _ in tk.pre_tokenizer.pre_tokenize_str(text):
            syms = list(word)
            while True:
                pairs = [(syms[i], syms[i + 1]) for i in range(len(syms) - 1) if (syms[i], syms[i + 1]) in rank]
                seen.update(pairs)
                if not pairs:
                    break
                best = min(pairs, key=lambda p: rank[p])
                i = next(i for i in range(len(syms) - 1) if (syms[i], syms[i + 1]) == best)
                syms[i:i + 2] = [syms[i] + syms[i + 1]]
    return seen


def smollm2(gguf_path):
    r = gguf.GGUFReader(gguf_path)
    field = lambda k: r.fields[k]
    toks = [bytes(field("tokenizer.ggml.tokens").parts[i]).decode() for i in field("tokenizer.ggml.tokens").data]
    merges = [tuple(bytes(field("tokenizer.ggml.merges").parts[i]).decode().split(" ", 1))
              for i in field("tokenizer.ggml.merges").data]
    tmpl = bytes(field("tokenizer.chat_template").parts[field("tokenizer.chat_template").data[0]]).decode()
    vocab = {s: i for i, s in enumerate(toks)}
    rank = {m: i for i, m in enumerate(merges)}
    texts = TEXTS + SPECIAL_TEXTS
    full = {pre: hf_bytelevel(vocab, merges, pre, 17) for pre in ("smollm", "gpt2", "llama3", "qwen2")}
    keep = set()
    for tk in full.values():
        keep |= needed_merges(tk, rank, texts)
    sub_merges = [m for m in merges if m in keep]
    sub_ids = set(range(17)) | {vocab[s] for s in bytes_to_unicode() if s in vocab}
    for a, b in sub_merges:
        sub_ids |= {vocab[a], vocab[b], vocab[a + b]}
    for pre, tk in full.items():
        for row in encode_rows(tk, TEXTS, SPECIAL_TEXTS):
            sub_ids |= set(row[2])
    sub_vocab = {toks[i]: i for i in sorted(sub_ids)}
    for pre, tk in full.items():
        rows = encode_rows(tk, TEXTS, SPECIAL_TEXTS)
        small = hf_bytelevel(sub_vocab, sub_merges, pre, 17)
        assert encode_rows(small, TEXTS, SPECIAL_TEXTS) == rows, pre
        write_golden(os.path.join(HERE, f"{pre}.golden.txt"), rows)
    os.makedirs(os.path.join(HERE, "smollm2"), exist_ok=True)
    small = hf_bytelevel(sub_vocab, sub_merges, "smollm", 17)
    doc = json.loads(small.to_str())
    doc["model"]["merges"] = [a + " " + b for a, b in sub_merges]
    with open(os.path.join(HERE, "smollm2", "tokenizer.json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    with open(os.path.join(HERE, "smollm2", "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_prefix_space": False,
                   "chat_template": tmpl}, f, ensure_ascii=False, indent=1)
    print(f"smollm2: {len(sub_vocab)} tokens, {len(sub_merges)} merges")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


SPM_TEXTS = ["", "hello world", " hello", "hello  world", "the naïve café", "Über straße", "日本 語", "中文",
             "🙂", "tab\there\nnew line", "<|user|>hi", "hi<|user|> there", "<s>not special</s>", "12 apples!",
             "x" * 20]


def spm_model():
    d = os.path.join(HERE, "spm")
    os.makedirs(d, exist_ok=True)
    random.seed(5)
    words = ("the of and to in is that for it as with was on be by this are or his from at which but have an they not "
             "one had you were her all she there would their we him been has when who will more no if out so said what "
             "up its about into than them can only other new some could time these two may then do first any my now "
             "hello world naïve café Über straße 日本 語").split()
    corpus = "/tmp/spm_corpus.txt"
    with open(corpus, "w") as f:
        f.write("\n".join(" ".join(random.choice(words) for _ in range(12)) for _ in range(3000)))
    spm.SentencePieceTrainer.train(input=corpus, model_prefix="/tmp/spm_tiny", vocab_size=500, model_type="bpe",
                                   byte_fallback=True, character_coverage=1.0, user_defined_symbols=["<|user|>"],
                                   normalization_rule_name="identity", remove_extra_whitespaces=False, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file="/tmp/spm_tiny.model")
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]

    def kind(i):
        return (2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else
                4 if pieces[i] == "<|user|>" else 1)
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": pieces,
            "tokenizer.ggml.scores": [sp.get_score(i) for i in range(n)],
            "tokenizer.ggml.token_type": [kind(i) for i in range(n)],
            "tokenizer.ggml.bos_token_id": sp.bos_id(), "tokenizer.ggml.eos_token_id": sp.eos_id(),
            "tokenizer.ggml.unknown_token_id": sp.unk_id(), "tokenizer.ggml.add_bos_token": True,
            "tokenizer.ggml.add_space_prefix": True}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, ensure_ascii=False, indent=0)
    write_golden(os.path.join(HERE, "spm.golden.txt"), [(t, False, [sp.bos_id()] + sp.encode(t)) for t in SPM_TEXTS])

    # The Llama-2-style tokenizer.json: merges from pairs of pieces, by the score of what they make.
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for p, i in vocab.items():
        if kind(i) != 1:
            continue
        local = [(p[:k], p[k:], sp.get_score(i)) for k in range(1, len(p)) if p[:k] in vocab and p[k:] in vocab]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges = [(a, b) for a, b, _ in sorted(merges, key=lambda m: m[2], reverse=True)]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<unk>", "<s>", "</s>"]])
    tk.add_tokens([AddedToken("<|user|>", special=False, normalized=False)])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tk.save(os.path.join(d, "tokenizer.json"))
    write_golden(os.path.join(HERE, "spm_hf.golden.txt"), [(t, True, tk.encode(t).ids) for t in SPM_TEXTS])


if __name__ == "__main__":
    smollm2(sys.argv[1])
    spm_model()
