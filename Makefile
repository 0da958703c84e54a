# tnllm build. `make` builds the library and the `tnllm` binary; `make test`
# runs every test. Optional parts are detected and reported with a ✓/✗ line.
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -MMD -MP -Isrc
LDLIBS  += -lcjson -lutf8proc -lpcre2-8 -lz -lzstd -lm -fopenmp
BUILD   ?= build

# `make test SANITIZE=1`: the same tests under AddressSanitizer and UBSan,
# in a separate build directory.
ifeq ($(SANITIZE),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS += -fsanitize=address,undefined
  BUILD  := build-asan
endif
FLAGS_STAMP := $(BUILD)/flags # the flags of the last build (see the end of this file)

# OpenBLAS: prefer the OpenMP flavour so BLAS calls made inside our own
# OpenMP regions run single-threaded instead of oversubscribing the cores.
BLAS_OMP := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(BLAS_OMP)/libopenblas.so),)
  CFLAGS += -I/usr/include/x86_64-linux-gnu/openblas-openmp
  LDLIBS += -L$(BLAS_OMP) -Wl,-rpath,$(BLAS_OMP) -lopenblas
  BLAS_MSG := ✓ OpenBLAS (OpenMP)
else
  CFLAGS += $(shell pkg-config --cflags openblas 2>/dev/null)
  LDLIBS += $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
  BLAS_MSG := ✓ OpenBLAS (pkg-config)
endif

NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
# The toolkit's root, asked of nvcc itself: `nvcc` on the PATH may be a
# wrapper script outside the toolkit (/usr/local/bin/nvcc on some machines).
ifneq ($(NVCC),)
  CUDA_HOME := $(realpath $(shell $(NVCC) --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$$ TOP=//p'))
  ifeq ($(wildcard $(CUDA_HOME)/include/cuda_runtime_api.h),)
    NVCC_BROKEN := $(NVCC)
    NVCC :=
  endif
endif
ifneq ($(NVCC_BROKEN),)
  CUDA_MSG := ✗ CUDA ($(NVCC_BROKEN) found but no cuda_runtime_api.h under '$(CUDA_HOME)/include': CPU-only build)
else ifeq ($(NVCC),)
  CUDA_MSG := ✗ CUDA (nvcc not found: CPU-only build)
else
  CUDA_MSG := ✓ CUDA ($(NVCC)): kernels, GPU check and bench built too (sm_90)
endif
# Where nvcc is found, `make` builds the CUDA part as well (not in the
# sanitizer build, which covers the host code); `make cuda` builds it alone.
# Then -DTN_CUDA compiles the CUDA dispatch of the host code (`tnllm train
# --device cuda`, train/step_device.c) and tnllm links the CUDA library:
# cuBLAS shared, CUDA's runtime static. `make NVCC=` builds without CUDA.
ifneq ($(NVCC),)
  ifneq ($(SANITIZE),1)
    CUDA_ALL := cuda
    CFLAGS   += -DTN_CUDA
  endif
endif

# MPI (OpenMPI's mpicc): the MPI backend of src/dist/comm.h, for
# `mpirun -np N tnllm train`; without it tnllm runs one process.
MPICC := $(shell command -v mpicc 2>/dev/null)
ifeq ($(MPICC),)
  MPI_MSG := ✗ MPI (mpicc not found: one process only)
  MPI_SRC :=
else
  MPI_MSG := ✓ MPI ($(MPICC)): data-parallel training under mpirun
  CFLAGS  += -DTN_MPI $(shell $(MPICC) --showme:compile)
  LDLIBS  += $(shell $(MPICC) --showme:link)
  MPI_SRC := src/dist/comm_mpi.c
endif

# NCCL, where NVIDIA's packages put it (under the CUDA toolkit root): the
# GPU collectives of src/dist/comm.h, for `tnllm train --device cuda` over
# several ranks (mpirun, torchrun or srun: --dist-init) and the GPU check
# build/cuda/check_dist. It needs the CUDA build.
NCCL_SRC :=
ifneq ($(CUDA_ALL),)
  NCCL_LIBDIR := $(firstword $(foreach d,lib64 lib,$(if $(wildcard $(CUDA_HOME)/$(d)/libnccl.so),$(CUDA_HOME)/$(d))))
  ifneq ($(and $(wildcard $(CUDA_HOME)/include/nccl.h),$(NCCL_LIBDIR)),)
    NCCL_MSG := ✓ NCCL ($(NCCL_LIBDIR)): data and tensor parallel over GPUs
    CFLAGS   += -DTN_NCCL
    LDLIBS   += -L$(NCCL_LIBDIR) -Wl,-rpath,$(NCCL_LIBDIR) -lnccl
    NCCL_SRC := src/dist/comm_nccl.c
  else
    NCCL_MSG := ✗ NCCL (no nccl.h and libnccl.so under '$(CUDA_HOME)': one GPU per run)
  endif
else
  NCCL_MSG := ✗ NCCL (needs the CUDA build)
endif

LIB_SRC  := $(filter-out src/dist/comm_mpi.c src/dist/comm_nccl.c,$(shell find src -name '*.c' ! -path 'src/cli/*' | sort)) \
            $(MPI_SRC) $(NCCL_SRC)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC := $(filter-out bench/train_bench.c bench/decode_bench.c,$(sort $(wildcard bench/*.c)))  # these need CUDA: see below

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:%.c=$(BUILD)/%)
LIB      := $(BUILD)/libtnllm.a
TNLLM    := $(if $(filter 1,$(SANITIZE)),$(BUILD)/tnllm,tnllm)

.PHONY: all test tests bench clean demo report cuda
.SECONDARY:
all: report $(TNLLM) bench $(CUDA_ALL)

report:
	@echo "tnllm build: $(BLAS_MSG); ✓ OpenMP; ✓ cJSON; ✓ utf8proc, PCRE2, zlib, zstd; $(MPI_MSG); $(CUDA_MSG); $(NCCL_MSG)"

# libtnllm.a and the CUDA library (added below where nvcc is found) call
# each other (the step's dispatch, the token grouping of the CUDA
# backward): link the archives as a group.
HOST_LINK = $(CC) $(CFLAGS) -o $@ $(filter-out %.a,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(LDLIBS)

$(TNLLM): $(CLI_OBJ) $(LIB)
	@$(if $(Q),echo "  LD  $@")
	$(Q)$(HOST_LINK)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# `make V=1` shows the full commands.
Q := $(if $(filter 1,$(V)),,@)

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB)
	$(Q)$(HOST_LINK)

tests: $(TEST_BIN)

# Benchmarks: one binary per bench/*.c (flags parsed with the CLI's args).
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/src/cli/args.o $(LIB)
	$(Q)$(HOST_LINK)

bench: $(BENCH_BIN)

# Every test binary prints "N passed, M failed"; tests/run.sh sums them and
# fails if any test failed or any binary crashed.
test: all $(TEST_BIN)
	@TNLLM=./$(TNLLM) sh tests/run.sh $(TEST_BIN)

# The main job: train a small model (0.9M parameters) on the bundled corpus
# (data/README.md) on the CPU, score its validation split, draw the loss
# curve. About two minutes on 2 cores.
DEMO_DIR ?= runs/demo
demo: all
	rm -rf $(DEMO_DIR)
	./tnllm train --config data/demo-config.json --data data/corpus.jsonl --ctx 128 --micro-batch 16 \
	    --batch-tokens 4096 --steps 250 --warmup 25 --lr 2e-3 --eval-every 50 --save-every 100 --log-every 10 \
	    -o $(DEMO_DIR)
	./tnllm eval -m $(DEMO_DIR)/model --tokens $(DEMO_DIR)/val.bin --ctx 129 --stride 128
	./tnllm plot $(DEMO_DIR)
	@# seed 3: at seed 1 this model's sample falls into a run of indentation spaces (the corpus's code blocks)
	./tnllm generate -m $(DEMO_DIR)/model -p 'The "with" statement' -n 200 --temp 0.7 --top-p 0.9 --seed 3
	./tnllm generate -m $(DEMO_DIR)/model -p '《静夜思》' -n 120 --temp 0.7 --top-p 0.9 --seed 1

# CUDA: built by `make` where nvcc is found; `make` and `make test` never need it.
# build/libtnllm_cuda.a holds the kernels (sm_90); the GPU check and bench
# programs link CUDA's runtime and C++ library statically, so they run on a
# machine with a driver and nothing else (scripts/device_attention.sh).
NVCCFLAGS     ?= -O3
NVCCFLAGS     += -std=c++17 -Isrc -Xcompiler -Wall,-Wextra,-Werror -Xptxas -warn-spills
NVCC_ARCH     ?= -gencode=arch=compute_90,code=sm_90
# wgmma needs the architecture-specific target sm_90a (H100/H200 only):
# the one file that uses it is built for that target alone
NVCC_ARCH_A   ?= -gencode=arch=compute_90a,code=sm_90a
$(BUILD)/src/kernels/cuda/attention_wgmma.o: NVCC_ARCH := $(NVCC_ARCH_A)
CUDA_SRC      := $(sort $(wildcard src/kernels/cuda/*.cu src/model/*.cu src/infer/*.cu))
CUDA_OBJ      := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_LIB      := $(BUILD)/libtnllm_cuda.a
CUDA_HOST_OBJ := $(BUILD)/src/util/error.o $(BUILD)/src/util/rng.o
CUDA_LDLIBS   := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lpthread -lm -static-libstdc++ -static-libgcc

# The model's programs link the host library too, hence OpenBLAS, cJSON and
# libgomp, and cuBLAS (shared: its static form is not in every toolkit).
# (LDLIBS holds the CUDA libraries already, see below)
CUDA_MODEL_LDLIBS = $(LDLIBS) -static-libstdc++ -static-libgcc
# the two libraries call each other (the host session reaches the GPU one
# through infer/session_device.c): link them as a group
CUDA_MODEL_LINK = $(CXX) -o $@ $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(CUDA_MODEL_LDLIBS)
# the programs linked so (each one's objects listed below, one recipe for
# all); `make` builds check_dist and check_tp only where it finds NCCL
CUDA_NCCL_CHECKS    := $(BUILD)/cuda/check_dist $(BUILD)/cuda/check_tp
CUDA_MODEL_LINKED   := $(BUILD)/cuda/check_model $(BUILD)/cuda/check_baseline $(BUILD)/cuda/bench_train \
                       $(BUILD)/cuda/check_infer $(BUILD)/cuda/bench_decode $(CUDA_NCCL_CHECKS)
CUDA_MODEL_PROGRAMS := $(if $(NCCL_SRC),$(CUDA_MODEL_LINKED),$(filter-out $(CUDA_NCCL_CHECKS),$(CUDA_MODEL_LINKED)))

cuda: $(CUDA_LIB) $(BUILD)/cuda/check_attention $(BUILD)/cuda/bench_attention $(CUDA_MODEL_PROGRAMS)

ifneq ($(CUDA_ALL),)
# the host code's CUDA dispatch needs the CUDA library after libtnllm.a
$(TNLLM) $(TEST_BIN) $(BENCH_BIN): $(CUDA_LIB)
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static -ldl -lrt -lpthread \
          -Wl,-Bstatic -lstdc++ -Wl,-Bdynamic
# the GPUs' ZeRO-2/3: CUDA events order the reduction's streams, a kernel makes the gathered bf16 copy
$(BUILD)/src/dist/grad_reduce_gpu.o $(BUILD)/src/dist/fsdp_gpu.o: CFLAGS += -I$(CUDA_HOME)/include
endif

$(CUDA_LIB): $(CUDA_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.cu $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(NVCC_ARCH) -MMD -MP -c -o $@ $<

$(BUILD)/tests/cuda/check_attention.o $(BUILD)/bench/train_bench.o $(BUILD)/tests/cuda/check_infer.o \
    $(BUILD)/bench/decode_bench.o: CFLAGS += -I$(CUDA_HOME)/include

# check_model and check_baseline share the step comparison (tests/cuda/step_check.c)
$(BUILD)/tests/cuda/check_model.o $(BUILD)/tests/cuda/step_check.o: CFLAGS += -Itests
$(BUILD)/tests/cuda/check_model.o: CFLAGS += -I$(CUDA_HOME)/include
$(BUILD)/cuda/check_model: $(BUILD)/tests/cuda/check_model.o $(BUILD)/tests/cuda/step_check.o $(BUILD)/tests/testutil.o \
    $(CUDA_LIB) $(LIB)

# the Transformer baseline's kernels and training step (tests/cuda/check_baseline.c)
$(BUILD)/tests/cuda/check_baseline.o: CFLAGS += -Itests -I$(CUDA_HOME)/include
$(BUILD)/cuda/check_baseline: $(BUILD)/tests/cuda/check_baseline.o $(BUILD)/tests/cuda/step_check.o \
    $(BUILD)/tests/testutil.o $(CUDA_LIB) $(LIB)

# the GPU collectives over every GPU of the machine (tests/cuda/check_dist.c)
# and tensor parallelism's split model on them (check_tp.c), one forked rank
# per GPU (gpu_ranks.c)
$(BUILD)/src/dist/comm_nccl.o: CFLAGS += -I$(CUDA_HOME)/include
$(BUILD)/tests/cuda/check_dist.o $(BUILD)/tests/cuda/check_tp.o $(BUILD)/tests/cuda/gpu_ranks.o: \
    CFLAGS += -Itests -I$(CUDA_HOME)/include
$(BUILD)/cuda/check_dist: $(BUILD)/tests/cuda/check_dist.o $(BUILD)/tests/cuda/gpu_ranks.o $(BUILD)/tests/testutil.o \
    $(CUDA_LIB) $(LIB)
$(BUILD)/cuda/check_tp: $(BUILD)/tests/cuda/check_tp.o $(BUILD)/tests/cuda/gpu_ranks.o $(BUILD)/tests/testutil.o \
    $(CUDA_LIB) $(LIB)

$(BUILD)/cuda/bench_train: $(BUILD)/bench/train_bench.o $(CUDA_LIB) $(LIB)

$(BUILD)/tests/cuda/check_infer.o: CFLAGS += -Itests
$(BUILD)/cuda/check_infer: $(BUILD)/tests/cuda/check_infer.o $(BUILD)/tests/testutil.o $(BUILD)/tests/models.o \
                           $(CUDA_LIB) $(LIB)

$(BUILD)/cuda/bench_decode: $(BUILD)/bench/decode_bench.o $(BUILD)/src/cli/args.o $(CUDA_LIB) $(LIB)

$(CUDA_MODEL_LINKED):
	@mkdir -p $(dir $@)
	$(CUDA_MODEL_LINK)

$(BUILD)/cuda/%: $(BUILD)/tests/cuda/%.o $(CUDA_LIB) $(CUDA_HOST_OBJ)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(CUDA_LDLIBS)

$(BUILD)/cuda/bench_attention: $(BUILD)/bench/attention_bench.o $(CUDA_LIB) $(CUDA_HOST_OBJ)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(CUDA_LDLIBS)

clean:
	rm -rf build build-asan tnllm

# Every object depends on the flags it was compiled with: $(FLAGS_STAMP) is
# rewritten (when make reads this file) only when CFLAGS, NVCC or NVCCFLAGS
# differ from the last build's, so `make NVCC=` after a CUDA build (which
# drops -DTN_CUDA) rebuilds everything instead of mixing the two.
FLAGS_NOW   := $(CC) $(CFLAGS) | $(NVCC) $(NVCCFLAGS) $(NVCC_ARCH) $(NVCC_ARCH_A)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = '$(FLAGS_NOW)' ] || \
    echo '$(FLAGS_NOW)' >$(FLAGS_STAMP); })

# `tnllm --version` names the commit it was built from (+changes: with
# uncommitted or untracked files; unknown outside this project's own git checkout, such as
# a tarball unpacked inside another): $(BUILD)/version.h is rewritten the
# same way, only when that differs, so only main.c recompiles.
BUILD_COMMIT := $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
    c=$$(git rev-parse --short=12 HEAD 2>/dev/null) || c=unknown; \
    [ "$$c" = unknown ] || [ -z "$$(git status --porcelain 2>/dev/null)" ] || c="$$c+changes"; echo "$$c")
VERSION_LINE := \#define TN_BUILD_COMMIT "$(BUILD_COMMIT)"
$(shell [ "$$(cat $(BUILD)/version.h 2>/dev/null)" = '$(VERSION_LINE)' ] || echo '$(VERSION_LINE)' >$(BUILD)/version.h)
$(BUILD)/src/cli/main.o: CFLAGS += -I$(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
