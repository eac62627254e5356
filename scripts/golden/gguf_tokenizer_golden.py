#!/usr/bin/env python3
"""Golden token ids of the tokenizers stored in real GGUF files, written by Hugging Face `tokenizers`
from transformers' GGUF tokenizer conversion.

Regenerate (from the repo root):
    python3 -m pip install tokenizers==0.23.3 transformers==5.24.0 gguf==0.19.0
    scripts/fetch-models.sh models       # the SmolLM2 GGUF and the Qwen2.5-Coder tokenizer-only GGUF
    python3 scripts/golden/gguf_tokenizer_golden.py     # writes tests/data/tokenizer/golden_gguf_*.json

Files (in models/, fetched by scripts/fetch-models.sh):
  SmolLM2-135M-Instruct.Q4_1.gguf                 -> golden_gguf_smollm2.json
  qwen2.5-coder-1.5b-instruct.tokenizer.gguf      -> golden_gguf_qwen2.5_coder.json
The second is the metadata of qwen2.5-coder-1.5b-instruct-q4_k_m.gguf without its tensors
(scripts/gguf_metadata_only.py). When the whole file is present too (`fetch-models.sh --qwen-coder`),
this script checks that both hold the same metadata bytes and convert to the same tokenizer.

The strings are tests/data/tokenizer/corpus.json (written by tokenizer_golden.py); the goldens have the
format of tokenizer_golden.py's golden_<name>.json (ids, ids_special, decoded, decoded_skip), plus the
indices of the cases that the adjustments below change ("adjusted_cases").

Reference: AutoTokenizer.from_pretrained("models", gguf_file=...).backend_tokenizer (a
tokenizers.Tokenizer). Checked against the GGUF metadata (read with the `gguf` package) before use:
BPE vocabulary and merges as stored; control tokens (token_type 3) are special added tokens and
user-defined ones (4: Qwen's <tool_call>, </tool_call>) plain added tokens, nothing else added (Qwen's
271 unused [PAD...] ids stay plain vocabulary); byte-level decoder; a post-processor that adds nothing,
since both files set tokenizer.ggml.add_bos_token = false and no add_eos_token. Adjustments, each where
transformers' conversion departs from the tokenizer.json of the model the GGUF was converted from:
  SmolLM2: tokenizer.ggml.pre = "smollm" names SmolLM's pre-tokenizer: llama.cpp's SMOLLM pre-type splits
    "\\p{N}" (every digit alone) before the GPT-2 regex, i.e. the tokenizer.json's
    Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)].
    transformers has no split for "smollm" and keeps GPT2Tokenizer's ByteLevel alone, which lets BPE see
    " 1" or "42" in one word (5 of the 441 strings differ). The script sets that Sequence.
  Qwen2.5-Coder: tokenizer.ggml.pre = "qwen2" names Qwen2's tokenizer, whose tokenizer.json normalises
    to NFC; transformers' conversion has no normalizer (10 strings with decomposed accents differ).
    The script sets NFC and checks the result: the ids of every string, with and without special
    tokens, equal those of tests/data/tokenizers/qwen2.5/tokenizer.json (the same vocabulary and
    merges). Decoding with skip_special_tokens differs there for the FIM tokens only: the GGUF marks
    <|fim_prefix|> ... <|file_sep|> as control tokens (special), Qwen2.5's tokenizer.json does not.
"""
import json
import os
import sys

import gguf
import tokenizers
import transformers
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from tokenizer_golden import golden_cases  # noqa: E402
from gguf_metadata_only import read_file_header  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(ROOT, "models")
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")
QWEN_TOKENIZER = os.path.join(ROOT, "tests", "data", "tokenizers", "qwen2.5", "tokenizer.json")
QWEN_FULL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def smollm_pre_tokenizer(tok):
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])


def qwen2_normalizer(tok):
    tok.normalizer = normalizers.NFC()


# golden name -> (file in models/, tokenizer.ggml.pre, the converted pre-tokenizer the adjustment
# replaces or None, adjustment)
MODELS_TO_GOLD = {
    "gguf_smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm",
                     {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                     smollm_pre_tokenizer),
    "gguf_qwen2.5_coder": ("qwen2.5-coder-1.5b-instruct.tokenizer.gguf", "qwen2", None, qwen2_normalizer),
}


def gguf_tokenizer_metadata(path):
    r = gguf.GGUFReader(path)

    def get(key, default=None):
        return r.fields[key].contents() if key in r.fields else default

    return {"model": get("tokenizer.ggml.model"), "pre": get("tokenizer.ggml.pre"),
            "tokens": get("tokenizer.ggml.tokens"), "token_type": get("tokenizer.ggml.token_type"),
            "merges": get("tokenizer.ggml.merges"), "add_bos": get("tokenizer.ggml.add_bos_token"),
            "add_eos": get("tokenizer.ggml.add_eos_token")}


def convert(file):
    return AutoTokenizer.from_pretrained(MODELS, gguf_file=file).backend_tokenizer


def check_conversion(tok, meta, pre, replaced_pre_tokenizer, file):
    """The converted tokenizer is the one the GGUF metadata describes (see the header)."""
    j = json.loads(tok.to_str())
    tokens, types = meta["tokens"], meta["token_type"]
    assert meta["model"] == "gpt2" and meta["pre"] == pre, (file, meta["model"], meta["pre"])
    assert j["model"]["type"] == "BPE" and not j["model"]["byte_fallback"], file
    assert j["model"]["vocab"] == {t: i for i, t in enumerate(tokens)}, f"{file}: vocabulary"
    assert j["model"]["merges"] == [m.split(" ") for m in meta["merges"]], f"{file}: merges"
    added = {(a["id"], a["content"], a["special"]) for a in j["added_tokens"]}
    want = {(i, tokens[i], t == 3) for i, t in enumerate(types) if t in (3, 4)}
    assert added == want, (file, added ^ want)
    assert meta["add_bos"] is False and not meta["add_eos"], file
    assert j["post_processor"]["single"] == [{"Sequence": {"id": "A", "type_id": 0}}], (file, j["post_processor"])
    assert j["decoder"]["type"] == "ByteLevel", (file, j["decoder"])
    assert j["normalizer"] is None, (file, j["normalizer"])
    if replaced_pre_tokenizer is not None:
        assert j["pre_tokenizer"] == replaced_pre_tokenizer, (file, j["pre_tokenizer"])
    return j


def encodings(tok, corpus):
    return [(tok.encode(s, add_special_tokens=False).ids, tok.encode(s, add_special_tokens=True).ids) for s in corpus]


def check_qwen_against_tokenizer_json(tok, corpus):
    reference = Tokenizer.from_file(QWEN_TOKENIZER)
    ours, theirs = encodings(tok, corpus), encodings(reference, corpus)
    differ = [i for i in range(len(corpus)) if ours[i] != theirs[i]]
    assert not differ, f"ids differ from {QWEN_TOKENIZER} on cases {differ}"
    skip_differ = [i for i, (_, ids) in enumerate(ours)
                   if tok.decode(ids, skip_special_tokens=True) != reference.decode(ids, skip_special_tokens=True)]
    print(f"  qwen2.5 tokenizer.json: same ids on all {len(corpus)} strings; decode(skip_special) differs on "
          f"cases {skip_differ} (FIM tokens: control in the GGUF, not special in Qwen2.5's tokenizer.json)")


def check_qwen_full_file(small_tok, corpus):
    full = os.path.join(MODELS, QWEN_FULL)
    if not os.path.exists(full):
        print(f"  {full} absent: metadata comparison with the whole file skipped")
        return
    small = os.path.join(MODELS, MODELS_TO_GOLD["gguf_qwen2.5_coder"][0])
    a, b = read_file_header(small), read_file_header(full)
    assert a.n_tensors == 0 and b.n_tensors > 0, (a.n_tensors, b.n_tensors)
    assert (a.version, a.n_kv, a.kv) == (b.version, b.n_kv, b.kv), "metadata of the tokenizer-only GGUF differs"
    full_tok = convert(QWEN_FULL)
    assert full_tok.to_str() == convert(os.path.basename(small)).to_str(), "conversions differ"
    qwen2_normalizer(full_tok)
    assert encodings(full_tok, corpus) == encodings(small_tok, corpus)
    print(f"  {full}: same {b.n_kv} metadata keys (byte for byte) and same conversion as the tokenizer-only file")


def main():
    transformers.logging.set_verbosity_error()
    with open(os.path.join(OUT, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    assert len(corpus) >= 300, len(corpus)
    for name, (file, pre, replaced_pre_tokenizer, adjust) in MODELS_TO_GOLD.items():
        path = os.path.join(MODELS, file)
        if not os.path.exists(path):
            sys.exit(f"missing {path} (run scripts/fetch-models.sh models)")
        print(name, file)
        tok = convert(file)
        check_conversion(tok, gguf_tokenizer_metadata(path), pre, replaced_pre_tokenizer, file)
        before = encodings(tok, corpus)
        adjust(tok)
        after = encodings(tok, corpus)
        adjusted = [i for i in range(len(corpus)) if before[i] != after[i]]
        print(f"  {adjust.__name__}: changes the ids of cases {adjusted}")
        if name == "gguf_qwen2.5_coder":
            check_qwen_against_tokenizer_json(tok, corpus)
            check_qwen_full_file(tok, corpus)
        golden = {"tokenizer": name, "gguf": file, "tokenizers_version": tokenizers.__version__,
                  "transformers_version": transformers.__version__,
                  "reference": f"transformers GGUF conversion + {adjust.__name__} (see scripts/golden/"
                               "gguf_tokenizer_golden.py)",
                  "adjusted_cases": adjusted, "cases": golden_cases(tok, corpus)}
        with open(os.path.join(OUT, f"golden_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        print(f"  {len(corpus)} cases -> golden_{name}.json")


if __name__ == "__main__":
    main()
