#include "model/config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fileio.h"
#include "util/json.h"

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, glu_dim, vocab_size, no_scale_embedding;
} SizePreset;

/* Table 1 of the paper with the released G; 7B and larger do not scale the
 * embedding. The first four are small sizes for development and CI. */
static const SizePreset size_presets[] = {
    {"tiny", 64, 2, 4, 192, 512, 0},
    {"15M", 256, 4, 4, 768, 8192, 0},
    {"45M", 512, 6, 8, 1536, 16384, 0},
    {"125M", 768, 12, 12, 2048, 64000, 0},
    {"385M", 1024, 24, 8, 2816, 64000, 0},
    {"1B", 2048, 16, 16, 5632, 64000, 0},
    {"3B", 2560, 32, 20, 6912, 64000, 0},
    {"7B", 4096, 30, 32, 11008, 64000, 1},
    {"13B", 5120, 36, 40, 13824, 64000, 1},
    {"65B", 8192, 72, 64, 22016, 64000, 1},
    {"175B", 12288, 88, 96, 32768, 64000, 1},
};

const char *tn_config_size_names(void) {
    return "tiny, 15M, 45M, 125M, 385M, 1B, 3B, 7B, 13B, 65B, 175B";
}

const char *const tn_arch_names[2] = {"transnormer", "transformer"};
const char *const tn_pe_names[4] = {"lrpe-d", "lrpe", "exp-decay", "ape"};
const char *const tn_decay_names[3] = {"official", "paper", "none"};
const char *const tn_activation_names[3] = {"none", "silu", "1+elu"};
const char *const tn_norm_names[3] = {"simplermsnorm", "rmsnorm", "layernorm"};

int tn_name_index(const char *const *names, int n_names, const char *value) {
    for (int i = 0; i < n_names; i++)
        if (strcmp(names[i], value) == 0) return i;
    return -1;
}

void tn_config_defaults(TnConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->decay_temperature = 1;
    cfg->output_gate = 1;
    cfg->gla_act = TN_ACT_SILU;
    cfg->glu_act = TN_ACT_NONE;
    cfg->tie_word_embeddings = 1;
    cfg->init_std = 0.02f;
    cfg->pad_token_id = 0;
    cfg->bos_token_id = 1;
    cfg->eos_token_id = 2;
}

int tn_config_from_size(TnConfig *cfg, const char *name, TnError *err) {
    for (size_t i = 0; i < sizeof size_presets / sizeof size_presets[0]; i++) {
        const SizePreset *p = &size_presets[i];
        if (strcasecmp(p->name, name) != 0) continue; /* "385m" is 385M: no two names differ by case alone */
        tn_config_defaults(cfg);
        cfg->vocab_size = p->vocab_size;
        cfg->dim = p->dim;
        cfg->n_layers = p->n_layers;
        cfg->n_heads = p->n_heads;
        cfg->glu_dim = p->glu_dim;
        cfg->no_scale_embedding = p->no_scale_embedding;
        cfg->use_lrpe[0] = 1; /* released models: LRPE on layer 0 only */
        return 0;
    }
    return tn_fail(err, "unknown model size '%s' (known: %s)", name, tn_config_size_names());
}

/* SPEC section 3: each switch must change the model; a setting that the
 * chosen position encoding ignores is refused rather than silently dropped. */
/* The baseline has none of the TransNormer switches: it fixes what
 * tn_config_set_switch("arch", "transformer") sets. */
static int validate_transformer(const TnConfig *cfg, TnError *err) {
    int lrpe = 0;
    for (int l = 0; l < cfg->n_layers; l++) lrpe |= cfg->use_lrpe[l];
    if (cfg->pe != TN_PE_LRPE_DECAY || cfg->decay != TN_DECAY_OFFICIAL || !cfg->decay_temperature || lrpe ||
        cfg->output_gate || cfg->gla_act != TN_ACT_SILU || cfg->glu_act != TN_ACT_SILU || cfg->norm != TN_NORM_RMS ||
        !cfg->no_scale_embedding)
        return tn_fail(err, "arch transformer (RoPE, SwiGLU, RMSNorm) takes none of the TransNormer switches "
                            "(pe, decay, decay-temperature, gate, gla-act, glu-act, norm, lrpe-layers)");
    if (tn_head_dim(cfg) % 2) return tn_fail(err, "arch transformer needs an even head width for RoPE, not %d",
                                             tn_head_dim(cfg));
    return 0;
}

static int validate_switches(const TnConfig *cfg, TnError *err) {
    if (cfg->arch == TN_ARCH_TRANSFORMER) return validate_transformer(cfg, err);
    const char *pe = tn_pe_names[cfg->pe];
    int has_decay = cfg->pe == TN_PE_LRPE_DECAY || cfg->pe == TN_PE_EXP_DECAY;
    int has_lrpe = cfg->pe == TN_PE_LRPE_DECAY || cfg->pe == TN_PE_LRPE;
    if (!has_decay && cfg->decay != TN_DECAY_OFFICIAL)
        return tn_fail(err, "decay_type %s means nothing with position_encoding %s, which has no decay",
                       tn_decay_names[cfg->decay], pe);
    if (!has_decay && !cfg->decay_temperature)
        return tn_fail(err, "decay_temperature off means nothing with position_encoding %s, which has no decay", pe);
    if (cfg->decay == TN_DECAY_NONE && !cfg->decay_temperature)
        return tn_fail(err, "decay_temperature off means nothing with decay_type none");
    if (cfg->decay == TN_DECAY_NONE && cfg->pe == TN_PE_EXP_DECAY)
        return tn_fail(err, "position_encoding exp-decay with decay_type none has no position information at all");
    for (int l = 0; l < cfg->n_layers && !has_lrpe; l++)
        if (cfg->use_lrpe[l])
            return tn_fail(err, "position_encoding %s has no LRPE but linear_use_lrpe_list enables it on layer %d", pe, l);
    if (cfg->glu_act == TN_ACT_ONE_PLUS_ELU) return tn_fail(err, "glu_act must be none or silu, not 1+elu");
    if (cfg->pe == TN_PE_APE && (cfg->max_positions <= 0 || cfg->max_positions > TN_MAX_POSITIONS))
        return tn_fail(err, "position_encoding ape needs max_position_embeddings in 1..%d, not %d", TN_MAX_POSITIONS,
                       cfg->max_positions);
    return 0;
}

int tn_config_validate(const TnConfig *cfg, TnError *err) {
    const struct { const char *field; int value, max; } sizes[] = {
        {"vocab_size (V)", cfg->vocab_size, TN_MAX_VOCAB},
        {"decoder_embed_dim (D)", cfg->dim, TN_MAX_DIM},
        {"decoder_layers (L)", cfg->n_layers, TN_MAX_LAYERS},
        {"decoder_attention_heads (H)", cfg->n_heads, TN_MAX_HEADS},
        {"glu_dim (G)", cfg->glu_dim, TN_MAX_GLU_DIM},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value < 1 || sizes[i].value > sizes[i].max)
            return tn_fail(err, "%s %d out of range 1..%d", sizes[i].field, sizes[i].value, sizes[i].max);
    if (cfg->dim % cfg->n_heads != 0)
        return tn_fail(err, "decoder_embed_dim %d is not divisible by decoder_attention_heads %d", cfg->dim, cfg->n_heads);
    if (!(cfg->init_std > 0.0f) || !isfinite(cfg->init_std)) return tn_fail(err, "init_std must be positive");
    return validate_switches(cfg, err);
}

const char *const tn_switch_keys[] = {"arch", "pe", "decay", "decay-temperature", "gate", "gla-act", "glu-act",
                                      "norm", "lrpe-layers", "max-positions", NULL};

#define TN_DEFAULT_MAX_POSITIONS 2048

static int parse_on_off(const char *key, const char *value, int *out, TnError *err) {
    int i = tn_name_index((const char *const[]){"off", "on"}, 2, value);
    if (i < 0) return tn_fail(err, "switch %s: expected on or off, got '%s'", key, value);
    *out = i;
    return 0;
}

/* "all", "none" or comma-separated layer indices. */
static int parse_lrpe_layers(TnConfig *cfg, const char *value, TnError *err) {
    int all = strcmp(value, "all") == 0;
    for (int l = 0; l < cfg->n_layers; l++) cfg->use_lrpe[l] = (unsigned char)all;
    if (all || strcmp(value, "none") == 0) return 0;
    for (const char *p = value; *p;) {
        char *end;
        long l = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || l < 0 || l >= cfg->n_layers)
            return tn_fail(err, "switch lrpe-layers: '%s' is not all, none or layer indices below %d", value,
                           cfg->n_layers);
        cfg->use_lrpe[l] = 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Index of value in names, or fails naming the switch and the choices. */
static int switch_choice(const char *key, const char *const *names, int n_names, const char *value, int *out,
                         TnError *err) {
    int i = tn_name_index(names, n_names, value);
    if (i < 0) {
        char choices[256] = "";
        for (int k = 0; k < n_names; k++)
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s", k ? "|" : "", names[k]);
        return tn_fail(err, "switch %s: unknown value '%s' (expected %s)", key, value, choices);
    }
    *out = i;
    return 0;
}

int tn_config_set_switch(TnConfig *cfg, const char *key, const char *value, TnError *err) {
    static const char *const cli_norms[] = {"srmsnorm", "rmsnorm", "layernorm"};
    int choice;
    if (strcmp(key, "arch") == 0) {
        if (switch_choice(key, tn_arch_names, 2, value, &choice, err)) return -1;
        cfg->arch = (TnArch)choice;
        if (cfg->arch == TN_ARCH_TRANSFORMER) {
            memset(cfg->use_lrpe, 0, sizeof cfg->use_lrpe);
            cfg->output_gate = 0;
            cfg->glu_act = TN_ACT_SILU;
            cfg->norm = TN_NORM_RMS;
            cfg->no_scale_embedding = 1;
        }
        return 0;
    }
    if (strcmp(key, "pe") == 0) {
        if (switch_choice(key, tn_pe_names, 4, value, &choice, err)) return -1;
        cfg->pe = (TnPositionEncoding)choice;
        if (cfg->pe == TN_PE_EXP_DECAY || cfg->pe == TN_PE_APE) memset(cfg->use_lrpe, 0, sizeof cfg->use_lrpe);
        if (cfg->pe == TN_PE_APE && cfg->max_positions <= 0) cfg->max_positions = TN_DEFAULT_MAX_POSITIONS;
        return 0;
    }
    if (strcmp(key, "decay") == 0) {
        if (switch_choice(key, tn_decay_names, 3, value, &choice, err)) return -1;
        cfg->decay = (TnDecay)choice;
        return 0;
    }
    if (strcmp(key, "decay-temperature") == 0) return parse_on_off(key, value, &cfg->decay_temperature, err);
    if (strcmp(key, "gate") == 0) return parse_on_off(key, value, &cfg->output_gate, err);
    if (strcmp(key, "gla-act") == 0) {
        if (switch_choice(key, tn_activation_names, 3, value, &choice, err)) return -1;
        cfg->gla_act = (TnActivation)choice;
        return 0;
    }
    if (strcmp(key, "glu-act") == 0) {
        if (switch_choice(key, tn_activation_names, 3, value, &choice, err)) return -1;
        cfg->glu_act = (TnActivation)choice;
        return 0;
    }
    if (strcmp(key, "norm") == 0) {
        if (switch_choice(key, cli_norms, 3, value, &choice, err)) return -1;
        cfg->norm = (TnNormKind)choice;
        return 0;
    }
    if (strcmp(key, "lrpe-layers") == 0) return parse_lrpe_layers(cfg, value, err);
    if (strcmp(key, "max-positions") == 0) {
        char *end;
        long n = strtol(value, &end, 10);
        if (end == value || *end || n <= 0 || n > TN_MAX_POSITIONS)
            return tn_fail(err, "switch max-positions: '%s' is not a positive integer", value);
        cfg->max_positions = (int)n;
        return 0;
    }
    return tn_fail(err, "unknown switch '%s'", key);
}

float tn_embed_scale(const TnConfig *cfg) {
    return cfg->no_scale_embedding ? 1.0f : sqrtf((float)cfg->dim);
}

/* ALiBi slopes for n heads: 2^(-8(h+1)/n) when n is a power of two, else the
 * slopes of the largest power of two below n followed by the even-indexed
 * slopes of twice that, as in the official code. */
static void alibi_slopes(int n, double *out) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    if (p == n) {
        for (int h = 0; h < n; h++) out[h] = pow(2.0, -8.0 * (h + 1) / n);
        return;
    }
    for (int h = 0; h < p; h++) out[h] = pow(2.0, -8.0 * (h + 1) / p);
    for (int i = 0; i < n - p; i++) out[p + i] = pow(2.0, -8.0 * (2 * i + 1) / (2 * p));
}

void tn_decay_rates(const TnConfig *cfg, int layer, double *lambda) {
    int H = cfg->n_heads, L = cfg->n_layers;
    int has_decay = cfg->pe == TN_PE_LRPE_DECAY || cfg->pe == TN_PE_EXP_DECAY;
    if (!has_decay || cfg->decay == TN_DECAY_NONE) {
        for (int h = 0; h < H; h++) lambda[h] = 1.0;
        return;
    }
    double slopes[H], factor;
    if (cfg->decay == TN_DECAY_PAPER) {
        /* Eq. 2 counts heads and layers from 1: the last layer has no decay. */
        for (int h = 0; h < H; h++) slopes[h] = 8.0 * (h + 1) / H;
        factor = 1.0 - (double)(layer + 1) / L;
    } else {
        alibi_slopes(H, slopes);
        factor = L > 1 ? 1.0 - (double)layer / (L - 1) + 1e-5 : 1.0 + 1e-5;
    }
    if (!cfg->decay_temperature) factor = 1.0;
    for (int h = 0; h < H; h++) lambda[h] = exp(-slopes[h] * factor);
}

long long tn_config_param_count(const TnConfig *cfg) {
    long long D = cfg->dim, G = cfg->glu_dim, V = cfg->vocab_size;
    long long n = V * D * (cfg->tie_word_embeddings ? 1 : 2);
    /* transformer: q, k, v, o, SwiGLU and two norm gains per layer, the final gain */
    if (cfg->arch == TN_ARCH_TRANSFORMER) return n + cfg->n_layers * (4 * D * D + 3 * D * G + 2 * D) + D;
    /* norm parameters per norm: a gain (rmsnorm), a gain and a bias (layernorm) */
    long long norm = D * (cfg->norm == TN_NORM_SRMS ? 0 : cfg->norm == TN_NORM_RMS ? 1 : 2);
    if (cfg->pe == TN_PE_APE) n += (long long)cfg->max_positions * D;
    for (int l = 0; l < cfg->n_layers; l++) {
        n += tn_qkvu_rows(cfg) * D + D * D + 3 * D * G + 3 * norm;
        if (cfg->use_lrpe[l]) n += D; /* theta [H, 1, d] */
    }
    return n + norm; /* the final norm */
}

/* ---- config.json ------------------------------------------------------ */

/* Keys written by HF's PretrainedConfig or the released configs that carry
 * no model semantics tnllm needs; they are accepted and ignored. */
static const char *const ignored_keys[] = {
    "architectures", "auto_map", "model_type", "torch_dtype", "transformers_version", "use_cache",
    "add_bos_token", "add_eos_token", "dropout", "attention_dropout", "activation_dropout",
    "_name_or_path", "hidden_dim", "bias", "fsdp", "decoder_layerdrop", "sentencepiece_model",
};

static int is_ignored_key(const char *key) {
    for (size_t i = 0; i < sizeof ignored_keys / sizeof ignored_keys[0]; i++)
        if (strcmp(ignored_keys[i], key) == 0) return 1;
    return 0;
}

static const char *const known_keys[] = {
    "vocab_size", "decoder_embed_dim", "decoder_layers", "decoder_attention_heads", "glu_dim",
    "linear_use_lrpe_list", "no_scale_embedding", "init_std", "pad_token_id", "bos_token_id",
    "eos_token_id", "tie_word_embeddings", "linear_act_fun", "norm_type", "glu_act", "position_encoding",
    "decay_type", "decay_temperature", "use_output_gate", "max_position_embeddings",
};

static int is_known_key(const char *key) {
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++)
        if (strcmp(known_keys[i], key) == 0) return 1;
    return is_ignored_key(key);
}

static int json_int(const cJSON *root, const char *key, int required, int *out, const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return required ? tn_fail(err, "%s: missing required field '%s'", path, key) : 0;
    if (!cJSON_IsNumber(item)) return tn_fail(err, "%s: field '%s' must be an integer", path, key);
    /* the range first: converting a double outside int's is undefined */
    if (!(item->valuedouble >= INT_MIN && item->valuedouble <= INT_MAX))
        return tn_fail(err, "%s: field '%s' = %g is out of range", path, key, item->valuedouble);
    if (item->valuedouble != (double)(int)item->valuedouble)
        return tn_fail(err, "%s: field '%s' must be an integer", path, key);
    *out = (int)item->valuedouble;
    return 0;
}

static int json_bool(const cJSON *root, const char *key, int required, int *out, const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return required ? tn_fail(err, "%s: missing required field '%s'", path, key) : 0;
    if (!cJSON_IsBool(item)) return tn_fail(err, "%s: field '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* Reads an optional string field into *out as its index in allowed (left
 * unchanged when the field is absent). */
static int json_string_in(const cJSON *root, const char *key, const char *const *allowed, int n_allowed, int *out,
                          const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return 0;
    if (!cJSON_IsString(item)) return tn_fail(err, "%s: field '%s' must be a string", path, key);
    int i = tn_name_index(allowed, n_allowed, item->valuestring);
    if (i < 0) return tn_fail(err, "%s: field '%s' has unsupported value \"%s\"", path, key, item->valuestring);
    *out = i;
    return 0;
}

/* An optional number field into *out (left unchanged when absent). */
static int json_float(const cJSON *root, const char *key, float *out, const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return 0;
    if (!cJSON_IsNumber(item)) return tn_fail(err, "%s: field '%s' must be a number", path, key);
    *out = (float)item->valuedouble;
    return 0;
}

/* The layer count, named by its key in this file's format. */
static int check_layer_count(const TnConfig *cfg, const char *key, const char *path, TnError *err) {
    if (cfg->n_layers > TN_MAX_LAYERS || cfg->n_layers <= 0)
        return tn_fail(err, "%s: %s %d out of range 1..%d", path, key, cfg->n_layers, TN_MAX_LAYERS);
    return 0;
}

/* tn_config_validate with the file's path in the message. */
static int validate_in_file(const TnConfig *cfg, const char *path, TnError *err) {
    if (!tn_config_validate(cfg, err)) return 0;
    char inner[sizeof err->msg];
    snprintf(inner, sizeof inner, "%s", err->msg);
    return tn_fail(err, "%s: %s", path, inner);
}

/* ---- the Transformer baseline: an HF LLaMA config.json ----------------- */


static const char *const llama_keys[] = {
    "architectures", "model_type", "torch_dtype", "transformers_version", "use_cache", "_name_or_path",
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings",
    "attention_bias", "attention_dropout", "mlp_bias", "initializer_range", "pretraining_tp", "tie_word_embeddings",
    "pad_token_id", "bos_token_id", "eos_token_id",
};

/* A number field that must equal `expected` when present (tnllm fixes it). */
static int json_fixed_number(const cJSON *root, const char *key, double expected, const char *path, TnError *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (item && (!cJSON_IsNumber(item) || fabs(item->valuedouble - expected) > 1e-6 * fabs(expected)))
        return tn_fail(err, "%s: field '%s' must be %g (tnllm's fixed value)", path, key, expected);
    return 0;
}

static int llama_config_from_json(TnConfig *cfg, const cJSON *root, const char *path, TnError *err) {
    for (const cJSON *item = root->child; item; item = item->next) {
        size_t i = 0, n = sizeof llama_keys / sizeof llama_keys[0];
        while (i < n && strcmp(llama_keys[i], item->string) != 0) i++;
        if (i == n) return tn_fail(err, "%s: unknown field '%s' for model_type llama", path, item->string);
    }
    if (tn_config_set_switch(cfg, "arch", "transformer", err)) return -1;
    int tied = 1, kv_heads = 0, bias = 0, mlp_bias = 0;
    static const char *const acts[] = {"silu"};
    int act = 0;
    if (json_int(root, "vocab_size", 1, &cfg->vocab_size, path, err) ||
        json_int(root, "hidden_size", 1, &cfg->dim, path, err) ||
        json_int(root, "intermediate_size", 1, &cfg->glu_dim, path, err) ||
        json_int(root, "num_hidden_layers", 1, &cfg->n_layers, path, err) ||
        json_int(root, "num_attention_heads", 1, &cfg->n_heads, path, err) ||
        json_int(root, "num_key_value_heads", 0, &kv_heads, path, err) ||
        json_string_in(root, "hidden_act", acts, 1, &act, path, err) ||
        json_fixed_number(root, "rms_norm_eps", 1e-6, path, err) ||
        json_fixed_number(root, "rope_theta", TN_ROPE_THETA, path, err) ||
        json_bool(root, "attention_bias", 0, &bias, path, err) || json_bool(root, "mlp_bias", 0, &mlp_bias, path, err) ||
        json_bool(root, "tie_word_embeddings", 0, &tied, path, err) ||
        json_int(root, "pad_token_id", 0, &cfg->pad_token_id, path, err) ||
        json_int(root, "bos_token_id", 0, &cfg->bos_token_id, path, err) ||
        json_int(root, "eos_token_id", 0, &cfg->eos_token_id, path, err))
        return -1;
    cfg->tie_word_embeddings = tied;
    if (kv_heads && kv_heads != cfg->n_heads)
        return tn_fail(err, "%s: num_key_value_heads %d != num_attention_heads %d (grouped-query attention is not "
                            "supported)", path, kv_heads, cfg->n_heads);
    if (bias || mlp_bias) return tn_fail(err, "%s: attention_bias / mlp_bias = true are not supported", path);
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (scaling && !cJSON_IsNull(scaling)) return tn_fail(err, "%s: rope_scaling is not supported", path);
    if (json_float(root, "initializer_range", &cfg->init_std, path, err) ||
        check_layer_count(cfg, "num_hidden_layers", path, err))
        return -1;
    return validate_in_file(cfg, path, err);
}

/* A config.json object naming its one architecture (the HF class). */
static cJSON *config_json_object(const char *architecture) {
    cJSON *root = cJSON_CreateObject();
    cJSON *architectures = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(architectures, cJSON_CreateString(architecture));
    return root;
}

/* The special tokens and the embedding tying, which both formats store
 * under the same names. */
static void add_token_fields(cJSON *root, const TnConfig *cfg) {
    cJSON_AddNumberToObject(root, "pad_token_id", cfg->pad_token_id);
    cJSON_AddNumberToObject(root, "bos_token_id", cfg->bos_token_id);
    cJSON_AddNumberToObject(root, "eos_token_id", cfg->eos_token_id);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", cfg->tie_word_embeddings);
}

/* The Transformer baseline's config.json: HF Llama's. */
static cJSON *llama_config_json(const TnConfig *cfg) {
    cJSON *root = config_json_object("LlamaForCausalLM");
    cJSON_AddStringToObject(root, "model_type", "llama");
    cJSON_AddNumberToObject(root, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(root, "hidden_size", cfg->dim);
    cJSON_AddNumberToObject(root, "intermediate_size", cfg->glu_dim);
    cJSON_AddNumberToObject(root, "num_hidden_layers", cfg->n_layers);
    cJSON_AddNumberToObject(root, "num_attention_heads", cfg->n_heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", cfg->n_heads);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddNumberToObject(root, "rms_norm_eps", 1e-6); /* TN_NORM_EPS */
    cJSON_AddNumberToObject(root, "rope_theta", TN_ROPE_THETA);
    cJSON_AddBoolToObject(root, "attention_bias", 0);
    cJSON_AddBoolToObject(root, "mlp_bias", 0);
    cJSON_AddNumberToObject(root, "initializer_range", cfg->init_std);
    add_token_fields(root, cfg);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    return root;
}

static int config_from_json(TnConfig *cfg, const cJSON *root, const char *path, TnError *err) {
    tn_config_defaults(cfg);
    if (!cJSON_IsObject(root)) return tn_fail(err, "%s: top level is not a JSON object", path);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "llama") == 0)
        return llama_config_from_json(cfg, root, path, err);
    for (const cJSON *item = root->child; item; item = item->next)
        if (!is_known_key(item->string)) return tn_fail(err, "%s: unknown field '%s'", path, item->string);

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "transnormer") != 0))
        return tn_fail(err, "%s: model_type must be \"transnormer\" (or \"llama\": the Transformer baseline)", path);
    if (json_int(root, "vocab_size", 1, &cfg->vocab_size, path, err) ||
        json_int(root, "decoder_embed_dim", 1, &cfg->dim, path, err) ||
        json_int(root, "decoder_layers", 1, &cfg->n_layers, path, err) ||
        json_int(root, "decoder_attention_heads", 1, &cfg->n_heads, path, err) ||
        json_int(root, "glu_dim", 1, &cfg->glu_dim, path, err) ||
        json_bool(root, "no_scale_embedding", 1, &cfg->no_scale_embedding, path, err) ||
        json_bool(root, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, path, err) ||
        json_int(root, "pad_token_id", 0, &cfg->pad_token_id, path, err) ||
        json_int(root, "bos_token_id", 0, &cfg->bos_token_id, path, err) ||
        json_int(root, "eos_token_id", 0, &cfg->eos_token_id, path, err))
        return -1;

    int hidden_dim = cfg->dim;
    if (json_int(root, "hidden_dim", 0, &hidden_dim, path, err)) return -1;
    if (hidden_dim != cfg->dim)
        return tn_fail(err, "%s: hidden_dim %d differs from decoder_embed_dim %d", path, hidden_dim, cfg->dim);
    /* "swish" is the released configs' other name for SiLU. */
    static const char *const gla_acts[] = {"none", "silu", "1+elu", "swish"};
    int gla_act = cfg->gla_act, glu_act = cfg->glu_act, norm = cfg->norm, pe = cfg->pe, decay = cfg->decay;
    if (json_string_in(root, "linear_act_fun", gla_acts, 4, &gla_act, path, err) ||
        json_string_in(root, "norm_type", tn_norm_names, 3, &norm, path, err) ||
        json_string_in(root, "glu_act", tn_activation_names, 3, &glu_act, path, err) ||
        json_string_in(root, "position_encoding", tn_pe_names, 4, &pe, path, err) ||
        json_string_in(root, "decay_type", tn_decay_names, 3, &decay, path, err) ||
        json_bool(root, "decay_temperature", 0, &cfg->decay_temperature, path, err) ||
        json_bool(root, "use_output_gate", 0, &cfg->output_gate, path, err) ||
        json_int(root, "max_position_embeddings", 0, &cfg->max_positions, path, err))
        return -1;
    cfg->gla_act = gla_act == 3 ? TN_ACT_SILU : (TnActivation)gla_act;
    cfg->glu_act = (TnActivation)glu_act;
    cfg->norm = (TnNormKind)norm;
    cfg->pe = (TnPositionEncoding)pe;
    cfg->decay = (TnDecay)decay;
    int bias = 0;
    if (json_bool(root, "bias", 0, &bias, path, err)) return -1;
    if (bias) return tn_fail(err, "%s: field 'bias' = true is not supported (the released models have no biases)", path);

    if (json_float(root, "init_std", &cfg->init_std, path, err) || check_layer_count(cfg, "decoder_layers", path, err))
        return -1;

    const cJSON *lrpe = cJSON_GetObjectItemCaseSensitive(root, "linear_use_lrpe_list");
    if (!lrpe) return tn_fail(err, "%s: missing required field 'linear_use_lrpe_list'", path);
    if (!cJSON_IsArray(lrpe)) return tn_fail(err, "%s: field 'linear_use_lrpe_list' must be an array", path);
    if (cJSON_GetArraySize(lrpe) != cfg->n_layers)
        return tn_fail(err, "%s: linear_use_lrpe_list has %d entries but decoder_layers is %d", path,
                       cJSON_GetArraySize(lrpe), cfg->n_layers);
    int l = 0;
    for (const cJSON *e = lrpe->child; e; e = e->next, l++) {
        if (!cJSON_IsNumber(e) || (e->valuedouble != 0 && e->valuedouble != 1))
            return tn_fail(err, "%s: linear_use_lrpe_list[%d] must be 0 or 1", path, l);
        cfg->use_lrpe[l] = (unsigned char)e->valuedouble;
    }
    return validate_in_file(cfg, path, err);
}

int tn_config_load(TnConfig *cfg, const char *path, TnError *err) {
    char *text;
    if (tn_read_file(path, &text, NULL, err)) return -1;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long at = where ? (long)(where - text) : -1;
        free(text);
        return tn_fail(err, "%s: invalid JSON near byte %ld", path, at);
    }
    int rc = config_from_json(cfg, root, path, err);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* TransNormerLLM's config.json: the released models' fields. */
static cJSON *transnormer_config_json(const TnConfig *cfg) {
    cJSON *root = config_json_object("TransnormerForCausalLM");
    /* Lets transformers' trust_remote_code load our files with the official
     * modeling code, which is published beside the released 385M model. */
    cJSON *auto_map = cJSON_AddObjectToObject(root, "auto_map");
    cJSON_AddStringToObject(auto_map, "AutoConfig",
                            "OpenNLPLab/TransNormerLLM-385M--configuration_transnormer.TransnormerConfig");
    cJSON_AddStringToObject(auto_map, "AutoModelForCausalLM",
                            "OpenNLPLab/TransNormerLLM-385M--modeling_transnormer.TransnormerForCausalLM");
    cJSON_AddStringToObject(root, "model_type", "transnormer");
    cJSON_AddNumberToObject(root, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(root, "decoder_embed_dim", cfg->dim);
    cJSON_AddNumberToObject(root, "hidden_dim", cfg->dim);
    cJSON_AddNumberToObject(root, "decoder_layers", cfg->n_layers);
    cJSON_AddNumberToObject(root, "decoder_attention_heads", cfg->n_heads);
    cJSON_AddNumberToObject(root, "glu_dim", cfg->glu_dim);
    cJSON *lrpe = cJSON_AddArrayToObject(root, "linear_use_lrpe_list");
    for (int l = 0; l < cfg->n_layers; l++) cJSON_AddItemToArray(lrpe, cJSON_CreateNumber(cfg->use_lrpe[l]));
    cJSON_AddBoolToObject(root, "no_scale_embedding", cfg->no_scale_embedding);
    cJSON_AddStringToObject(root, "linear_act_fun", tn_activation_names[cfg->gla_act]);
    cJSON_AddStringToObject(root, "norm_type", tn_norm_names[cfg->norm]);
    /* The switches of SPEC section 3 only when not the default, so that a
     * default model's config.json stays the released one. */
    if (cfg->glu_act != TN_ACT_NONE) cJSON_AddStringToObject(root, "glu_act", tn_activation_names[cfg->glu_act]);
    if (cfg->pe != TN_PE_LRPE_DECAY) cJSON_AddStringToObject(root, "position_encoding", tn_pe_names[cfg->pe]);
    if (cfg->decay != TN_DECAY_OFFICIAL) cJSON_AddStringToObject(root, "decay_type", tn_decay_names[cfg->decay]);
    if (!cfg->decay_temperature) cJSON_AddBoolToObject(root, "decay_temperature", 0);
    if (!cfg->output_gate) cJSON_AddBoolToObject(root, "use_output_gate", 0);
    if (cfg->pe == TN_PE_APE) cJSON_AddNumberToObject(root, "max_position_embeddings", cfg->max_positions);
    cJSON_AddBoolToObject(root, "bias", 0);
    cJSON_AddNumberToObject(root, "init_std", cfg->init_std);
    add_token_fields(root, cfg);
    cJSON_AddBoolToObject(root, "use_cache", 1);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    return root;
}

int tn_config_save(const TnConfig *cfg, const char *path, TnError *err) {
    cJSON *root = cfg->arch == TN_ARCH_TRANSFORMER ? llama_config_json(cfg) : transnormer_config_json(cfg);
    return tn_json_write_file(path, root, err);
}

const char *tn_config_unsupported_switch(const TnConfig *cfg, unsigned implemented) {
    if (cfg->arch != TN_ARCH_TRANSNORMER && !(implemented & TN_IMPLEMENTS_TRANSFORMER))
        return "the softmax Transformer baseline (--arch transformer)";
    if (cfg->pe == TN_PE_APE && !(implemented & TN_IMPLEMENTS_APE)) return "absolute position embeddings (--pe ape)";
    if (!cfg->output_gate && !(implemented & TN_IMPLEMENTS_NO_GATE)) return "models without the output gate (--gate off)";
    if (cfg->gla_act != TN_ACT_SILU && !(implemented & TN_IMPLEMENTS_GLA_ACT))
        return "q/k activations other than SiLU (--gla-act)";
    if (cfg->glu_act != TN_ACT_NONE && !(implemented & TN_IMPLEMENTS_GLU_ACT)) return "an SGLU activation (--glu-act)";
    if (cfg->norm != TN_NORM_SRMS && !(implemented & TN_IMPLEMENTS_NORMS)) return "norms other than SRMSNorm (--norm)";
    return NULL;
}
