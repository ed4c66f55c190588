/* runtime/exe_main.c — what a `modelc build` executable runs: its main()
 * (generated beside the kernels) calls rt_exe_main with the embedded plan
 * and kernels, or, built for CUDA, rt_exe_main_cuda with the plan and the
 * cubin.  It takes the same run options as `modelc run` and needs neither
 * LLVM nor NVRTC. */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

int rt_exe_main(int argc, char **argv, const RtEmbedded *e)
{
    const char *me = argc > 0 ? argv[0] : "model";
    RtRunOptions o;
    rt_run_options_init(&o);
    for (int i = 1; i < argc; i++) {
        RtErr err;
        int r = rt_run_option(argc, argv, &i, &o, &err);
        if (r > 0)
            continue;
        if (r < 0) {
            fprintf(stderr, "%s: %s\n", me, err.msg);
            rt_run_options_free(&o);
            return 2;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("%s\n", e->info);
            rt_run_options_free(&o);
            return 0;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s --weights PATH --tokens 1,2,3 [options]\n%s\n  --version             the spec, build "
                   "options and content hash it was built from\n",
                   me, rt_run_usage);
            rt_run_options_free(&o);
            return 0;
        }
        fprintf(stderr, "%s: unknown option '%s' (see '%s --help')\n", me, argv[i], me);
        rt_run_options_free(&o);
        return 2;
    }
    int rc = 2;
    if (!o.weights || !o.prompt == !o.text) {
        fprintf(stderr, "%s: needs --weights PATH and one of --tokens 1,2,3, --prompt TEXT, --chat TEXT (see '%s --help')\n",
                me, me);
        rt_run_options_free(&o);
        return rc;
    }
    RtErr err = {.msg = ""};
    RtProgram *p = NULL;
    RtCheckpoint *ck = NULL;
    rc = 1;
    if (!rt_program_from_embedded(e, &p, &err) || !rt_ckpt_open_opts(o.weights, p->dequantize, &ck, &err))
        fprintf(stderr, "%s: error: %s\n", me, err.msg);
    else
        rc = rt_run(p, ck, &o, 0);
    rt_ckpt_close(ck);
    rt_program_free(p);
    rt_run_options_free(&o);
    return rc;
}

int rt_exe_main_cuda(int argc, char **argv, const void *embedded)
{
    return rt_exe_main(argc, argv, embedded);
}
