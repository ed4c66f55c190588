/* ir/arena.h — bump allocation for one compilation.
 *
 * Every compile-time object (AST, IR nodes, strings, diagnostics) lives in the
 * arena of the compilation that made it and dies with it: nothing is freed one
 * by one.  Running out of memory here is fatal: arena_alloc prints a message and
 * exits 1 (a compile that cannot get memory has nothing useful to return). */
#ifndef MODELC_ARENA_H
#define MODELC_ARENA_H

#include <stddef.h>

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n);          /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A copy of an array of n elements of size elem in a new block of cap elements
 * (cap >= n); the old block stays (arena memory is freed only with the arena). */
void *arena_grow(Arena *a, const void *old, size_t n, size_t cap, size_t elem);

#endif
