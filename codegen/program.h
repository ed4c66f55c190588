/* codegen/program.h — the program tables every backend builds beside its
 * code: runtime buffers for the graph's leaves and activation slots, and the
 * launches in order, each commented with the IR node it came from. */
#ifndef MODELC_CODEGEN_PROGRAM_H
#define MODELC_CODEGEN_PROGRAM_H

#include "passes/passes.h"
#include "runtime/runtime.h"

typedef struct ProgTables {
    Compilation *c;
    int *node_buf;                 /* node id -> RtBuf id */
    RtBuf *bufs;
    int nbufs, capbufs;
    RtLaunch *launch;
    int nlaunch, caplaunch;
    const char **comment;          /* per launch: the IR node, for emitted text */
} ProgTables;

void pt_init(ProgTables *t, Compilation *c);
int pt_new_buf(ProgTables *t);                       /* a new RtBuf id */
/* The f32 KV cache of an attention node (which 0: k, 1: v), sized per position
 * (the runtime allocates it for its max context); the RtBuf id. */
int pt_new_kv_buf(ProgTables *t, const Node *attention, int which);
/* false, with a diagnostic, when some parameter has no value (no code can be generated) */
bool pt_bound(const Compilation *c);
RtLaunch *pt_new_launch(ProgTables *t, const Node *n, const char *kernel);   /* zeroed, kernel and what set */
/* Buffers for the graph's inputs, weights and slots; checks the graph is one
 * the runtime can feed: one i32 [seq] input of token ids, first output
 * f32 [seq, vocab].  Fills p's tokens_buf, logits_buf, vocab, n_token_ids. */
bool pt_assign_buffers(ProgTables *t, RtProgram *p);
/* Hand the tables to p (nbufs, bufs, nlaunch, launch, slots). */
void pt_finish(ProgTables *t, RtProgram *p);
/* "k14_rms_norm_h_L0" + suffix: the node's id, op, variable and layer. */
const char *pt_kernel_name(Arena *a, const Node *n, const char *suffix);
/* The node as one line of the IR printer (for comments in generated code). */
const char *pt_node_text(Arena *a, const Node *n);
RtDType pt_rt_dtype(DType t);

#endif
