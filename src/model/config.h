/* config.h: the model description shared by every path (CPU, CUDA, I/O).
 *
 * A TnConfig holds the hyper-parameters of SPEC section 1 under the names of
 * the paper's notation, the switches of SPEC section 3 and the choice of
 * the softmax Transformer baseline; tn_config_* read and write them as the
 * HF `config.json` of the released TransNormerLLM checkpoints (or of LLaMA
 * for the baseline). Everything
 * derived from the configuration (head width, LRPE width, decay rates) is
 * computed here and nowhere else, so the CPU and CUDA paths cannot disagree.
 */
#ifndef TN_MODEL_CONFIG_H
#define TN_MODEL_CONFIG_H

#include "util/error.h"

/* Upper bounds on the sizes (far above Table 1's 175B: D 12288, H 96,
 * G 32768) that keep every size derived in int (4D, L x H, the head widths)
 * below 2^31 and the per-head arrays small enough for the stack. */
#define TN_MAX_LAYERS 256
#define TN_MAX_DIM (1 << 20)
#define TN_MAX_HEADS 4096
#define TN_MAX_GLU_DIM (1 << 22)
#define TN_MAX_VOCAB (1 << 26)
#define TN_MAX_POSITIONS (1 << 24)

/* The switches of SPEC section 3 (paper variants and ablations, Tables
 * 5-10). The first value of each is the released models' behaviour. */
typedef enum TnPositionEncoding {
    TN_PE_LRPE_DECAY, /* lrpe-d: LRPE on the listed layers + decay */
    TN_PE_LRPE,       /* lrpe: LRPE on the listed layers, no decay */
    TN_PE_EXP_DECAY,  /* exp-decay: decay, no LRPE */
    TN_PE_APE,        /* ape: learned absolute position embedding, no decay, no LRPE */
} TnPositionEncoding;
typedef enum TnDecay {
    TN_DECAY_OFFICIAL, /* SPEC section 1: ALiBi slopes, (1 - l/(L-1) + 1e-5) */
    TN_DECAY_PAPER,    /* Eq. 2: exp(-(8h/H)(1 - l/L)), h = 1..H, l = 1..L */
    TN_DECAY_NONE,     /* lambda = 1 */
} TnDecay;
/* The architecture: TransNormerLLM, or the LLaMA-style softmax Transformer
 * baseline of the paper's comparisons (Tables 3, 11-13): RoPE, causal
 * softmax attention, SwiGLU, RMSNorm with gains, same D, L, H, G. */
typedef enum TnArch { TN_ARCH_TRANSNORMER, TN_ARCH_TRANSFORMER } TnArch;
typedef enum TnActivation { TN_ACT_NONE, TN_ACT_SILU, TN_ACT_ONE_PLUS_ELU } TnActivation;
typedef enum TnNormKind {
    TN_NORM_SRMS,  /* SRMSNorm, no parameters (Eq. 8) */
    TN_NORM_RMS,   /* RMSNorm with a learned gain */
    TN_NORM_LAYER, /* LayerNorm with a learned gain and bias */
} TnNormKind;

/* Names of the switch values as config.json and the CLI spell them, in
 * enum order (the CLI's --norm says srmsnorm for simplermsnorm);
 * tn_name_index returns the index of value, -1 if absent. */
extern const char *const tn_arch_names[2];
extern const char *const tn_pe_names[4];
extern const char *const tn_decay_names[3];
extern const char *const tn_activation_names[3];
extern const char *const tn_norm_names[3];
int tn_name_index(const char *const *names, int n_names, const char *value);

typedef struct TnConfig {
    int vocab_size;          /* V */
    int dim;                 /* D: decoder_embed_dim (= hidden_dim) */
    int n_layers;            /* L */
    int n_heads;             /* H: head width d = D / H */
    int glu_dim;             /* G: SGLU inner width */
    int no_scale_embedding;  /* 1: embedding scale e = 1, else sqrt(D) */
    int tie_word_embeddings; /* 1: logits use E; 0: a separate lm_head [V, D] */
    unsigned char use_lrpe[TN_MAX_LAYERS]; /* linear_use_lrpe_list */
    float init_std;          /* std of the normal initialisation */
    int pad_token_id, bos_token_id, eos_token_id;
    TnArch arch;             /* transformer: an HF LLaMA config.json (model_type "llama") */
    /* SPEC section 3 switches (config.json keys in parentheses; written
     * only when they differ from the default shown first). */
    TnPositionEncoding pe;   /* position_encoding: lrpe-d | lrpe | exp-decay | ape */
    TnDecay decay;           /* decay_type: official | paper | none */
    int decay_temperature;   /* decay_temperature: 1 | 0 drops the layer factor */
    int output_gate;         /* use_output_gate: 1 | 0 drops u (W_qkv is [3D, D]) */
    TnActivation gla_act;    /* linear_act_fun: silu | 1+elu | none (q and k) */
    TnActivation glu_act;    /* glu_act: none | silu (on W1 x of SGLU) */
    TnNormKind norm;         /* norm_type: simplermsnorm | rmsnorm | layernorm (every norm) */
    int max_positions;       /* max_position_embeddings: the APE table's rows (pe = ape) */
} TnConfig;

/* The groups of switches a path that implements only part of them (the
 * CUDA code) names as implemented to tn_config_unsupported_switch. The
 * decay, temperature and LRPE-layer switches need no flag: they change only
 * lambda and the LRPE list, which every path takes from this module. */
enum {
    TN_IMPLEMENTS_APE = 1 << 0,         /* pe ape: the position table */
    TN_IMPLEMENTS_NO_GATE = 1 << 1,     /* gate off: W_qkv [3D, D] */
    TN_IMPLEMENTS_GLA_ACT = 1 << 2,     /* gla_act 1+elu and none */
    TN_IMPLEMENTS_GLU_ACT = 1 << 3,     /* glu_act silu */
    TN_IMPLEMENTS_NORMS = 1 << 4,       /* norm rmsnorm and layernorm */
    TN_IMPLEMENTS_TRANSFORMER = 1 << 5, /* arch transformer */
    TN_IMPLEMENTS_TRANSNORMER_SWITCHES = TN_IMPLEMENTS_APE | TN_IMPLEMENTS_NO_GATE | TN_IMPLEMENTS_GLA_ACT |
                                         TN_IMPLEMENTS_GLU_ACT | TN_IMPLEMENTS_NORMS,
};
/* For a path that implements the released blocks plus the groups of
 * `implemented` (TN_IMPLEMENTS_* flags; 0: the released blocks only): the
 * first switch of cfg it cannot compute, as a phrase for a message, or
 * NULL. */
const char *tn_config_unsupported_switch(const TnConfig *cfg, unsigned implemented);

/* RoPE base of the Transformer baseline (LLaMA's rope_theta). */
#define TN_ROPE_THETA 10000.0

/* SRMSNorm epsilon (SPEC section 1): fixed by the released checkpoints;
 * the RMSNorm and LayerNorm switches and the baseline use it too. */
#define TN_NORM_EPS 1e-6f

/* The released models' configuration with every size zero (callers set
 * V, D, L, H, G and the LRPE list). */
void tn_config_defaults(TnConfig *cfg);

/* Fills cfg with a Table 1 size ("385M", "1B", "3B", "7B", "13B", "65B",
 * "175B") or one of the small development sizes ("tiny", "15M", "45M",
 * "125M"), all with V = 64000 unless stated; the name in any case ("385m").
 * Fails on an unknown name, with the list of names in the message. */
int tn_config_from_size(TnConfig *cfg, const char *name, TnError *err);
/* Writes the comma-separated list of size names into out. */
const char *tn_config_size_names(void);

/* Parses an HF config.json. Required fields: vocab_size, decoder_embed_dim,
 * decoder_layers, decoder_attention_heads, glu_dim, linear_use_lrpe_list,
 * no_scale_embedding. A field tnllm does not know, a value it does not
 * support (e.g. bias: true) or an inconsistent one (hidden_dim != D, a LRPE
 * list of the wrong length) fails with a message naming path and field. */
int tn_config_load(TnConfig *cfg, const char *path, TnError *err);
/* Writes cfg as config.json at path (atomically). */
int tn_config_save(const TnConfig *cfg, const char *path, TnError *err);
/* Sets one switch of SPEC section 3 by its command-line name:
 *   pe lrpe-d|lrpe|exp-decay|ape      (exp-decay and ape clear the LRPE list;
 *                                      ape sets max_positions to 2048 if unset)
 *   decay official|paper|none         decay-temperature on|off
 *   gate on|off                       gla-act silu|1+elu|none
 *   glu-act none|silu                 norm srmsnorm|rmsnorm|layernorm
 *   lrpe-layers all|none|I,J,...      (layer indices)
 *   max-positions N                   (the APE table's rows)
 *   arch transnormer|transformer      (transformer sets what the baseline
 *                                      fixes: RMSNorm, SwiGLU, no gate, no
 *                                      LRPE, no embedding scale) 
 * Fails on an unknown key or value. Combinations are checked by
 * tn_config_validate, once every switch is set. */
int tn_config_set_switch(TnConfig *cfg, const char *key, const char *value, TnError *err);
/* The keys of tn_config_set_switch, NULL-terminated, for the CLI. */
extern const char *const tn_switch_keys[];

/* Checks the invariants (D % H == 0, sizes from 1 to their TN_MAX_* bound)
 * and refuses switch combinations that mean nothing: a decay setting or
 * LRPE layers with a pe that has none, decay_temperature off without decay,
 * glu_act 1+elu, ape without max_positions in 1..TN_MAX_POSITIONS, a
 * TransNormer switch or an odd head width with arch transformer (RoPE
 * rotates pairs). */
int tn_config_validate(const TnConfig *cfg, TnError *err);

static inline int tn_head_dim(const TnConfig *cfg) { return cfg->dim / cfg->n_heads; }
/* Rows of the token mixer's fused projection: q, k, v (and u with the gate). */
static inline int tn_qkvu_rows(const TnConfig *cfg) { return (cfg->output_gate ? 4 : 3) * cfg->dim; }
/* Width of one head's q/k features after LRPE: 2d on LRPE layers, else d. */
static inline int tn_qk_head_dim(const TnConfig *cfg, int layer) {
    return cfg->use_lrpe[layer] ? 2 * tn_head_dim(cfg) : tn_head_dim(cfg);
}
/* Embedding scale e of SPEC section 1. */
float tn_embed_scale(const TnConfig *cfg);

/* Per-head decay of layer `layer`: by default (SPEC section 1)
 * lambda[h] = exp(-s_{l,h}) with ALiBi slopes for any H and the
 * (1 - l/(L-1) + 1e-5) layer factor; decay_type paper uses Eq. 2; the
 * layer factor is 1 when decay_temperature is off; lambda = 1 for
 * decay_type none and for pe lrpe / ape. lambda has H entries. Computed in
 * double, rounded once. */
void tn_decay_rates(const TnConfig *cfg, int layer, double *lambda);

/* Total parameter count (all stored tensors). */
long long tn_config_param_count(const TnConfig *cfg);

#endif
