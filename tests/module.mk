# Tests mirror the tree: tests/<layer>/test_*.c, each a cmocka binary linked
# against the libraries of its layer and those below it.  tests/e2e/ holds the
# end-to-end runs against the NumPy reference (tests/ref/).

LAYER_LIBS_frontend := frontend ir
LAYER_LIBS_ir       := passes frontend ir runtime
LAYER_LIBS_passes   := passes frontend ir runtime
LAYER_LIBS_codegen  := codegen passes frontend ir runtime
LAYER_LIBS_runtime  := runtime
LAYER_LIBS_cli      := codegen passes frontend ir runtime

TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

define test_rule
$(BUILD)/tests/$(1)/%: $(BUILD)/tests/$(1)/%.o $(foreach l,$(LAYER_LIBS_$(1)),$(BUILD)/lib$(l).a)
	@echo "  LD      $$@"
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ -lcmocka -L$(LLVM_LIBDIR) $(if $(filter codegen,$(LAYER_LIBS_$(1))),$(LLVM_LIBS)) $(SYS_LIBS)
endef
$(foreach d,frontend ir passes codegen runtime cli,$(eval $(call test_rule,$(d))))

$(BUILD)/lib%.a:
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libfrontend.a: $(FRONTEND_SRCS:%.c=$(BUILD)/%.o) $(FRONTEND_GEN_OBJS)
$(BUILD)/libir.a:       $(IR_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/libpasses.a:   $(PASSES_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/libcodegen.a:  $(CODEGEN_CPU_SRCS:%.c=$(BUILD)/%.o) $(CODEGEN_CUDA_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/codegen/cuda/prelude.o
$(BUILD)/libruntime.a:  $(RUNTIME_SRCS:%.c=$(BUILD)/%.o)

# Unit tests first (fast), then the end-to-end comparisons.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(TEST_BINS)
	$(Q)$(PYTHON) tests/run_tests.py --build $(BUILD) $(TEST_BINS)

test-unit: all $(TEST_BINS)
	$(Q)$(PYTHON) tests/run_tests.py --build $(BUILD) --unit-only $(TEST_BINS)

.PHONY: test-unit
.PRECIOUS: $(BUILD)/tests/%.o

# Allocation-failure injection: modelc's own allocations go through the test's wrappers.
$(BUILD)/tests/cli/test_allocfail: $(BUILD)/tests/cli/test_allocfail.o $(foreach l,$(LAYER_LIBS_cli),$(BUILD)/lib$(l).a)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free -o $@ $^ -lcmocka \
	    -L$(LLVM_LIBDIR) $(LLVM_LIBS) $(SYS_LIBS)
