# device_env.sh: sourced by the scripts/device_*.sh scripts. Makes the
# binaries built here find their shared libraries on the device machine:
# those carried in LIB_DIR (scripts/carry_libs.sh), the CUDA toolkit's, and
# cuBLAS and NCCL from the Python nvidia-cublas and nvidia-nccl packages
# where the toolkit lacks them.
# Also uses every core for OpenMP unless OMP_NUM_THREADS is set, and writes
# the GPU's name, driver and clocks to $OUT/device.txt.
python_libs=$(python3 -c '
import importlib, os
for name in ("nvidia.cublas", "nvidia.nccl"):
    try: print(os.path.join(importlib.import_module(name).__path__[0], "lib"), end=":")
    except ImportError: pass' 2>/dev/null)
export LD_LIBRARY_PATH="${LIB_DIR:+$LIB_DIR:}/usr/local/cuda/lib64:$python_libs$LD_LIBRARY_PATH"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/device.txt"
