/* frontend/parser.y — the grammar of a model spec (bison, pure, reentrant).
 *
 *   file    : model                          exactly one per file
 *   model   : 'model' NAME '{' stmt* '}'
 *   stmt    : 'param' NAME '=' expr
 *           | 'input' NAME ':' type
 *           | 'weight' NAME ':' type '=' expr
 *           | NAME '=' expr
 *           | 'output' NAME '=' expr
 *           | 'repeat' NAME '<' expr '{' stmt* '}'
 *           | ';'                             an optional statement end
 *   type    : dtype | dtype? '[' expr (',' expr)* ']'
 *   expr    : expr '?' expr ':' expr          right associative, lowest
 *           | expr '??' expr | '||' | '&&' | '==' '!=' '<' '<=' '>' '>='
 *           | '+' '-' | '*' '/' '%'           all left associative
 *           | '-' expr | '!' expr
 *           | NAME '(' args? ')' | NAME | INT | FLOAT | STRING | true | false
 *           | '(' expr ')'
 *   args    : arg (',' arg)*                  positionals first, then keywords
 *   arg     : expr | NAME ':' expr
 *
 * Newlines mean nothing to the grammar.  On a syntax error the parser reports
 * it, pops back to the innermost statement list and the lexer skips ahead to
 * the next token that can start a statement (the first token of a line, a
 * statement keyword, ';' or '}'), so one run reports several errors.
 *
 * Invariants of the tree handed out (fe_parse_* returns NULL otherwise):
 * parentheses and repeat bodies nest at most FE_MAX_NESTING deep, a type has
 * at most FE_MAX_RANK dims, and no expression tree is deeper than
 * PARSE_MAX_EXPR_DEPTH, so later passes may recurse over it freely.
 *
 * Every node's SrcLoc is its first token, except binary, '?:' and '??'
 * expressions, which point at their operator. */

%code top {
#include <stdlib.h>
#include <string.h>
}

%code requires {
#include <stdbool.h>
#include <stdint.h>

#include "frontend/frontend.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* State shared by the lexer (yyextra), the parser (parse-param) and parse.c. */
typedef struct ParseCtx {
    Arena *arena;
    Diags *diags;
    const Source *src;
    Module *module;        /* the first model parsed */
    int nerrors_at_start;  /* diags->nerrors before this parse */
    /* lexer position of the next byte */
    size_t pos;
    int line, col;
    int end_line, end_col; /* just past the last token: where end of file is reported */
    bool at_bol;           /* nothing but blanks/comments since the last newline */
    /* the last token handed to the parser: the lookahead when an error is reported */
    size_t tok_pos;
    int tok_len;
    bool tok_bol;          /* it was the first token on its line */
    bool resync;           /* after a syntax error: skip to a statement start */
    bool fatal;            /* a hard limit was hit: the lexer only returns EOF */
    int paren_depth, brace_depth;
} ParseCtx;

/* An expression under construction and the depth of its tree. */
typedef struct ExprVal {
    Expr *e;
    int depth;
} ExprVal;

typedef struct ArgList {
    Arg *v;
    int n, cap;
    int depth;             /* deepest argument */
} ArgList;

typedef struct DimList {
    Expr **v;
    int n, cap;
    bool too_many;         /* past FE_MAX_RANK: reported once */
} DimList;

typedef struct StmtList {
    Stmt *head, *tail;
} StmtList;

/* a lexer token position or an AST location, from a bison location */
#define PARSE_LOC(ctx, l) ((SrcLoc){ (ctx)->src, (l).first_line, (l).first_column })
}

%code provides {
int fe_yylex(FE_YYSTYPE *lval, FE_YYLTYPE *lloc, yyscan_t scanner);
}

%code {
static void yyerror(YYLTYPE *l, yyscan_t scanner, ParseCtx *ctx, const char *msg);

static Expr *new_expr(ParseCtx *c, ExprKind k, YYLTYPE l)
{
    Expr *e = arena_alloc(c->arena, sizeof *e);
    e->kind = k;
    e->loc = PARSE_LOC(c, l);
    return e;
}

/* Every interior node passes through here: the tree depth is bounded so that
 * later recursive walks cannot run out of stack.  Passing the bound ends the
 * parse (the lexer returns end of file from then on), which also keeps a huge
 * one-line expression from filling memory with nodes nobody will use. */
static ExprVal finish(ParseCtx *c, Expr *e, int depth)
{
    if (depth > PARSE_MAX_EXPR_DEPTH && !c->fatal) {
        diag_error(c->diags, e->loc, "expression is nested too deeply (more than %d levels)",
                   PARSE_MAX_EXPR_DEPTH);
        c->fatal = true;
    }
    return (ExprVal){ e, depth };
}

static int max2(int a, int b) { return a > b ? a : b; }

static ExprVal leaf(Expr *e) { return (ExprVal){ e, 1 }; }

static ExprVal unary(ParseCtx *c, YYLTYPE l, int op, ExprVal a)
{
    Expr *e = new_expr(c, EX_UNARY, l);
    e->op = op;
    e->a = a.e;
    return finish(c, e, a.depth + 1);
}

static ExprVal binary(ParseCtx *c, YYLTYPE l, ExprKind k, int op, ExprVal a, ExprVal b)
{
    Expr *e = new_expr(c, k, l);
    e->op = op;
    e->a = a.e;
    e->b = b.e;
    return finish(c, e, max2(a.depth, b.depth) + 1);
}

static ExprVal ternary(ParseCtx *c, YYLTYPE l, ExprVal a, ExprVal b, ExprVal x)
{
    Expr *e = new_expr(c, EX_TERNARY, l);
    e->a = a.e;
    e->b = b.e;
    e->c = x.e;
    return finish(c, e, max2(a.depth, max2(b.depth, x.depth)) + 1);
}

static ExprVal call(ParseCtx *c, YYLTYPE l, const char *name, ArgList args)
{
    Expr *e = new_expr(c, EX_CALL, l);
    e->name = name;
    e->args = args.v;
    e->nargs = args.n;
    return finish(c, e, args.depth + 1);
}

/* Arrays grow by doubling inside the arena; the old copy is simply left. */
static ArgList arg_push(ParseCtx *c, ArgList l, Arg a, int depth)
{
    if (l.n > 0 && a.kw == NULL && l.v[l.n - 1].kw != NULL)
        diag_error(c->diags, a.value->loc, "positional argument after keyword argument");
    if (l.n == l.cap) {
        int cap = l.cap ? 2 * l.cap : 4;
        Arg *v = arena_alloc(c->arena, (size_t)cap * sizeof *v);
        if (l.n)
            memcpy(v, l.v, (size_t)l.n * sizeof *v);
        l.v = v;
        l.cap = cap;
    }
    l.v[l.n++] = a;
    l.depth = max2(l.depth, depth);
    return l;
}

static DimList dim_push(ParseCtx *c, DimList l, Expr *e)
{
    if (l.n == FE_MAX_RANK) {
        if (!l.too_many)
            diag_error(c->diags, e->loc, "too many dimensions (the limit is %d)", FE_MAX_RANK);
        l.too_many = true;
        return l;
    }
    if (l.n == l.cap) {
        int cap = l.cap ? 2 * l.cap : 4;
        Expr **v = arena_alloc(c->arena, (size_t)cap * sizeof *v);
        if (l.n)
            memcpy(v, l.v, (size_t)l.n * sizeof *v);
        l.v = v;
        l.cap = cap;
    }
    l.v[l.n++] = e;
    return l;
}

static TypeExpr *new_type(ParseCtx *c, YYLTYPE l, TypeDType dt, bool has_shape, DimList dims)
{
    TypeExpr *t = arena_alloc(c->arena, sizeof *t);
    t->loc = PARSE_LOC(c, l);
    t->dtype = dt;
    t->has_shape = has_shape;
    t->dims = dims.v;
    t->rank = dims.n;
    return t;
}

static Stmt *new_stmt(ParseCtx *c, StmtKind k, YYLTYPE l, const char *name, YYLTYPE nl)
{
    Stmt *s = arena_alloc(c->arena, sizeof *s);
    s->kind = k;
    s->loc = PARSE_LOC(c, l);
    s->name = name;
    s->nameloc = PARSE_LOC(c, nl);
    return s;
}

static StmtList stmt_push(StmtList l, Stmt *s)
{
    if (!s)
        return l;
    if (l.tail)
        l.tail->next = s;
    else
        l.head = s;
    l.tail = s;
    return l;
}
}

%define api.pure full
%define api.prefix {fe_yy}
%define api.token.prefix {TK_}
%define parse.error custom
%define parse.lac full
%locations
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}
%expect 0

%union {
    int64_t ival;
    double fval;
    const char *str;
    ExprVal ex;
    ArgList args;
    DimList dims;
    TypeExpr *type;
    TypeDType dtype;
    Stmt *stmt;
    StmtList stmts;
}

%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token <str> NAME "name"
%token MODEL "'model'" PARAM "'param'" INPUT "'input'" WEIGHT "'weight'"
%token OUTPUT "'output'" REPEAT "'repeat'" TRUE "'true'" FALSE "'false'"
%token F32 "'f32'" F16 "'f16'" BF16 "'bf16'" I32 "'i32'"
%token EQ "'=='" NE "'!='" LE "'<='" GE "'>='" ANDAND "'&&'" OROR "'||'" COALESCE "'??'"

%right '?' ':'
%left COALESCE
%left OROR
%left ANDAND
%left EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' '%'
%precedence UNARY

%type <ex> expr primary
%type <args> args arglist
%type <dims> dims
%type <type> type
%type <dtype> dtype
%type <stmt> stmt
%type <stmts> stmts

%%

file
    : model
    | file model
    ;

model
    : MODEL NAME '{' stmts '}'
        {
            if (ctx->module) {
                diag_error(ctx->diags, PARSE_LOC(ctx, @1), "only one model is allowed per file");
                diag_note(ctx->diags, ctx->module->loc, "model '%s' is defined here", ctx->module->name);
            } else {
                Module *m = arena_alloc(ctx->arena, sizeof *m);
                m->name = $2;
                m->loc = PARSE_LOC(ctx, @1);
                m->body = $4.head;
                m->src = ctx->src;
                ctx->module = m;
            }
        }
    ;

stmts
    : %empty            { $$ = (StmtList){ NULL, NULL }; }
    | stmts stmt        { $$ = stmt_push($1, $2); }
    ;

/* A whole statement ends error recovery (yyerrok), so the next error is
 * reported even if it comes sooner than bison's usual three tokens. */
stmt
    : PARAM NAME '=' expr
        { $$ = new_stmt(ctx, ST_PARAM, @1, $2, @2); $$->value = $4.e; yyerrok; }
    | INPUT NAME ':' type
        { $$ = new_stmt(ctx, ST_INPUT, @1, $2, @2); $$->type = $4; yyerrok; }
    | WEIGHT NAME ':' type '=' expr
        { $$ = new_stmt(ctx, ST_WEIGHT, @1, $2, @2); $$->type = $4; $$->value = $6.e; yyerrok; }
    | NAME '=' expr
        { $$ = new_stmt(ctx, ST_ASSIGN, @1, $1, @1); $$->value = $3.e; yyerrok; }
    | OUTPUT NAME '=' expr
        { $$ = new_stmt(ctx, ST_OUTPUT, @1, $2, @2); $$->value = $4.e; yyerrok; }
    | REPEAT NAME '<' expr '{' stmts '}'
        { $$ = new_stmt(ctx, ST_REPEAT, @1, $2, @2); $$->value = $4.e; $$->body = $6.head; yyerrok; }
    | ';'               { $$ = NULL; yyerrok; }
    | error             { $$ = NULL; }
    ;

type
    : dtype                 { $$ = new_type(ctx, @1, $1, false, (DimList){ 0 }); }
    | dtype '[' dims ']'    { $$ = new_type(ctx, @1, $1, true, $3); }
    | '[' dims ']'          { $$ = new_type(ctx, @1, TY_ANY, true, $2); }
    ;

dtype
    : F32    { $$ = TY_F32; }
    | F16    { $$ = TY_F16; }
    | BF16   { $$ = TY_BF16; }
    | I32    { $$ = TY_I32; }
    ;

dims
    : expr              { $$ = dim_push(ctx, (DimList){ 0 }, $1.e); }
    | dims ',' expr     { $$ = dim_push(ctx, $1, $3.e); }
    ;

expr
    : expr '?' expr ':' expr    { $$ = ternary(ctx, @2, $1, $3, $5); }
    | expr COALESCE expr        { $$ = binary(ctx, @2, EX_COALESCE, 0, $1, $3); }
    | expr OROR expr            { $$ = binary(ctx, @2, EX_BINARY, BIN_OR, $1, $3); }
    | expr ANDAND expr          { $$ = binary(ctx, @2, EX_BINARY, BIN_AND, $1, $3); }
    | expr EQ expr              { $$ = binary(ctx, @2, EX_BINARY, BIN_EQ, $1, $3); }
    | expr NE expr              { $$ = binary(ctx, @2, EX_BINARY, BIN_NE, $1, $3); }
    | expr '<' expr             { $$ = binary(ctx, @2, EX_BINARY, '<', $1, $3); }
    | expr LE expr              { $$ = binary(ctx, @2, EX_BINARY, BIN_LE, $1, $3); }
    | expr '>' expr             { $$ = binary(ctx, @2, EX_BINARY, '>', $1, $3); }
    | expr GE expr              { $$ = binary(ctx, @2, EX_BINARY, BIN_GE, $1, $3); }
    | expr '+' expr             { $$ = binary(ctx, @2, EX_BINARY, '+', $1, $3); }
    | expr '-' expr             { $$ = binary(ctx, @2, EX_BINARY, '-', $1, $3); }
    | expr '*' expr             { $$ = binary(ctx, @2, EX_BINARY, '*', $1, $3); }
    | expr '/' expr             { $$ = binary(ctx, @2, EX_BINARY, '/', $1, $3); }
    | expr '%' expr             { $$ = binary(ctx, @2, EX_BINARY, '%', $1, $3); }
    | '-' expr %prec UNARY      { $$ = unary(ctx, @1, '-', $2); }
    | '!' expr %prec UNARY      { $$ = unary(ctx, @1, '!', $2); }
    | primary
    ;

primary
    : INT                   { Expr *e = new_expr(ctx, EX_INT, @1); e->ival = $1; $$ = leaf(e); }
    | FLOAT                 { Expr *e = new_expr(ctx, EX_FLOAT, @1); e->fval = $1; $$ = leaf(e); }
    | STRING                { Expr *e = new_expr(ctx, EX_STRING, @1); e->sval = $1; $$ = leaf(e); }
    | TRUE               { Expr *e = new_expr(ctx, EX_BOOL, @1); e->ival = 1; $$ = leaf(e); }
    | FALSE              { Expr *e = new_expr(ctx, EX_BOOL, @1); e->ival = 0; $$ = leaf(e); }
    | NAME                  { Expr *e = new_expr(ctx, EX_NAME, @1); e->name = $1; $$ = leaf(e); }
    | NAME '(' args ')'     { $$ = call(ctx, @1, $1, $3); }
    | '(' expr ')'          { $$ = $2; }
    ;

args
    : %empty                { $$ = (ArgList){ 0 }; }
    | arglist
    ;

arglist
    : expr
        { $$ = arg_push(ctx, (ArgList){ 0 }, (Arg){ .value = $1.e }, $1.depth); }
    | NAME ':' expr
        { $$ = arg_push(ctx, (ArgList){ 0 }, (Arg){ .kw = $1, .kwloc = PARSE_LOC(ctx, @1), .value = $3.e }, $3.depth); }
    | arglist ',' expr
        { $$ = arg_push(ctx, $1, (Arg){ .value = $3.e }, $3.depth); }
    | arglist ',' NAME ':' expr
        { $$ = arg_push(ctx, $1, (Arg){ .kw = $3, .kwloc = PARSE_LOC(ctx, @3), .value = $5.e }, $5.depth); }
    ;

%%

/* How a token is named in "unexpected X" and "expected X". */
static const char *tok_name(yysymbol_kind_t k)
{
    switch (k) {
    case YYSYMBOL_YYEOF:    return "end of file";
    case YYSYMBOL_INT:      return "integer";
    case YYSYMBOL_FLOAT:    return "number";
    case YYSYMBOL_STRING:   return "string";
    case YYSYMBOL_NAME:     return "name";
    default:                return yysymbol_name(k);
    }
}

/* k is one of the single-character tokens in chars */
static bool is_char(yysymbol_kind_t k, const char *chars)
{
    for (; *chars; chars++)
        if (k == YYTRANSLATE((unsigned char)*chars))
            return true;
    return false;
}

static bool is_expr_start(yysymbol_kind_t k)
{
    return k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT || k == YYSYMBOL_STRING ||
           k == YYSYMBOL_NAME || k == YYSYMBOL_TRUE || k == YYSYMBOL_FALSE ||
           is_char(k, "(-!");
}

static bool is_stmt_start(yysymbol_kind_t k)
{
    return k == YYSYMBOL_PARAM || k == YYSYMBOL_INPUT || k == YYSYMBOL_WEIGHT ||
           k == YYSYMBOL_OUTPUT || k == YYSYMBOL_REPEAT || k == YYSYMBOL_NAME ||
           is_char(k, ";");
}

/* tokens that can continue an expression: binary operators, and '(' after a name */
static bool is_operator(yysymbol_kind_t k)
{
    return k == YYSYMBOL_COALESCE || k == YYSYMBOL_OROR || k == YYSYMBOL_ANDAND ||
           k == YYSYMBOL_EQ || k == YYSYMBOL_NE || k == YYSYMBOL_LE || k == YYSYMBOL_GE ||
           is_char(k, "?<>+-*/%(");
}

/* "unexpected '}', expected expression": the expected set (exact, thanks to
 * LAC) is summarised as "statement" and "expression" where it holds every
 * token that starts one, and operators are left out when something else can
 * end the expression.  After a bad character (the invalid token) the lexer
 * has already reported it: recover without a second message. */
static int yyreport_syntax_error(const yypcontext_t *yc, yyscan_t scanner, ParseCtx *ctx)
{
    (void)scanner;
    if (ctx->fatal)
        return 0;
    yysymbol_kind_t tok = yypcontext_token(yc);
    SrcLoc loc = PARSE_LOC(ctx, *yypcontext_location(yc));

    /* after this error, let the lexer skip to something that can start a
     * statement; the parentheses of the broken statement are dropped with it */
    ctx->resync = !(tok == YYSYMBOL_YYEOF || ctx->tok_bol || is_stmt_start(tok) ||
                    is_char(tok, "}"));
    ctx->paren_depth = 0;
    if (tok == YYSYMBOL_YYUNDEF)    /* a bad character: the lexer has said so */
        return 0;

    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(yc, exp, YYNTOKENS);
    if (n < 0)
        n = 0;
    bool has_stmt = false, has_expr = false, has_op = false, has_close = false, has_other = false;
    for (int i = 0; i < n; i++) {
        has_stmt |= exp[i] == YYSYMBOL_PARAM;
        has_expr |= exp[i] == YYSYMBOL_INT;
        has_op |= is_char(exp[i], "+");
        has_close |= is_char(exp[i], ")");
    }
    const char *items[8];
    int nitems = 0;
    if (has_stmt)
        items[nitems++] = "statement";
    if (has_expr)
        items[nitems++] = "expression";
    for (int i = 0; i < n; i++) {
        yysymbol_kind_t k = exp[i];
        /* after a name in an argument list ':' would make it a keyword:
         * true, but no help when the list just lacks a ',' or ')' */
        if ((has_stmt && is_stmt_start(k)) || (has_expr && is_expr_start(k)) ||
            (has_op && is_operator(k)) || (has_close && is_char(k, ":")))
            continue;
        has_other = true;
        if (nitems < 8)
            items[nitems++] = tok_name(k);
    }
    if (has_op && !has_other && !has_expr && !has_stmt)
        items[nitems++] = "operator";

    char what[96];
    const char *text = ctx->src->text + ctx->tok_pos;
    int len = ctx->tok_len > 32 ? 32 : ctx->tok_len;
    const char *dots = ctx->tok_len > 32 ? "..." : "";
    switch (tok) {
    case YYSYMBOL_NAME:
        snprintf(what, sizeof what, "name '%.*s%s'", len, text, dots);
        break;
    case YYSYMBOL_INT:
    case YYSYMBOL_FLOAT:
        snprintf(what, sizeof what, "number '%.*s%s'", len, text, dots);
        break;
    default:
        snprintf(what, sizeof what, "%s", tok_name(tok));
        break;
    }

    char expected[256] = "";
    size_t used = 0;
    for (int i = 0; i < nitems && nitems <= 6; i++) {
        const char *sep = i == 0 ? ", expected " : i == nitems - 1 ? " or " : ", ";
        int w = snprintf(expected + used, sizeof expected - used, "%s%s", sep, items[i]);
        if (w > 0)
            used += (size_t)w;
        if (used >= sizeof expected)
            break;
    }
    diag_error(ctx->diags, loc, "unexpected %s%s", what, expected);
    return 0;
}

/* Only called for the parser's own failures: its stack outgrew YYMAXDEPTH. */
static void yyerror(YYLTYPE *l, yyscan_t scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    if (ctx->fatal)
        return;
    ctx->fatal = true;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ctx->diags, PARSE_LOC(ctx, *l), "expression is nested too deeply for the parser");
    else
        diag_error(ctx->diags, PARSE_LOC(ctx, *l), "%s", msg);
}
