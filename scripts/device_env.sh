# device_env.sh: sourced by the scripts/device_*.sh scripts on the device
# machine. Moves to the repository root, makes $OUT (default /tmp/$1), finds
# the shared libraries the binaries built here link: LIB_DIR (those carried
# along, if set), the machine's CUDA and its Python nvidia-cublas package
# for cuBLAS; uses every core for OpenMP; writes the GPU's name, driver and
# clocks to $OUT/device.txt.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-/tmp/$1}
mkdir -p "$OUT"
cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="${LIB_DIR:+$LIB_DIR:}/usr/local/cuda/lib64:${cublas:+$cublas:}$LD_LIBRARY_PATH"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/device.txt"
