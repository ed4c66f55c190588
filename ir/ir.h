/* ir/ir.h — the graph IR.
 *
 * A Graph is a list of Nodes in topological order (every operand of a node
 * comes before it).  A node is one tensor-valued operation: its op comes from
 * ir/ops.def, its operands are earlier nodes, its result has a dtype and a
 * shape.  Shapes are concrete except for the symbolic dims below: activations
 * are [seq, ...], where seq is the number of tokens in the current step.
 *
 * Invariants (checked by ir_verify after every pass):
 *   - nodes[i]->id == i; operands have smaller ids; no NULL operands;
 *   - every non-leaf node has a dtype and a shape consistent with its op's
 *     inference (ir/infer.c) once the "infer" pass has run;
 *   - outputs are nodes of the graph.
 *
 * Memory: nodes, names and attributes live in the graph's arena. */
#ifndef MODELC_IR_H
#define MODELC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "frontend/diag.h"
#include "ir/arena.h"

enum { OPF_LEAF = 1, OPF_VIEW = 2, OPF_ELEMENTWISE = 4 };

typedef enum {
#define OP(id, name, sig, kw, flags, infer, emit) OP_##id,
#include "ir/ops.def"
#undef OP
    OP_COUNT
} OpKind;

typedef struct OpInfo {
    const char *name;   /* spec name, or the enum's lower-case spelling for internal ops */
    const char *sig, *kw;
    unsigned flags;
} OpInfo;

extern const OpInfo ir_ops[OP_COUNT];
const char *ir_op_name(OpKind op);

/* DT_Q8_0/Q4_0/Q4_1: ggml blocks of 32 values (weights only: linear, embedding).
 * DT_Q8_1: ggml's block_q8_1 {f16 d, s; i8 q[32]} (s = d * sum q), the 8-bit
 * activations pass "quantize" gives the CPU linears of block weights. */
typedef enum { DT_NONE, DT_F32, DT_F16, DT_BF16, DT_I32, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q8_1 } DType;

const char *ir_dtype_name(DType t);
int ir_dtype_size(DType t);        /* 0 for block types */
int ir_block_bytes(DType t);       /* bytes per block of 32; 0 for plain types */

/* Symbolic dims are negative; concrete dims are >= 0. */
enum { DIM_SEQ = -1, DIM_BATCH = -2, DIM_CTX = -3, DIM_UNKNOWN = -100 };
#define IR_MAX_RANK 8
#define IR_MAX_SRC 4

/* Fused elementwise programs (pass "fuse"): a postfix program over the node's
 * operands.  EW_LOAD pushes src[arg]; the others pop their operands. */
typedef enum { EW_LOAD, EW_SILU, EW_ADD, EW_SUB, EW_MUL } EwCode;
#define IR_MAX_EW 16
typedef struct EwProg {
    int n;
    uint8_t code[IR_MAX_EW], arg[IR_MAX_EW];
} EwProg;

typedef struct RopeAttr {
    double theta;
    bool llama3;        /* Llama-3 frequency scaling */
    double factor, low_freq, high_freq;
    int64_t orig_ctx;
} RopeAttr;

/* Pass "select" (CUDA target): which kernel family and parameters an op
 * gets, per range of step sizes T (the runtime picks by T each step). */
typedef enum {
    KF_GEMV, KF_MMA, KF_ATTN_SPLIT, KF_ATTN_ROWS, KF_ATTN_MMA, KF_NORM_ROWS, KF_NORM_IN_GEMV,
    KF_WGMMA   /* sm_90a: warpgroup MMA from shared memory */
} KernelFamily;
typedef struct KernelChoice {
    KernelFamily family;
    int64_t min_T, max_T;        /* max_T 0: no upper bound */
    int p[6];                    /* GEMV: rows per warp, vector loads (1/0), warps per row (0/1: one), 16-byte loads per lane
                                    and row in flight (0: 8 for one row, else 2), lines of 128 bytes of each row prefetched
                                    to L2 (0: up to 128, -1: none); MMA: BM, BN, BK, warps, split A
                                    (1: activations as two 16-bit terms), K splits (0/1: none); WGMMA: BM, BN, BK,
                                    warpgroups, weight stages; ATTN_SPLIT: least keys per piece, most pieces,
                                    KB of a later launch's weights pulled into L2 (0: none), early cached keys (1/0:
                                    each warp loads its first 8 before waiting) */
    bool x_f16, y_f16;           /* the variant reads its input x (a linear's) / writes its output as f16 values
                                    (select: where the only readers of an activation are wgmma GEMMs) */
    const char *why;
} KernelChoice;
/* A GEMV choice's warps per row (p[2]; 0 reads as 1). */
static inline int ir_gemv_warps_per_row(const KernelChoice *k)
{
    return k->p[2] > 1 ? k->p[2] : 1;
}
/* The blocks per SM a GEMV with `batch` 16-byte loads in flight per lane and
 * row keeps registers for (__launch_bounds__): 2 loads 4 blocks, 3 loads 3,
 * 4 loads 2; 0 for 8 (one row per warp: unbounded).  select picks the batch
 * by blocks per SM, the CUDA backend bounds the kernel by it. */
static inline int ir_gemv_min_blocks(int batch)
{
    return batch == 8 ? 0 : batch == 2 ? 4 : batch == 3 ? 3 : 2;
}
/* An MMA choice's K splits (p[5]; 0 reads as 1): blocks of one output tile
 * that each sum a range of K, the last of them adding the others' sums. */
static inline int ir_mma_ksplit(const KernelChoice *k)
{
    return k->p[5] > 1 ? k->p[5] : 1;
}
/* The most output tiles (N tiles x M tiles at the largest T) a K-split GEMM
 * launch may have: the CUDA scratch buffer has one counter for each. */
enum { IR_KSPLIT_MAX_TILES = 2048 };
const char *ir_kernel_family_name(KernelFamily f);
void ir_print_choice(const KernelChoice *k, FILE *f);

typedef struct Node {
    int id;
    OpKind op;
    DType dt;
    int rank;
    int64_t shape[IR_MAX_RANK];
    SrcLoc loc;                  /* where the spec wrote it */
    struct Node *src[IR_MAX_SRC];
    int nsrc;
    const char *name;            /* spec variable it was bound to, if any (for reading the IR) */
    const char *weight;          /* OP_WEIGHT: checkpoint tensor name; OP_INPUT: input name */
    DType want_dt;               /* OP_WEIGHT: dtype the spec demanded (DT_NONE: any float) */
    union {
        double eps;              /* RMS_NORM */
        int64_t heads;           /* SPLIT_HEADS */
        RopeAttr rope;           /* ROPE */
        struct {                 /* ATTENTION (scale 0: 1/sqrt(head_dim)) */
            bool causal;
            double scale;
            bool rope;           /* pass "epilogue": q and k are rotated here, by rope_attr, not before */
            RopeAttr rope_attr;
        } attn;
        EwProg ew;               /* FUSED */
        struct {                 /* LINEAR_EW (pass "epilogue"): src = x, W_0..W_{nw-1}, then elementwise operands; */
            EwProg ew;           /* the program's $i is x W_i^T for i < nw, else src[1 + i] */
            int nw;
        } lew;
    } a;
    int layer;                   /* repeat iteration it came from, -1 outside */
    int nuses;                   /* filled by ir_count_uses */
    int buf;                     /* pass "plan": runtime buffer id (-1 none) */
    const char *output;          /* non-NULL: an output of the model with this name */
    struct Node *lead;           /* LINEAR (pass "epilogue"): the linear of the same input whose launch computes this one */
    KernelChoice *choice;        /* pass "select": nchoice variants, by step size */
    int nchoice;
} Node;

typedef struct Graph {
    Arena *arena;
    const char *name;
    Node **nodes;
    int n, cap;
    int nslots;                  /* pass "plan": activation slots, sized per token + constant */
    int64_t *slot_per_tok, *slot_const;   /* bytes */
} Graph;

Graph *ir_graph_new(Arena *a, const char *name);
Node *ir_node(Graph *g, OpKind op, SrcLoc loc, int nsrc, Node **src);   /* appends; shape filled by infer */
void ir_renumber(Graph *g);               /* ids = positions */
void ir_count_uses(Graph *g);
/* Linears of one input computed by one launch (pass "epilogue"): the lead and
 * the nodes whose Node.lead it is, in graph order, at most IR_MAX_GROUP. */
#define IR_MAX_GROUP 3
int ir_group(const Graph *g, const Node *lead, const Node **parts);
/* Element count as per_tok*T + constant; -1: a symbolic dim other than one seq; -2: overflows int64. */
int ir_numel_per_tok(const Node *n, int64_t *per_tok, int64_t *constant);
bool ir_is_float(DType t);
/* The postfix program of an elementwise node (a plain add/sub/mul/silu or a fused one). */
void ir_ew_program(const Node *n, EwProg *p);

/* RoPE inverse frequencies (dh/2 of them), in double, with Llama-3 scaling
 * when asked (as transformers' _compute_llama3_parameters). */
void ir_rope_inv_freq(const RopeAttr *r, int64_t dh, double *inv);

/* An attention's score scale: its scale attribute, or 1/sqrt(head_dim). */
double ir_attention_scale(const Node *n);

/* Printer: stable text, one node per line, for --print-after and golden tests. */
void ir_print(const Graph *g, FILE *f);
void ir_print_node(const Node *n, FILE *f);
char *ir_shape_str(Arena *a, const Node *n);

/* Verifier: structural invariants.  A failure is a compiler bug: it prints the
 * IR and aborts via IR_BUG. */
void ir_verify(const Graph *g, const char *after_pass);

/* Shape inference for one node; user errors go to d at n->loc. */
bool ir_infer_node(Node *n, Diags *d);

_Noreturn void ir_bug(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define IR_BUG(...) ir_bug(__FILE__, __LINE__, __VA_ARGS__)
#define IR_ASSERT(c) ((c) ? (void)0 : ir_bug(__FILE__, __LINE__, "assertion failed: %s", #c))

#endif
