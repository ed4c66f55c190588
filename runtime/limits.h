/* runtime/limits.h — the named limits on what modelc reads.
 *
 * Every file modelc reads may come from a stranger.  Each count, size and
 * depth it takes from one is checked against a limit here before it is used,
 * and input past a limit is refused with a message naming the file and the
 * limit -- never a crash or an out-of-bounds read.  The README lists them. */
#ifndef MODELC_LIMITS_H
#define MODELC_LIMITS_H

/* spec files (frontend/) */
#define FE_MAX_SOURCE_BYTES (16u << 20)     /* a spec file: 16 MiB */
#define FE_MAX_IDENT_LEN 256                /* an identifier, in bytes */
#define FE_MAX_STRING_LEN 4096              /* a string literal, in bytes */
#define FE_MAX_NESTING 64                   /* parenthesis / call / repeat depth */
#define FE_MAX_RANK 8                       /* dims of a declared tensor */
#define PARSE_MAX_EXPR_DEPTH 1000           /* nodes on one expression's deepest path */
#define SEMA_MAX_DEPTH 10000                /* guard for hand-built trees (parsed ones stay far below) */

/* lowering a spec to the graph (passes/lower.c) */
#define LOWER_MAX_REPEAT 100000             /* one repeat block's count */
#define LOWER_MAX_ITERATIONS (1 << 20)      /* repeat iterations in all, nested ones multiplied */
#define LOWER_MAX_NODES (1 << 20)           /* graph nodes of the expanded model */

/* safetensors checkpoints (runtime/safetensors.c) */
#define RT_MAX_RANK 8                       /* dims of a tensor */
#define RT_MAX_HEADER_BYTES (100u << 20)    /* the JSON header */
#define RT_MAX_TENSORS (1u << 20)           /* tensors in a checkpoint */

/* GGUF files (runtime/gguf.c) */
#define GGUF_MAX_DIMS 4                     /* dims of a tensor, as ggml */
#define GGUF_MAX_ALIGNMENT 65536            /* general.alignment */
#define RT_GGUF_MAX_KV 65536                /* metadata entries */
#define RT_GGUF_MAX_STRING (16u << 20)      /* one string */
#define RT_GGUF_MAX_ARRAY (1u << 24)        /* elements of one metadata array */

/* tokenizers (runtime/tokenizer.c: GGUF metadata or tokenizer.json) */
#define TOK_MAX_VOCAB (1 << 24)             /* token ids */
#define TOK_MAX_ID_GAP 65536                /* ids past the number of entries (holes in the vocabulary) */
#define TOK_MAX_EOG 16                      /* end-of-generation tokens */

/* running */
#define RT_MAX_PROMPT 1000000               /* prompt tokens of one run */
#define CLI_MAX_SET 64                      /* --set options */

#endif
