# modelc — one non-recursive Makefile.  Each folder adds its sources in module.mk.
#
#   make            build build/modelc
#   make test       install what is missing, build, run every test
#   make demo       install what is missing, build, show the pipeline end to end
#   make bench-cpu  CPU prefill/decode tokens/s beside the measured bandwidth ceiling
#   make fuzz       libFuzzer targets (clang) for FUZZ_SECONDS each; make fuzz-smoke: 10 s each
#   make V=1        show the commands
#
# Objects go to build/, flex/bison output to build/gen/.  LLVM and jansson are
# linked statically so build/modelc runs on machines without them.

BUILD      := build
GEN        := $(BUILD)/gen
CC         := gcc
LLVM_CONFIG ?= llvm-config-14
PYTHON     ?= /usr/bin/python3
CUDA_HOME  ?= /usr/local/cuda
VERSION    := 0.1.0

CFLAGS_BASE := -std=c11 -Wall -Wextra -Wshadow -O2 -g -fPIC -D_GNU_SOURCE -I. -I$(GEN) -MMD -MP -pthread
CFLAGS     += $(CFLAGS_BASE)
LDFLAGS    += -pthread

ifeq ($(SAN),1)
# MODELC_SAN: modelc build links its (instrumented) runtime with the sanitizers too
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -DMODELC_SAN
LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(V),1)
Q := @
endif

# Packages `make test` and `make demo` install on a fresh machine (Debian).
APT_PACKAGES := flex bison libcmocka-dev llvm-14-dev libjansson-dev python3-numpy zlib1g-dev libncurses-dev pkg-config

LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --includedir | sed 's/^/-isystem /')
LLVM_LIBS   = $(shell $(LLVM_CONFIG) --link-static --libs orcjit native passes ipo vectorize instcombine scalaropts analysis target bitwriter 2>/dev/null)
LLVM_LIBDIR = $(shell $(LLVM_CONFIG) --libdir)
# Static zlib/tinfo keep the binary free of LLVM's system deps; jansson static too.
SYS_LIBS    := -Wl,-Bstatic -ljansson -lz -ltinfo -Wl,-Bdynamic -lstdc++ -lrt -ldl -lm

all: $(BUILD)/modelc

# ---- modules ---------------------------------------------------------------
include frontend/module.mk
include ir/module.mk
include passes/module.mk
include codegen/cpu/module.mk
include codegen/cuda/module.mk
include runtime/module.mk
include cli/module.mk
include tests/module.mk
include bench/module.mk
include tests/fuzz/fuzz.mk

COMPILER_OBJS := $(FRONTEND_SRCS:%.c=$(BUILD)/%.o) $(FRONTEND_GEN_OBJS) \
                 $(IR_SRCS:%.c=$(BUILD)/%.o) $(PASSES_SRCS:%.c=$(BUILD)/%.o) \
                 $(CODEGEN_CPU_SRCS:%.c=$(BUILD)/%.o) $(CODEGEN_CUDA_SRCS:%.c=$(BUILD)/%.o) \
                 $(BUILD)/codegen/cuda/prelude.o
RUNTIME_OBJS  := $(RUNTIME_SRCS:%.c=$(BUILD)/%.o)

$(BUILD)/libmodelc.a: $(COMPILER_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# The runtime (position-independent): what `modelc build` links into
# executables and libraries (embedded in modelc, see cli/rtblob.S, beside
# jansson's static archive for executables) and what `make install` installs.
JANSSON_A = $(shell $(CC) -print-file-name=libjansson.a)
$(BUILD)/libmodelc_rt.a: $(BUILD)/libruntime.a
	@echo "  CP      $@"
	$(Q)cp $< $@

$(BUILD)/cli/rtblob.o: cli/rtblob.S $(BUILD)/libmodelc_rt.a
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(CC) -c -DRT_ARCHIVE='"$(BUILD)/libmodelc_rt.a"' -DJANSSON_ARCHIVE='"$(JANSSON_A)"' -o $@ $<

$(BUILD)/modelc: $(CLI_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/cli/rtblob.o $(BUILD)/libmodelc.a $(BUILD)/libmodelc_rt.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -L$(LLVM_LIBDIR) $(LLVM_LIBS) $(SYS_LIBS)

# Codegen talks to LLVM: those objects see LLVM's headers.
$(CODEGEN_CPU_SRCS:%.c=$(BUILD)/%.o): CFLAGS += $(LLVM_CFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# ---- set-up on a fresh machine ---------------------------------------------
# Installs only what is missing; quiet and fast when everything is there.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "  DEPS    installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || \
	  { echo "modelc: error: could not install:$$missing (apt-get failed)"; exit 1; }; \
	fi
	@# the tests' NumPy references run under whatever python3 is first on PATH (a pyenv or venv one
	@# does not see Debian's python3-numpy)
	@python3 -c 'import numpy' 2>/dev/null || { echo "  DEPS    pip install numpy (for $$(command -v python3))"; \
	  python3 -m pip install --quiet numpy || { echo "modelc: error: python3 has no numpy and pip could not install it"; exit 1; }; }

clean:
	rm -rf $(BUILD)

.PHONY: all deps clean test demo bench-cpu install uninstall

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)MODELC=$(BUILD)/modelc PYTHON=$(PYTHON) examples/demo.sh

# ---- install ---------------------------------------------------------------
PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/modelc $(DESTDIR)$(PREFIX)/bin/modelc
	install -m 644 $(BUILD)/libmodelc_rt.a $(DESTDIR)$(PREFIX)/lib/libmodelc_rt.a
	install -m 644 runtime/modelc.h $(DESTDIR)$(PREFIX)/include/modelc.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' modelc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/modelc.pc
	@echo "installed modelc under $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/modelc $(DESTDIR)$(PREFIX)/lib/libmodelc_rt.a \
	      $(DESTDIR)$(PREFIX)/include/modelc.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/modelc.pc

# llama.cpp as the peer (pip install llama-cpp-python compiles it: minutes),
# kept out of `make test`.
test-peer: all
	@python3 -c 'import llama_cpp' 2>/dev/null || python3 -m pip install llama-cpp-python
	@python3 -c 'import gguf' 2>/dev/null || python3 -m pip install gguf
	$(Q)python3 tests/peer/peer_llamacpp.py --modelc $(BUILD)/modelc
.PHONY: test-peer

# The CPU end-to-end paths and the hostile-input corpus under valgrind memcheck
# (tests/valgrind.sh; a few minutes; CI runs it).
test-valgrind: APT_PACKAGES += valgrind
test-valgrind: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash tests/valgrind.sh $(BUILD)
.PHONY: test-valgrind
