# tests/fuzz/fuzz.mk — libFuzzer targets (clang, ASan + UBSan), built into build-fuzz/.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="spec gguf"]   build, run each target, print a table
#   make fuzz-smoke                                          the same for 10 s each (CI)
#   make fuzz-build                                          build only
#   make fuzz-replay                                         run each target over its corpora once
#
# The fuzz build compiles the sources it needs itself (instrumented), never
# touching build/.  flex/bison output comes from build/gen/ when that is
# there and newer than frontend/parser.y and lexer.l, else it is generated
# into build-fuzz/gen/.  Targets: tests/fuzz/fuzz_*.c; seeds:
# tests/fuzz/corpus/<target>/ (tests/fuzz/make_seeds.py writes them);
# findings: build-fuzz/crashes/<target>/.  Needs clang-14 and its libFuzzer
# runtime (libclang-rt-14-dev): `make fuzz-deps` installs them.
#
# An input that takes minutes or exhausts memory (a known, unfixed finding)
# goes to tests/fuzz/hangs/, out of the replayed corpora, until it is fast;
# then to corpus/<target>/ as regress-*.  None is open now.

FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
# target:max_len (bytes) — sized to each format's seeds
FUZZ_ALL     := spec:8192 safetensors:8192 gguf:32768 config:4096 tokenizer:32768
FUZZ_TARGETS ?= $(foreach t,$(FUZZ_ALL),$(firstword $(subst :, ,$(t))))
FUZZ_APT_PACKAGES := clang-14 libclang-rt-14-dev

FUZZ_GEN := $(shell [ -f $(GEN)/parser.c ] && [ -f $(GEN)/parser.h ] && [ -f $(GEN)/lexer.c ] && \
                    [ -f $(GEN)/lexer.h ] && [ $(GEN)/parser.c -nt frontend/parser.y ] && \
                    [ $(GEN)/lexer.c -nt frontend/lexer.l ] && echo $(GEN))
ifeq ($(FUZZ_GEN),)
FUZZ_GEN := $(FUZZ_BUILD)/gen
$(FUZZ_GEN)/parser.c $(FUZZ_GEN)/parser.h: frontend/parser.y
	@mkdir -p $(FUZZ_GEN)
	@echo "  BISON   $< (fuzz)"
	$(Q)bison -Wall --defines=$(FUZZ_GEN)/parser.h -o $(FUZZ_GEN)/parser.c $<
$(FUZZ_GEN)/lexer.c $(FUZZ_GEN)/lexer.h: frontend/lexer.l $(FUZZ_GEN)/parser.h
	@mkdir -p $(FUZZ_GEN)
	@echo "  FLEX    $< (fuzz)"
	$(Q)flex --header-file=$(FUZZ_GEN)/lexer.h -o $(FUZZ_GEN)/lexer.c $<
endif

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -pthread -I. -I$(FUZZ_GEN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
               -DFUZZ_ROOT='"$(CURDIR)"' -MMD -MP
FUZZ_LIBS   := -ljansson -lm -ldl -lrt -pthread

# What the targets reach: the frontend, the IR and the passes (fuzz_spec,
# fuzz_config) and the readers of the runtime.
FUZZ_RT_SRCS := runtime/err.c runtime/half.c runtime/safetensors.c runtime/checkpoint.c runtime/config.c \
                runtime/gguf.c runtime/quant.c runtime/tokenizer.c runtime/unicode.c
FUZZ_LIB_SRCS := $(FRONTEND_SRCS) $(IR_SRCS) $(PASSES_SRCS) $(FUZZ_RT_SRCS)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/gen/parser.o $(FUZZ_BUILD)/obj/gen/lexer.o
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

# generated code is not held to warnings
$(FUZZ_BUILD)/obj/gen/%.o: $(FUZZ_GEN)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -w -c -o $@ $<

$(FUZZ_BUILD)/obj/frontend/parse.o $(FUZZ_BUILD)/obj/frontend/sema.o $(FUZZ_BUILD)/obj/gen/lexer.o: \
    $(FUZZ_GEN)/parser.h $(FUZZ_GEN)/lexer.h

$(FUZZ_BUILD)/libmodelc_fuzz.a: $(FUZZ_LIB_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmodelc_fuzz.a
	@echo "  LD      $@"
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

fuzz-deps:
	$(Q)$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(FUZZ_APT_PACKAGES)"

fuzz-build: fuzz-deps
	$(Q)$(MAKE) --no-print-directory -s $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) \
	    $(foreach t,$(FUZZ_TARGETS),$(filter $(t):%,$(FUZZ_ALL)))

fuzz-smoke:
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# every seed and every input found so far, once each: a quick regression check
fuzz-replay: fuzz-build
	$(Q)for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "  REPLAY  $$t"; \
	  UBSAN_OPTIONS=print_stacktrace=1 FUZZ_ROOT=$(CURDIR) $(FUZZ_BUILD)/fuzz_$$t -runs=0 $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
	    >$(FUZZ_BUILD)/replay-$$t.log 2>&1 || { tail -40 $(FUZZ_BUILD)/replay-$$t.log; exit 1; }; \
	done

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-deps fuzz-replay
.PRECIOUS: $(FUZZ_BUILD)/obj/%.o

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
