#!/usr/bin/env python3
"""vibe_ft's token counts must equal OpenAI's own tokenizer (Python `tiktoken`)
on a fixed corpus (tests/fixtures/token_corpus.jsonl), for o200k_base (gpt-4o,
gpt-4.1) and cl100k_base. Texts are compared token for token; chat examples
with OpenAI's cookbook framing (3 per message, +1 for a name, +3 per example).

tiktoken downloads its encoding files on first use, which fails without the
internet: TIKTOKEN_CACHE_DIR points at a folder holding vibe_ft's own copies
(crates/vibe_ft_core/assets, the files tiktoken-rs ships), each under the name
tiktoken looks for (the SHA-1 of its download URL); tiktoken checks their
SHA-256 against OpenAI's, so this also proves the copies are OpenAI's files.

  python3 tests/tokens/compare.py                 compare (exit 1 on any difference)
  python3 tests/tokens/compare.py --bench N       throughput of both on the corpus x N
Run it with a Python that has tiktoken (scripts/test.sh makes a venv)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fixtures", "token_corpus.jsonl")
URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
ENCODINGS = ["o200k_base", "cl100k_base"]


def offline_cache():
    cache = os.path.join(ROOT, "target", "tiktoken-cache")
    os.makedirs(cache, exist_ok=True)
    for enc in ENCODINGS:
        shutil.copy(os.path.join(ROOT, "crates", "vibe_ft_core", "assets", enc + ".tiktoken"),
                    os.path.join(cache, hashlib.sha1(URL.format(enc).encode()).hexdigest()))
    os.environ["TIKTOKEN_CACHE_DIR"] = cache


def rust_binary():
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "vibe_ft_core", "--example", "count_tokens"],
                   cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "examples", "count_tokens")


def python_count(enc, item):
    if "text" in item:
        return len(enc.encode_ordinary(item["text"]))
    n = 3
    for m in item["messages"]:
        n += 3
        for k, v in m.items():
            if isinstance(v, str):
                n += len(enc.encode_ordinary(v))
                if k == "name":
                    n += 1
    return n


def main():
    offline_cache()
    import tiktoken
    items = [json.loads(line) for line in open(CORPUS, encoding="utf-8")]
    binary = rust_binary()
    if len(sys.argv) > 2 and sys.argv[1] == "--bench":
        n = int(sys.argv[2])
        for name in ENCODINGS:
            enc = tiktoken.get_encoding(name)
            python_count(enc, items[0])
            start = time.perf_counter()
            total = sum(python_count(enc, it) for _ in range(n) for it in items)
            py = time.perf_counter() - start
            out = subprocess.run([binary, name, CORPUS, "--repeat", str(n)], capture_output=True, text=True, check=True)
            rs_total, rs = out.stdout.split()
            assert int(rs_total) == total, (rs_total, total)
            print(f"{name}: {total:,} tokens; Python tiktoken {total / py / 1e6:.2f} M tokens/s, "
                  f"vibe_ft {total / float(rs) / 1e6:.2f} M tokens/s -> {py / float(rs):.2f}x")
        return
    bad = 0
    for name in ENCODINGS:
        enc = tiktoken.get_encoding(name)
        want = [python_count(enc, it) for it in items]
        got = [int(x) for x in subprocess.run([binary, name, CORPUS], capture_output=True, text=True,
                                              check=True).stdout.split()]
        diff = [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if w != g]
        if len(got) != len(want) or diff:
            bad += 1
            print(f"{name}: {len(diff)} of {len(items)} differ (line, tiktoken, vibe_ft): {diff[:10]}")
        else:
            print(f"{name}: all {len(items)} corpus entries equal tiktoken {tiktoken.__version__} ({sum(want):,} tokens)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
