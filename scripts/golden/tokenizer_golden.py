#!/usr/bin/env python3
"""Golden token ids for tests/tokenizer, written by the reference Hugging Face `tokenizers` package.

Regenerate (from the repo root):
    python3 -m pip install tokenizers==0.23.3
    python3 scripts/golden/tokenizer_golden.py          # writes tests/data/tokenizer/

Tokenizers: tests/data/tokenizers/{qwen2.5,gpt2,mistral,minilm}/tokenizer.json (sources in
tests/data/tokenizers/SOURCES.md); text: tests/data/text/tinyshakespeare.txt.
The BERT file sets truncation (128) and padding; wick's encode never truncates or pads, so both are
switched off here.

Files written:
  corpus.json            the strings (>= 300): scripts, emoji, code, whitespace, numbers, special-token
                         text, NFC/NFD accents, control characters, tinyshakespeare excerpts, random
                         mixes of characters where regex engines disagree
  golden_<name>.json     per string i: ids (add_special_tokens=False), ids_special (True; left out when
                         equal to ids), and the decode of ids_special with skip_special_tokens False
                         ("decoded", left out when equal to the string) / True ("decoded_skip", left out
                         when equal to "decoded"); for qwen2.5 also the token
                         count and id sum of the whole tinyshakespeare text (the speed test).
  golden_variant_*.json  the same for variants of those tokenizers (other normalizers, pre-tokenizers,
                         added-token flags, post-processors, decoders; stored as base + overridden
                         fields) and for two small BPEs learned here (subword prefix/suffix, unk, fuse_unk)
"""
import json
import os
import random
import sys
import unicodedata

from tokenizers import Tokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")
SHAKESPEARE = os.path.join(ROOT, "tests", "data", "text", "tinyshakespeare.txt")

TOKENIZERS = {name: os.path.join(ROOT, "tests", "data", "tokenizers", name, "tokenizer.json")
              for name in ("qwen2.5", "gpt2", "mistral", "minilm")}

FIXED = [
    "", " ", "  ", "a", "A", "é", "中", "😀", "\n", "\t", "\r\n", "0", "!", "'", "▁", "Ġ",
    "Hello world", "Hello, world!", "hello world", "HELLO WORLD", "Hello  world", " Hello", "Hello ",
    "  leading and trailing  ", "The quick brown fox jumps over the lazy dog.",
    "I'm", "you're", "they've", "she'll", "he'd", "it's", "don't", "can't", "won't", "I'M", "YOU'RE",
    "IT'S A TEST", "'s 't 're", "rock'n'roll", "O'Neil's", "ſ's", "Kelvin'S",
    # Latin, accents in NFC and NFD
    "Café au lait", unicodedata.normalize("NFD", "Café au lait"), "naïve résumé façade",
    unicodedata.normalize("NFD", "naïve résumé façade"), "Ångström", unicodedata.normalize("NFD", "Ångström"),
    "Straße", "ÆØÅ æøå", "Zürich über Öl", "ﬁ ﬂ ligatures", "Ⅻ ½ ² ³", "ＡＢＣ　全角", "İstanbul ıi",
    "ΣΑΣ σας ς", "Dž ǅ ǆ", "e\u0301\u0302\u0303 a\u0308", "x\u20dd y\u0903",
    # scripts
    "Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε",
    "Ελληνικά: αβγδεζηθικλμνξοπρστυφχψω", "مرحبا بالعالم", "العربية: كيف حالك؟ ١٢٣٤٥",
    "שלום עולם", "नमस्ते दुनिया", "हिन्दी में एक वाक्य है।", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง",
    "안녕하세요 세계", "한국어 문장입니다.", "こんにちは世界", "日本語のテキスト、カタカナとひらがな。",
    "你好，世界！", "中文文本：我爱自然语言处理。", "繁體中文測試", "𠀀𠀁𠀂 rare CJK ext B",
    "ქართული ენა", "Հայերեն", "አማርኛ", "ᚠᚢᚦᚨᚱᚲ", "ꦧꦱꦗꦮ", "தமிழ்", "বাংলা ভাষা", "ਪੰਜਾਬੀ",
    "Tiếng Việt có dấu", "Türkçe ğüşöçı", "Polski: zażółć gęślą jaźń", "Čeština řeč",
    # emoji
    "😀😃😄😁", "👍🏻 👍🏼 👍🏽 👍🏾 👍🏿", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇺🇸🇫🇷🇯🇵",
    "❤️ ❤ ♥", "🧑🏽‍💻 coding", "emoji😀inside", "1️⃣ 2️⃣ #️⃣", "👩‍❤️‍💋‍👨", "🤖🦾🧠",
    # code
    "def foo(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "#include <iostream>\nint main() { std::cout << \"hi\\n\"; }", "const f = (a, b) => a ?? b;",
    "SELECT * FROM users WHERE id = 42;", "<div class=\"x\">Hello</div>", "fn main() { println!(\"{}\", 1); }",
    "if __name__ == '__main__':\n    main()", "x = [1, 2, 3]; y = {'a': 1}", "$ ls -la | grep foo > out.txt",
    "a+=b; c-=d; e*=f; g/=h;", "/* comment */ // line", "{\"key\": \"value\", \"n\": [1, 2.5, -3e10]}",
    "package main\n\nimport \"fmt\"\n", "<?php echo $x; ?>", "\\begin{equation} E = mc^2 \\end{equation}",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Users\\name\\file.txt",
    "    indented\n        more\n", "\t\ttabs\tand\tspaces  mixed", "camelCaseIdentifier snake_case_name",
    # whitespace and newlines
    "a  b   c    d", "line1\nline2\n\nline4", "crlf\r\nline\r\n", "\n\n\n", "   \n   ", " \t \n \r ",
    "end with newline\n", "\u00a0nbsp\u00a0here", "thin\u2009space", "ideographic\u3000space",
    "zero\u200bwidth", "soft\u00adhyphen", "line\u2028sep", "para\u2029sep", "\u0085next line",
    "word\u200d\u200cjoiners", "\ufeffbom", "tab\tsep\tvalues",
    # numbers
    "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890", "3.14159",
    "-42", "1,000,000", "1e-10", "0x1F", "2024-01-31", "12:30:45", "$1,234.56", "50%", "v1.2.3",
    "١٢٣", "१२३", "①②③", "Phone: +1 (555) 123-4567",
    # special-token text
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]",
    "[PAD]", "[MASK]", "[UNK]", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<s>[INST] What is 2+2? [/INST]", "Hello </s> world <s>", "[CLS] the [MASK] sat [SEP]",
    "<|endoftext|><|endoftext|>", "text<|im_end|>text", "<|im_start", "im_start|>", "< s >",
    "<|fim_prefix|>code<|fim_suffix|>", "<tool_call>", "</tool_call>", "<|vision_start|>",
    # control characters
    "\x00null", "bell\x07", "esc\x1b[0m", "del\x7f", "\x01\x02\x03", "\x0b\x0c", "a\x1fb", "\ufffd replacement",
    # misc punctuation and symbols
    "...", "?!?!", "—–-", "“quotes” ‘single’", "«guillemets»", "«»‹›", "© ® ™ § ¶", "→ ← ↑ ↓ ⇒",
    "∑∫∂√∞≠≤≥", "@#$%^&*()_+", "~`|\\", "¿Qué? ¡Sí!", "a.b,c;d:e", "(parenthetical)", "[bracket]",
    "mIxEd CaSe TeXt", "ALLCAPS", "lowercase", "Title Case Words", "Hyphen-ated word-s",
    "U.S.A. e.g. i.e.", "Mr. Smith's dog", "It's 5 o'clock", "don't stop", "isn't it", "y'all",
    "a" * 50, "ab" * 40, " " * 20, "\n" * 10, "!" * 30, "9" * 40, "🙂" * 10, "é" * 30, "中" * 30,
    "x" * 150, "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
]


def shakespeare_excerpts(text):
    lines = text.split("\n")
    out = []
    rng = random.Random(1234)
    for _ in range(60):  # single lines
        out.append(lines[rng.randrange(len(lines))])
    for _ in range(30):  # short passages with their newlines
        i = rng.randrange(len(lines) - 8)
        out.append("\n".join(lines[i:i + rng.randrange(2, 8)]))
    for start in (0, 100000, 500000):  # long passages
        out.append(text[start:start + 3000])
    return out


def generated(rng):
    out = []
    words = ["the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
             "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by",
             "über", "naïve", "東京", "мир", "😀", "42", "3.5", "can't", "I'll", "—", "\t", "\n", "  "]
    for _ in range(40):
        n = rng.randrange(1, 15)
        sep = rng.choice([" ", " ", " ", "", "  ", "\n", "\t"])
        out.append(sep.join(rng.choice(words) for _ in range(n)))
    for n in range(1, 25):  # numbers of many lengths
        out.append("".join(str(rng.randrange(10)) for _ in range(n)))
    return out


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level(add_prefix_space=False, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": False, "use_regex": use_regex}


def split(pattern, behavior, invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def added(id_, content, special=False, lstrip=False, rstrip=False, single_word=False, normalized=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


# Variants of the four tokenizers that exercise the components they do not use. Each is stored as its
# base name plus the top-level fields it replaces ("overrides") and model fields ("model_overrides").
VARIANTS = {
    "llama3_style": ("qwen2.5", {
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX, "Isolated"),
                                                                byte_level(use_regex=False)]},
    }, {"ignore_merges": True}),
    "smollm_style": ("gpt2", {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                byte_level()]},
    }, {}),
    "gpt2_added_flags": ("gpt2", {
        "pre_tokenizer": byte_level(add_prefix_space=True),
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 50256], "cls": ["<s>", 50257],
                           "trim_offsets": True, "add_prefix_space": True},
        "added_tokens": [added(50256, "<|endoftext|>", special=True), added(50257, "<s>", special=True),
                         added(50258, "<mask>", special=True, lstrip=True), added(50259, "foo", single_word=True),
                         added(50260, "xyz", rstrip=True), added(50261, "Hello", normalized=True),
                         added(50262, "<|im_start|>", special=True, lstrip=True, rstrip=True)],
    }, {}),
    "gpt2_splits": ("gpt2", {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            split(" ", "MergedWithPrevious", literal=True), split(r"\d+", "MergedWithNext"),
            split(r"[.,]", "Removed"), byte_level(use_regex=False)]},
    }, {}),
    "gpt2_splits_invert": ("gpt2", {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            split(r"\p{L}+", "Contiguous", invert=True), {"type": "Punctuation", "behavior": "Contiguous"},
            split("e", "Isolated", literal=True), byte_level(use_regex=False)]},
    }, {}),
    "mistral_metaspace_first": ("mistral", {
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "\u2581",
                                                      "prepend_scheme": "first", "split": True},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}]},
    }, {}),
    "mistral_metaspace_always": ("mistral", {
        "normalizer": {"type": "NFKC"},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Metaspace", "replacement":
                                                     "\u2581", "prepend_scheme": "always", "split": False},
                                                     {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 2,
                                                                        "stop": 0}]},
    }, {"fuse_unk": False}),
    "minilm_variants": ("minilm", {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Strip", "strip_left": True,
                                                                                "strip_right": True}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                                {"type": "Punctuation", "behavior": "Isolated"},
                                                                {"type": "Digits", "individual_digits": False}]},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
    }, {}),
    "minilm_whitespace": ("minilm", {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": False,
                              "strip_accents": False, "lowercase": False}]},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                                      {"Sequence": {"id": "A", "type_id": 0}},
                                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
             "pair": [], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]},
                                            "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}}]},
    }, {"max_input_chars_per_word": 8}),
}


def learned_bpe(text, fuse_unk, num_merges=300):
    """A small BPE with continuing_subword_prefix "##", end_of_word_suffix "</w>" and an unk token (no
    byte fallback), learned here by a deterministic greedy BPE (ties broken by the pair's text), with
    merges written in the ["a", "b"] form."""
    from collections import Counter
    from tokenizers import pre_tokenizers
    words = Counter(w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text))

    def symbols(word):
        out = [c if i == 0 else "##" + c for i, c in enumerate(word)]
        out[-1] += "</w>"
        return out

    segs = {w: symbols(w) for w in words}
    vocab = {"[UNK]": 0}
    for w in sorted(segs):
        for sym in segs[w]:
            vocab.setdefault(sym, len(vocab))
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for w, seg in segs.items():
            for x, y in zip(seg, seg[1:]):
                pairs[(x, y)] += words[w]
        if not pairs:
            break
        (x, y), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = x + y[2:]
        merges.append([x, y])
        vocab.setdefault(merged, len(vocab))
        for w, seg in segs.items():
            i, out = 0, []
            while i < len(seg):
                if i + 1 < len(seg) and seg[i] == x and seg[i + 1] == y:
                    out.append(merged)
                    i += 2
                else:
                    out.append(seg[i])
                    i += 1
            segs[w] = out
    config = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "[UNK]", special=True)],
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "end_of_word_suffix": "</w>", "fuse_unk": fuse_unk, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    return config


def golden_cases(tok, corpus):
    cases = []
    for text in corpus:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_special = tok.encode(text, add_special_tokens=True).ids
        case = {"ids": ids}
        if ids_special != ids:
            case["ids_special"] = ids_special
        decoded = tok.decode(ids_special, skip_special_tokens=False)
        decoded_skip = tok.decode(ids_special, skip_special_tokens=True)
        if decoded != text:
            case["decoded"] = decoded
        if decoded_skip != decoded:
            case["decoded_skip"] = decoded_skip
        cases.append(case)
    return cases


# Characters where regex engines and Unicode tables tend to disagree (U+180E, NEL, ZWJ, long s,
# Kelvin sign, dotted I, combining marks, ...), mixed at random with ordinary text.
TRICKY = list("aZé eÉ'sSt\t\n\r  0123456789.,;!?-_()[]{}<>|/\\\"`~@#$%^&*+=") + [chr(c) for c in [
    0x85, 0xa0, 0x1680, 0x180e, 0x2000, 0x200a, 0x200b, 0x200c, 0x200d, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
    0xfeff, 0x301, 0x308, 0x903, 0x20dd, 0x17f, 0x212a, 0x130, 0x131, 0x3a3, 0x1c5, 0xdf, 0xfb01, 0x2160, 0xbd,
    0xb2, 0x663, 0x967, 0x4e2d, 0x3042, 0xac00, 0x1100, 0x1161, 0xe01, 0xe34, 0x627, 0x5d0, 0x915, 0x94d,
    0x1f600, 0x1f44d, 0x1f3fd, 0xfe0f, 0x20e3, 0x1f1fa, 0x20000, 0xe000, 0xfffd, 0x7f, 0x1, 0x1b, 0x0, 0xad,
    0x2581, 0x120, 0x10a, 0xff21, 0x2019, 0xab, 0xbf, 0x2014]] + [
    "<|im_start|>", "<|im_end|>", "<s>", "</s>", "[CLS]", "<|endoftext|>", "'ll", "'RE", "\r\n", "\n\n", "hello"]


def random_mix(rng):
    return ["".join(rng.choice(TRICKY) for _ in range(rng.randrange(1, 25))) for _ in range(50)]


def main():
    for path in list(TOKENIZERS.values()) + [SHAKESPEARE]:
        if not os.path.exists(path):
            sys.exit(f"missing {path}")
    with open(SHAKESPEARE, encoding="utf-8") as f:
        shakespeare = f.read()
    corpus = FIXED + shakespeare_excerpts(shakespeare) + generated(random.Random(7)) + random_mix(random.Random(11))
    assert len(corpus) >= 300, len(corpus)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False, indent=0)
    for name, path in TOKENIZERS.items():
        tok = Tokenizer.from_file(path)
        tok.no_truncation()
        tok.no_padding()
        cases = golden_cases(tok, corpus)
        golden = {"tokenizer": name, "tokenizers_version": __import__("tokenizers").__version__, "cases": cases}
        if name == "qwen2.5":
            ids = tok.encode(shakespeare, add_special_tokens=False).ids
            golden["tinyshakespeare"] = {"count": len(ids), "id_sum": sum(ids)}
        with open(os.path.join(OUT, f"golden_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        print(name, len(cases), "cases")
    for name, (base, overrides, model_overrides) in VARIANTS.items():
        with open(TOKENIZERS[base], encoding="utf-8") as f:
            config = json.load(f)
        config.update(overrides)
        config["model"].update(model_overrides)
        config["truncation"] = None
        config["padding"] = None
        tok = Tokenizer.from_str(json.dumps(config))
        golden = {"tokenizer": name, "base": base, "overrides": overrides, "model_overrides": model_overrides,
                  "cases": golden_cases(tok, corpus)}
        with open(os.path.join(OUT, f"golden_variant_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        print("variant", name)
    for fuse in (False, True):
        name = f"learned_bpe_fuse_{str(fuse).lower()}"
        config = learned_bpe(shakespeare[:100000], fuse)
        tok = Tokenizer.from_str(json.dumps(config))
        golden = {"tokenizer": name, "tokenizer_json": config, "cases": golden_cases(tok, corpus)}
        with open(os.path.join(OUT, f"golden_variant_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        print("variant", name)


if __name__ == "__main__":
    main()
