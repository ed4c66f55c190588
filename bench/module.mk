# bench/: benchmarks print tables; they assert nothing (tests do that).
$(BUILD)/bench/membw: bench/membw.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) -O2 -march=native -pthread -o $@ $<

bench-cpu: deps all $(BUILD)/bench/membw
	$(Q)$(PYTHON) bench/cpu_bench.py --modelc $(BUILD)/modelc --membw $(BUILD)/bench/membw
