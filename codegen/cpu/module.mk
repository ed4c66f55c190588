CODEGEN_CPU_SRCS := codegen/program.c codegen/cpu/builder.c codegen/cpu/kernels.c codegen/cpu/codegen.c
