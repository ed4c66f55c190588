IR_SRCS := ir/arena.c ir/ir.c ir/infer.c ir/print.c ir/verify.c
