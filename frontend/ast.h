/* frontend/ast.h — the syntax tree of a model spec.
 *
 * The parser builds it; sema (frontend/sema.c) checks names, arity and kinds;
 * lowering (passes/lower.c) evaluates parameters and turns it into graph IR.
 * Every node carries the SrcLoc of its first token (for a binary expression,
 * its operator) so later stages can point at it.  All memory is arena memory. */
#ifndef MODELC_AST_H
#define MODELC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "frontend/diag.h"

typedef enum {
    EX_INT,      /* ival */
    EX_FLOAT,    /* fval */
    EX_STRING,   /* sval: may hold {name} placeholders, expanded by lowering */
    EX_BOOL,     /* ival 0/1 */
    EX_NAME,     /* name */
    EX_CALL,     /* name(args...), args may carry keyword names */
    EX_UNARY,    /* op: '-' or '!'; a */
    EX_BINARY,   /* op: '+','-','*','/','%','<','>',TK_LE..; a, b */
    EX_TERNARY,  /* a ? b : c */
    EX_COALESCE, /* a ?? b : b when a is a config() lookup that found nothing */
} ExprKind;

/* binary operators that are not a single character */
enum { BIN_EQ = 256, BIN_NE, BIN_LE, BIN_GE, BIN_AND, BIN_OR };

typedef struct Expr Expr;

typedef struct Arg {
    const char *kw;      /* keyword name, NULL for positional */
    SrcLoc kwloc;
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    SrcLoc loc;
    int op;
    int64_t ival;
    double fval;
    const char *sval;    /* EX_STRING contents (escapes resolved) */
    const char *name;    /* EX_NAME, EX_CALL */
    Expr *a, *b, *c;
    Arg *args;           /* EX_CALL */
    int nargs;
};

typedef enum { TY_ANY = 0, TY_F32, TY_F16, TY_BF16, TY_I32 } TypeDType;  /* TY_ANY: "float, whatever the checkpoint holds" */

typedef struct TypeExpr {
    SrcLoc loc;
    TypeDType dtype;     /* TY_ANY when the spec wrote no dtype */
    bool has_shape;
    Expr **dims;         /* each an expression; a bare batch/seq/ctx is a symbolic dim */
    int rank;
} TypeExpr;

typedef enum {
    ST_PARAM,    /* param name = value */
    ST_INPUT,    /* input name : type */
    ST_WEIGHT,   /* weight name : type = value (a string: checkpoint name; or a weight name: alias) */
    ST_ASSIGN,   /* name = value (rebinding allowed) */
    ST_OUTPUT,   /* output name = value */
    ST_REPEAT,   /* repeat name < value { body } */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    SrcLoc loc;          /* the keyword, or the name for ST_ASSIGN */
    const char *name;
    SrcLoc nameloc;
    TypeExpr *type;      /* ST_INPUT, ST_WEIGHT */
    Expr *value;         /* ST_PARAM/WEIGHT/ASSIGN/OUTPUT; ST_REPEAT: the bound */
    Stmt *body;          /* ST_REPEAT */
    Stmt *next;
};

typedef struct Module {
    const char *name;
    SrcLoc loc;
    Stmt *body;
    const Source *src;
} Module;

#endif
