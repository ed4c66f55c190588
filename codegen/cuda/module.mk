# codegen/cuda/: CUDA C generation and NVRTC (opened with dlopen at run time).
CODEGEN_CUDA_SRCS := codegen/cuda/codegen.c codegen/cuda/kernels.c codegen/cuda/nvrtc.c
CODEGEN_CUDA_ASM  := codegen/cuda/prelude.S

$(BUILD)/codegen/cuda/prelude.o: codegen/cuda/prelude.S codegen/cuda/prelude.cu
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(CC) -c -DPRELUDE_PATH='"codegen/cuda/prelude.cu"' -o $@ $<
