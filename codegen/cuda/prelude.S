/* codegen/cuda/prelude.S — codegen/cuda/prelude.cu as the NUL-terminated
 * string cuda_prelude, so the helpers stay a readable CUDA file. */
    .section .rodata
    .global cuda_prelude
    .type cuda_prelude, @object
cuda_prelude:
    .incbin PRELUDE_PATH
    .byte 0
    .size cuda_prelude, . - cuda_prelude
    .section .note.GNU-stack,"",@progbits
