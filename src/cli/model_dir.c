#include "cli/model_dir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"

void model_dir_die(const char *command, const char *dir, const TnError *err) {
    int len = (int)strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--; /* "runs/demo/" names runs/demo */
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        const char *slash = memrchr(dir, '/', (size_t)len);
        int parent = slash ? (slash == dir ? 1 : (int)(slash - dir)) : 1;
        tn_die("tnllm %s: %s is a file: -m takes the model's directory (-m %.*s)", command, dir, parent,
               slash ? dir : ".");
    }
    char inner[4200];
    snprintf(inner, sizeof inner, "%.*s/model/config.json", len, dir);
    if (tn_file_exists(inner))
        tn_die("tnllm %s: %.*s is a run directory: its model is %.*s/model (use -m %.*s/model)", command, len, dir, len,
               dir, len, dir);
    tn_die("tnllm %s: %s", command, err->msg);
}

void model_dir_load(TnModel *m, const char *dir, const char *command) {
    TnError err;
    if (tn_model_load(m, dir, &err)) model_dir_die(command, dir, &err);
}

TnTokenizer *model_dir_tokenizer(const TnModel *m, const char *dir, const char *command) {
    TnTokenizer *tok;
    TnError err;
    if (tn_tokenizer_for_model(&tok, dir, &err)) tn_die("tnllm %s: %s", command, err.msg);
    int model_vocab = m->config.vocab_size, tok_vocab = tn_tokenizer_vocab_size(tok);
    if (model_vocab > tok_vocab)
        fprintf(stderr, "tnllm %s: warning: model vocabulary %d > tokenizer's %d: ids beyond it decode to nothing\n",
                command, model_vocab, tok_vocab);
    return tok;
}
