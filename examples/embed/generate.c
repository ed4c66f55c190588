/* examples/embed/generate.c — a C program that embeds a model compiled with
 * `modelc build --lib` and generates tokens through the C API (modelc.h).
 *
 *   make -C examples/embed WEIGHTS=path/to/checkpoint     # builds libmodel.so, model.h, generate
 *   examples/embed/generate path/to/checkpoint 1 15 27     # prompt token ids
 */
#include <modelc.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

static int print_token(int32_t token, void *user)
{
    int *count = user;
    printf(*count ? " %d" : "%d", token);
    (*count)++;
    return 0;   /* keep going */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s WEIGHTS TOKEN...\n%s\n", argv[0], modelc_model_info(&model_model));
        return 2;
    }
    int n = argc - 2;
    int32_t *prompt = malloc((size_t)n * sizeof *prompt);
    if (!prompt)
        return 1;
    for (int i = 0; i < n; i++)
        prompt[i] = (int32_t)atoi(argv[i + 2]);

    Modelc *m = NULL;
    ModelcOptions opt = {.threads = 0, .max_ctx = 256};
    ModelcStatus st = modelc_open(&model_model, argv[1], &opt, &m);
    if (st == MODELC_OK) {
        int count = 0;
        st = modelc_generate(m, prompt, n, 16, print_token, &count);
        printf("\n");
    }
    if (st != MODELC_OK)
        fprintf(stderr, "generate: error %d: %s\n", (int)st, modelc_errmsg(m));
    modelc_close(m);
    free(prompt);
    return st == MODELC_OK ? 0 : 1;
}
