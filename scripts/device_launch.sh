# device_launch.sh: sourced by scripts/device_dist.sh and device_tp.sh: the ways they start
# `./tnllm train $run ARGS... -o $RUNS/NAME` ($run: the script's common options), each run's
# output appended to $LOG and kept in $RUNS/NAME.txt; a failed run sets status=1.
#   one NAME ARGS...           one GPU
#   launch NAME INIT ARGS...   $RANKS ranks (default $GPUS), one per GPU, started without MPI as
#                              torchrun or srun would (RANK, WORLD_SIZE, LOCAL_RANK) with
#                              --dist-init INIT, each under `timeout $LIMIT` (a collective that hangs
#                              ends it); rank 0's output kept, the errors of all shown
#   mpi NAME ARGS...           $RANKS ranks under mpirun (MPI passes NCCL's id); where there is no
#                              mpirun, launch with a file init instead
#   file_init                  prints a fresh --dist-init file:PATH under $RUNS
one() { # NAME ARGS...: one GPU
    local name=$1; shift
    echo "== $name: one GPU $*" | tee -a "$LOG"
    ./tnllm train $run -o "$RUNS/$name" "$@" 2>&1 | tee -a "$LOG" "$RUNS/$name.txt" > /dev/null || status=1
}
launch() { # NAME DIST_INIT ARGS...: RANKS ranks started without MPI, as torchrun or srun would
    local name=$1 init=$2 ranks=${RANKS:-$GPUS} pids=() failed=0; shift 2
    echo "== $name: $ranks GPUs, --dist-init $init $*" | tee -a "$LOG"
    for ((rank = ranks - 1; rank >= 0; rank--)); do
        RANK=$rank WORLD_SIZE=$ranks LOCAL_RANK=$rank timeout "$LIMIT" \
            ./tnllm train $run --dist-init "$init" -o "$RUNS/$name" "$@" > "$RUNS/$name.rank$rank.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    tee -a "$LOG" "$RUNS/$name.txt" < "$RUNS/$name.rank0.log" > /dev/null
    [ $failed = 0 ] || { status=1; cat "$RUNS/$name".rank*.log | grep -i error | tee -a "$LOG"; }
}
file_init() { rm -f "$RUNS/nccl.id"; echo "file:$RUNS/nccl.id"; }
# containers often forbid the cross-process reads of OpenMPI's default shared-memory copy
if command -v mpirun > /dev/null; then
    mpi() { # NAME ARGS...
        local name=$1 ranks=${RANKS:-$GPUS}; shift
        echo "== $name: $ranks GPUs under mpirun $*" | tee -a "$LOG"
        OMPI_MCA_btl_vader_single_copy_mechanism=none timeout "$LIMIT" \
            mpirun --allow-run-as-root --bind-to none -np "$ranks" ./tnllm train $run -o "$RUNS/$name" "$@" 2>&1 |
            tee -a "$LOG" "$RUNS/$name.txt" > /dev/null || status=1
    }
else
    echo "no mpirun on this machine: the mpirun runs are launched by file instead" | tee -a "$LOG"
    mpi() { local name=$1; shift; launch "$name" "$(file_init)" "$@"; }
fi
