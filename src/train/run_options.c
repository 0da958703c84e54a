#include "train/run_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json.h"

/* Adds key with value printed to read back equal: 15 significant digits
 * where they do, else 17 (cJSON's own printing keeps 15 digits that come
 * within a rounding error of the value). */
static void add_exact(cJSON *root, const char *key, double value) {
    char text[40];
    snprintf(text, sizeof text, "%.15g", value);
    if (strtod(text, NULL) != value) snprintf(text, sizeof text, "%.17g", value);
    cJSON_AddRawToObject(root, key, text);
}

int tn_run_options_save(const char *path, const TnRunOptions *ro, TnError *err) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)ro->seed);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_options", ro->model_options);
    cJSON_AddNumberToObject(root, "steps", (double)ro->steps);
    cJSON_AddNumberToObject(root, "warmup", (double)ro->warmup);
    add_exact(root, "lr", ro->lr);
    add_exact(root, "min_lr_ratio", ro->min_lr_ratio);
    add_exact(root, "weight_decay", ro->weight_decay);
    add_exact(root, "beta1", ro->beta1);
    add_exact(root, "beta2", ro->beta2);
    add_exact(root, "eps", ro->eps);
    add_exact(root, "grad_clip", ro->grad_clip);
    cJSON_AddStringToObject(root, "seed", seed);
    return tn_json_write_file(path, root, err);
}

/* An unsigned decimal integer, the whole of text. */
static int parse_unsigned(const char *text, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || *end || errno || *text == '-') return -1;
    *out = value;
    return 0;
}

static int number_field(const cJSON *root, const char *key, double *out, const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(item)) return tn_fail(err, "%s: \"%s\" is missing or not a number", path, key);
    *out = item->valuedouble;
    return 0;
}

int tn_run_options_load(const char *path, TnRunOptions *ro, TnError *err) {
    char *text;
    size_t n, at;
    if (tn_read_file(path, &text, &n, err)) return -1;
    cJSON *root = tn_json_parse_whole(text, n, " \t\r\n", &at);
    free(text);
    if (!root || at != n || !cJSON_IsObject(root)) {
        int object = cJSON_IsObject(root);
        cJSON_Delete(root);
        if (!root || at != n)
            return tn_fail(err, "%s: not JSON%s at byte %zu", path, object ? " after the object" : "", at);
        return tn_fail(err, "%s: not a JSON object", path);
    }
    memset(ro, 0, sizeof *ro);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model_options");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    double steps = 0, warmup = 0;
    int rc = 0;
    if (!cJSON_IsString(model) || strlen(model->valuestring) >= sizeof ro->model_options)
        rc = tn_fail(err, "%s: \"model_options\" is missing, not a string or longer than %zu bytes", path,
                     sizeof ro->model_options - 1);
    else if (number_field(root, "steps", &steps, path, err) || number_field(root, "warmup", &warmup, path, err) ||
             number_field(root, "lr", &ro->lr, path, err) ||
             number_field(root, "min_lr_ratio", &ro->min_lr_ratio, path, err) ||
             number_field(root, "weight_decay", &ro->weight_decay, path, err) ||
             number_field(root, "beta1", &ro->beta1, path, err) || number_field(root, "beta2", &ro->beta2, path, err) ||
             number_field(root, "eps", &ro->eps, path, err) ||
             number_field(root, "grad_clip", &ro->grad_clip, path, err))
        rc = -1;
    else if (!cJSON_IsString(seed) || parse_unsigned(seed->valuestring, &ro->seed))
        rc = tn_fail(err, "%s: \"seed\" is missing or not an unsigned integer in a string", path);
    if (!rc) {
        snprintf(ro->model_options, sizeof ro->model_options, "%s", model->valuestring);
        ro->steps = (long long)steps;
        ro->warmup = (long long)warmup;
    }
    cJSON_Delete(root);
    return rc;
}

/* The text of a value for tn_run_model_differs: its name where the field
 * has named values, else the number. */
static const char *value_text(char *text, size_t cap, int value, const char *const *names) {
    if (names) return names[value];
    snprintf(text, cap, "%d", value);
    return text;
}

/* Describes key's values into out when they differ; returns whether they do. */
static int field_differs(char *out, size_t cap, const char *key, int run, int given, const char *const *names) {
    if (run == given) return 0;
    char a[16], b[16];
    snprintf(out, cap, "%s %s in the run, %s given", key, value_text(a, sizeof a, run, names),
             value_text(b, sizeof b, given, names));
    return 1;
}

int tn_run_model_differs(const TnConfig *run, const TnConfig *given, char *out, size_t cap) {
    static const char *const booleans[2] = {"false", "true"};
    out[0] = '\0';
    if (field_differs(out, cap, "architecture", run->arch, given->arch, tn_arch_names) ||
        field_differs(out, cap, "vocab_size", run->vocab_size, given->vocab_size, NULL) ||
        field_differs(out, cap, "decoder_embed_dim", run->dim, given->dim, NULL) ||
        field_differs(out, cap, "decoder_layers", run->n_layers, given->n_layers, NULL) ||
        field_differs(out, cap, "decoder_attention_heads", run->n_heads, given->n_heads, NULL) ||
        field_differs(out, cap, "glu_dim", run->glu_dim, given->glu_dim, NULL) ||
        field_differs(out, cap, "no_scale_embedding", run->no_scale_embedding, given->no_scale_embedding, booleans) ||
        field_differs(out, cap, "tie_word_embeddings", run->tie_word_embeddings, given->tie_word_embeddings,
                      booleans) ||
        field_differs(out, cap, "position_encoding", (int)run->pe, (int)given->pe, tn_pe_names) ||
        field_differs(out, cap, "decay_type", (int)run->decay, (int)given->decay, tn_decay_names) ||
        field_differs(out, cap, "decay_temperature", run->decay_temperature, given->decay_temperature, booleans) ||
        field_differs(out, cap, "use_output_gate", run->output_gate, given->output_gate, booleans) ||
        field_differs(out, cap, "linear_act_fun", (int)run->gla_act, (int)given->gla_act, tn_activation_names) ||
        field_differs(out, cap, "glu_act", (int)run->glu_act, (int)given->glu_act, tn_activation_names) ||
        field_differs(out, cap, "norm_type", (int)run->norm, (int)given->norm, tn_norm_names))
        return 1;
    /* the table's rows are parameters only with APE (the baseline's KV cache size is not the model's) */
    if (run->pe == TN_PE_APE &&
        field_differs(out, cap, "max_position_embeddings", run->max_positions, given->max_positions, NULL))
        return 1;
    for (int l = 0; l < run->n_layers; l++)
        if (run->use_lrpe[l] != given->use_lrpe[l]) {
            snprintf(out, cap, "linear_use_lrpe_list[%d] %d in the run, %d given", l, run->use_lrpe[l],
                     given->use_lrpe[l]);
            return 1;
        }
    return 0;
}
