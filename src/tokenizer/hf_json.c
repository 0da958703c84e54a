#include "tokenizer/hf_json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json.h"

/* ---- reading ----------------------------------------------------------- */

static const cJSON *field(const cJSON *object, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(object, name);
}

static int is_absent(const cJSON *item) { return !item || cJSON_IsNull(item); }

static const char *string_field(const cJSON *object, const char *name) {
    const cJSON *item = field(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int bool_field(const cJSON *object, const char *name, int fallback) {
    const cJSON *item = field(object, name);
    return cJSON_IsBool(item) ? cJSON_IsTrue(item) : fallback;
}

static int read_normalizer(const cJSON *n, TnBpeOptions *opt, const char *path, TnError *err) {
    if (is_absent(n)) return 0;
    const char *type = string_field(n, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        cJSON_ArrayForEach(item, field(n, "normalizers")) if (read_normalizer(item, opt, path, err)) return -1;
        return 0;
    }
    if (type && strcmp(type, "Prepend") == 0) {
        const char *prepend = string_field(n, "prepend");
        if (!prepend || strcmp(prepend, TN_METASPACE_UTF8) != 0)
            return tn_fail(err, "%s: normalizer Prepend of \"%s\" is not supported (only \"▁\")", path,
                           prepend ? prepend : "?");
        opt->add_prefix = TN_PREFIX_ALWAYS;
        return 0;
    }
    if (type && strcmp(type, "Replace") == 0) {
        const char *pattern = string_field(field(n, "pattern"), "String"), *content = string_field(n, "content");
        if (!pattern || !content || strcmp(pattern, " ") != 0 || strcmp(content, TN_METASPACE_UTF8) != 0)
            return tn_fail(err, "%s: normalizer Replace is supported only from \" \" to \"▁\"", path);
        opt->metaspace = 1;
        return 0;
    }
    return tn_fail(err, "%s: normalizer \"%s\" is not supported (tnllm reads SentencePiece-style BPE)", path,
                   type ? type : "?");
}

static int read_pre_tokenizer(const cJSON *p, TnBpeOptions *opt, const char *path, TnError *err) {
    if (is_absent(p)) return 0;
    const char *type = string_field(p, "type");
    if (!type || strcmp(type, "Metaspace") != 0)
        return tn_fail(err, "%s: pre_tokenizer \"%s\" is not supported (only Metaspace)", path, type ? type : "?");
    const char *replacement = string_field(p, "replacement"), *scheme = string_field(p, "prepend_scheme");
    if (!replacement || strcmp(replacement, TN_METASPACE_UTF8) != 0)
        return tn_fail(err, "%s: Metaspace replacement must be \"▁\"", path);
    opt->metaspace = 1;
    /* Older files say add_prefix_space, newer ones prepend_scheme; "first"
     * and "always" differ only around added tokens, which tnllm never
     * splits out of text. */
    int prepend = scheme ? strcmp(scheme, "never") != 0 : bool_field(p, "add_prefix_space", 1);
    opt->add_prefix = prepend ? TN_PREFIX_UNLESS_SPACE : TN_PREFIX_NEVER;
    opt->split_every_space = bool_field(p, "split", 1);
    return 0;
}

static int read_model_flags(const cJSON *model, TnBpeOptions *opt, const char *path, TnError *err) {
    const char *type = string_field(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return tn_fail(err, "%s: model type \"%s\" is not supported (only BPE)", path, type);
    const char *prefix = string_field(model, "continuing_subword_prefix"),
               *suffix = string_field(model, "end_of_word_suffix");
    if ((prefix && *prefix) || (suffix && *suffix))
        return tn_fail(err, "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", path);
    const cJSON *dropout = field(model, "dropout");
    if (!is_absent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return tn_fail(err, "%s: BPE dropout is not supported", path);
    if (bool_field(model, "ignore_merges", 0)) return tn_fail(err, "%s: BPE ignore_merges is not supported", path);
    opt->byte_fallback = bool_field(model, "byte_fallback", 0);
    opt->fuse_unk = bool_field(model, "fuse_unk", 0);
    return 0;
}

static int valid_id(const cJSON *item) {
    return cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < (1 << 24) &&
           item->valuedouble == (double)(int)item->valuedouble;
}

/* Places piece at id, refusing a second, different piece for one id. */
static int place_piece(char **pieces, int id, const char *piece, const char *path, TnError *err) {
    if (pieces[id] && strcmp(pieces[id], piece) != 0)
        return tn_fail(err, "%s: id %d is given to both \"%s\" and \"%s\"", path, id, pieces[id], piece);
    if (!pieces[id]) pieces[id] = strdup(piece);
    if (!pieces[id]) tn_die("out of memory copying a piece");
    return 0;
}

static int read_vocabulary(const cJSON *root, const cJSON *vocab, TnBpe *bpe, const TnBpeOptions *opt,
                           const char *path, TnError *err) {
    const cJSON *added = field(root, "added_tokens"), *item;
    if (!cJSON_IsObject(vocab)) return tn_fail(err, "%s: model.vocab is missing or not an object", path);
    int vocab_size = 0;
    cJSON_ArrayForEach(item, vocab) {
        if (!valid_id(item)) return tn_fail(err, "%s: vocab entry \"%s\" has no valid id", path, item->string);
        if ((int)item->valuedouble >= vocab_size) vocab_size = (int)item->valuedouble + 1;
    }
    cJSON_ArrayForEach(item, added) {
        const cJSON *id = field(item, "id");
        if (!valid_id(id) || !string_field(item, "content"))
            return tn_fail(err, "%s: an added_tokens entry lacks a valid id or content", path);
        if ((int)id->valuedouble >= vocab_size) vocab_size = (int)id->valuedouble + 1;
    }
    char **pieces = tn_calloc((size_t)vocab_size + 1, sizeof *pieces);
    uint8_t *special = tn_calloc((size_t)vocab_size + 1, 1);
    int rc = 0;
    cJSON_ArrayForEach(item, vocab) {
        int id = (int)item->valuedouble;
        if (pieces[id]) { /* two vocab entries for one id, even with the same text */
            rc = tn_fail(err, "%s: id %d is given to both \"%s\" and \"%s\"", path, id, pieces[id], item->string);
            break;
        }
        if ((rc = place_piece(pieces, id, item->string, path, err))) break;
    }
    if (!rc) cJSON_ArrayForEach(item, added) {
        int id = (int)field(item, "id")->valuedouble;
        if ((rc = place_piece(pieces, id, string_field(item, "content"), path, err))) break;
        special[id] = (uint8_t)bool_field(item, "special", 0);
    }
    for (int id = 0; !rc && id < vocab_size; id++)
        if (!pieces[id]) rc = tn_fail(err, "%s: the vocabulary has no piece for id %d (ids must be 0..%d)", path, id,
                                      vocab_size - 1);
    if (rc) {
        for (int id = 0; id < vocab_size; id++) free(pieces[id]);
        free(pieces);
        free(special);
        return -1;
    }
    return tn_bpe_init(bpe, pieces, special, vocab_size, opt, path, err);
}

/* One merge as "left right" or ["left", "right"]. */
static int read_merge(const TnBpe *bpe, const cJSON *item, TnMerge *merge, int rank, const char *path, TnError *err) {
    int32_t ids[2] = {-1, -1};
    if (cJSON_IsString(item)) {
        const char *s = item->valuestring, *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' '))
            return tn_fail(err, "%s: merge %d \"%s\" is not two pieces separated by one space", path, rank, s);
        ids[0] = tn_bpe_find_piece(bpe, s, (size_t)(space - s));
        ids[1] = tn_bpe_find_piece(bpe, space + 1, strlen(space + 1));
    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(item->child) &&
               cJSON_IsString(item->child->next)) {
        ids[0] = tn_bpe_find_piece(bpe, item->child->valuestring, strlen(item->child->valuestring));
        ids[1] = tn_bpe_find_piece(bpe, item->child->next->valuestring, strlen(item->child->next->valuestring));
    } else {
        return tn_fail(err, "%s: merge %d is neither a string nor a pair of strings", path, rank);
    }
    if (ids[0] < 0 || ids[1] < 0)
        return tn_fail(err, "%s: merge %d uses a piece that is not in the vocabulary", path, rank);
    *merge = (TnMerge){ids[0], ids[1]};
    return 0;
}

static int read_tokenizer(TnBpe *bpe, const cJSON *root, const char *path, TnError *err) {
    const cJSON *model = field(root, "model");
    TnBpeOptions opt = {0};
    if (!cJSON_IsObject(model)) return tn_fail(err, "%s: no \"model\" object (not a tokenizer.json?)", path);
    if (read_model_flags(model, &opt, path, err) || read_normalizer(field(root, "normalizer"), &opt, path, err) ||
        read_pre_tokenizer(field(root, "pre_tokenizer"), &opt, path, err) ||
        read_vocabulary(root, field(model, "vocab"), bpe, &opt, path, err))
        return -1;
    const cJSON *unk = field(model, "unk_token");
    if (cJSON_IsString(unk)) {
        bpe->unk_id = tn_bpe_find_piece(bpe, unk->valuestring, strlen(unk->valuestring));
        if (bpe->unk_id < 0) {
            tn_bpe_free(bpe);
            return tn_fail(err, "%s: unk_token \"%s\" is not in the vocabulary", path, unk->valuestring);
        }
    } else if (is_absent(unk)) {
        bpe->unk_id = -1;
    } else {
        tn_bpe_free(bpe);
        return tn_fail(err, "%s: model.unk_token must be a string or null", path);
    }
    int all_bytes = opt.byte_fallback;
    for (int b = 0; b < 256; b++) all_bytes = all_bytes && bpe->byte_ids[b] >= 0;
    if (!all_bytes && bpe->unk_id < 0) {
        tn_bpe_free(bpe);
        return tn_fail(err, "%s: needs an unk_token or byte_fallback with all 256 <0xNN> pieces", path);
    }
    const cJSON *merges = field(model, "merges"), *item;
    if (!cJSON_IsArray(merges)) {
        tn_bpe_free(bpe);
        return tn_fail(err, "%s: model.merges is missing or not an array", path);
    }
    int n = cJSON_GetArraySize(merges), rank = 0;
    TnMerge *list = tn_malloc(((size_t)n + 1) * sizeof *list);
    cJSON_ArrayForEach(item, merges) {
        if (read_merge(bpe, item, &list[rank], rank, path, err)) {
            free(list);
            tn_bpe_free(bpe);
            return -1;
        }
        rank++;
    }
    return tn_bpe_set_merges(bpe, list, NULL, n, path, err);
}

int tn_hf_json_read(TnBpe *bpe, const char *path, TnError *err) {
    char *text;
    size_t size;
    memset(bpe, 0, sizeof *bpe);
    if (tn_read_file(path, &text, &size, err)) return -1;
    size_t at;
    cJSON *root = tn_json_parse_whole(text, size, " \t\r\n", &at);
    free(text);
    if (!root) return tn_fail(err, "%s: not valid JSON (at byte %zu)", path, at);
    if (at < size) {
        cJSON_Delete(root);
        return tn_fail(err, "%s: bytes after the JSON value (at byte %zu)", path, at);
    }
    int rc = read_tokenizer(bpe, root, path, err);
    cJSON_Delete(root);
    return rc;
}

/* ---- writing ----------------------------------------------------------- */

static cJSON *replace_entry(const char *from, const char *to) {
    cJSON *r = cJSON_CreateObject(), *pattern = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", "Replace");
    cJSON_AddStringToObject(pattern, "String", from);
    cJSON_AddItemToObject(r, "pattern", pattern);
    cJSON_AddStringToObject(r, "content", to);
    return r;
}

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* The normalizer, pre-tokenizer and decoder that make the HF libraries
 * encode and decode as bpe.c does. */
static void add_pipeline(cJSON *root, const TnBpeOptions *opt) {
    int metaspace_pre = opt->add_prefix == TN_PREFIX_UNLESS_SPACE || opt->split_every_space;
    if (metaspace_pre) {
        cJSON_AddNullToObject(root, "normalizer");
        cJSON *pre = typed("Metaspace");
        cJSON_AddStringToObject(pre, "replacement", TN_METASPACE_UTF8);
        cJSON_AddStringToObject(pre, "prepend_scheme", opt->add_prefix == TN_PREFIX_NEVER ? "never" : "first");
        cJSON_AddBoolToObject(pre, "split", opt->split_every_space);
        cJSON_AddItemToObject(root, "pre_tokenizer", pre);
    } else {
        cJSON *normalizer = typed("Sequence"), *list = cJSON_AddArrayToObject(normalizer, "normalizers");
        if (opt->add_prefix == TN_PREFIX_ALWAYS) {
            cJSON *prepend = typed("Prepend");
            cJSON_AddStringToObject(prepend, "prepend", TN_METASPACE_UTF8);
            cJSON_AddItemToArray(list, prepend);
        }
        if (opt->metaspace) cJSON_AddItemToArray(list, replace_entry(" ", TN_METASPACE_UTF8));
        cJSON_AddItemToObject(root, "normalizer", normalizer);
        cJSON_AddNullToObject(root, "pre_tokenizer");
    }
    cJSON *decoder = typed("Sequence"), *steps = cJSON_AddArrayToObject(decoder, "decoders");
    if (opt->metaspace) cJSON_AddItemToArray(steps, replace_entry(TN_METASPACE_UTF8, " "));
    cJSON_AddItemToArray(steps, typed("ByteFallback"));
    cJSON_AddItemToArray(steps, typed("Fuse"));
    if (opt->add_prefix != TN_PREFIX_NEVER) {
        cJSON *strip = typed("Strip");
        cJSON_AddStringToObject(strip, "content", " ");
        cJSON_AddNumberToObject(strip, "start", 1);
        cJSON_AddNumberToObject(strip, "stop", 0);
        cJSON_AddItemToArray(steps, strip);
    }
    cJSON_AddItemToObject(root, "decoder", decoder);
}

/* LLaMA's post-processor: <s> before every sequence. */
static void add_post_processor(cJSON *root, const TnBpe *bpe) {
    if (bpe->vocab_size < 2 || strcmp(bpe->pieces[1], "<s>") != 0) {
        cJSON_AddNullToObject(root, "post_processor");
        return;
    }
    cJSON *post = typed("TemplateProcessing");
    const char *layouts[2] = {"single", "pair"};
    for (int l = 0; l < 2; l++) {
        cJSON *seq = cJSON_AddArrayToObject(post, layouts[l]);
        for (int part = 0; part <= l; part++) {
            cJSON *bos = cJSON_CreateObject(), *bos_body = cJSON_AddObjectToObject(bos, "SpecialToken");
            cJSON_AddStringToObject(bos_body, "id", "<s>");
            cJSON_AddNumberToObject(bos_body, "type_id", part);
            cJSON_AddItemToArray(seq, bos);
            cJSON *text = cJSON_CreateObject(), *text_body = cJSON_AddObjectToObject(text, "Sequence");
            cJSON_AddStringToObject(text_body, "id", part ? "B" : "A");
            cJSON_AddNumberToObject(text_body, "type_id", part);
            cJSON_AddItemToArray(seq, text);
        }
    }
    cJSON *specials = cJSON_AddObjectToObject(post, "special_tokens"), *bos = cJSON_AddObjectToObject(specials, "<s>");
    cJSON_AddStringToObject(bos, "id", "<s>");
    cJSON_AddItemToObject(bos, "ids", cJSON_CreateIntArray((const int[]){1}, 1));
    cJSON_AddItemToObject(bos, "tokens", cJSON_CreateStringArray((const char *const[]){"<s>"}, 1));
    cJSON_AddItemToObject(root, "post_processor", post);
}

static int write_json(cJSON *root, const char *path, TnError *err) {
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) tn_die("out of memory printing %s", path);
    int rc = tn_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}

int tn_hf_json_write(const TnBpe *bpe, const char *path, TnError *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int id = 0; id < bpe->vocab_size; id++) {
        if (!bpe->is_special[id]) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", id);
        cJSON_AddStringToObject(t, "content", bpe->pieces[id]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    add_pipeline(root, &bpe->options);
    add_post_processor(root, bpe);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (bpe->unk_id >= 0) cJSON_AddStringToObject(model, "unk_token", bpe->pieces[bpe->unk_id]);
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", bpe->options.fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", bpe->options.byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int id = 0; id < bpe->vocab_size; id++) cJSON_AddNumberToObject(vocab, bpe->pieces[id], id);
    /* "a b" strings, which every HF version reads, unless a piece holds a
     * space (a tokenizer that keeps spaces literal): then [a, b] pairs. */
    int as_pairs = 0;
    for (int id = 0; id < bpe->vocab_size; id++) as_pairs = as_pairs || strchr(bpe->pieces[id], ' ');
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int r = 0; r < bpe->n_merges; r++) {
        const char *pair[2] = {bpe->pieces[bpe->merges[r].left], bpe->pieces[bpe->merges[r].right]};
        if (as_pairs) {
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
            continue;
        }
        size_t nl = strlen(pair[0]), nr = strlen(pair[1]);
        char *joined = tn_malloc(nl + nr + 2);
        memcpy(joined, pair[0], nl);
        joined[nl] = ' ';
        memcpy(joined + nl + 1, pair[1], nr + 1);
        cJSON_AddItemToArray(merges, cJSON_CreateString(joined));
        free(joined);
    }
    return write_json(root, path, err);
}

int tn_hf_config_write(const TnBpe *bpe, const char *path, TnError *err) {
    cJSON *root = cJSON_CreateObject();
    const char *names[3] = {"unk_token", "bos_token", "eos_token"};
    for (int id = 0; id < 3 && id < bpe->vocab_size; id++) cJSON_AddStringToObject(root, names[id], bpe->pieces[id]);
    cJSON_AddBoolToObject(root, "add_bos_token", 1);
    cJSON_AddBoolToObject(root, "add_eos_token", 0);
    cJSON_AddBoolToObject(root, "clean_up_tokenization_spaces", 0);
    cJSON_AddBoolToObject(root, "legacy", 1);
    cJSON_AddStringToObject(root, "tokenizer_class", "LlamaTokenizer");
    cJSON_AddNumberToObject(root, "model_max_length", 1e30);
    return write_json(root, path, err);
}
