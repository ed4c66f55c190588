/* tests/fuzz/fuzz_tokenizer.c — libFuzzer target: tokenizer.json.
 *
 * The input up to its first NUL byte is written as <tmpfs dir>/tokenizer.json;
 * what follows the NUL, if there is one, as tokenizer_config.json beside it
 * (bos/eos tokens, add_bos_token, the chat template), else that file is
 * removed.  rt_tok_from_hf reads them; a tokenizer that loads encodes a
 * fixed string and the last 256 bytes of the input, with and without BOS
 * and special-token parsing, decodes every id through rt_tok_piece and the
 * streaming UTF-8 decoder, and builds a chat prompt when it has a template
 * (fuzz_common.h). */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    const char *path = fz_write(0, "tokenizer.json", data, jlen);
    if (nul)
        fz_write(1, "tokenizer_config.json", nul + 1, size - jlen - 1);
    else
        fz_remove("tokenizer_config.json");
    RtErr err = {.msg = ""};
    RtTokenizer *t = rt_tok_from_hf(path, &err);
    if (!t) {
        FUZZ_CHECK_ERR(err);
        return 0;
    }
    fz_tok_workout(t, data, size);
    rt_tok_free(t);
    return 0;
}
