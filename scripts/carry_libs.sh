#!/bin/bash
# carry_libs.sh DIR BINARY...: copies into DIR the shared libraries the
# binaries link that a bare machine with only a GPU driver and the CUDA
# toolkit may lack (OpenBLAS, cJSON, utf8proc, PCRE2, zstd, libgomp, OpenMPI's,
# ...), so they run there with LD_LIBRARY_PATH=DIR. Left out: the C library
# and the loader (the target has its own, and a copy would clash), and the
# CUDA libraries (cuBLAS is 0.5 GB; the target's toolkit or its Python
# nvidia-cublas package provides them: scripts/device_env.sh finds them).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR BINARY..." >&2; exit 2; }
dir=$1; shift
mkdir -p "$dir"
skip='^(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libcuda|libcublas|libcublasLt|libcudart|libnccl)\.so'
for bin in "$@"; do
    [ -x "$bin" ] || { echo "$0: $bin: not an executable (build it first)" >&2; exit 1; }
    ldd "$bin" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
    name=$(basename "$lib")
    [[ $name =~ $skip ]] || cp -L "$lib" "$dir/$name"
done
du -sh "$dir"
