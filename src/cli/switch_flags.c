#include "cli/switch_flags.h"

#include <stdio.h>

#include "util/error.h"

int switch_flags_match(TnSwitchFlags *flags, TnArgs *a) {
    for (int i = 0; tn_switch_keys[i]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", tn_switch_keys[i]);
        if (!args_is(a, NULL, flag)) continue;
        if (flags->count == TN_MAX_SWITCH_FLAGS)
            tn_die_usage("tnllm %s: more than %d switch flags", a->command, TN_MAX_SWITCH_FLAGS);
        flags->key[flags->count] = tn_switch_keys[i];
        flags->value[flags->count++] = args_value(a);
        return 1;
    }
    return 0;
}

void switch_flags_apply(const TnSwitchFlags *flags, TnConfig *cfg, const char *command) {
    TnError err;
    for (int i = 0; i < flags->count; i++)
        if (tn_config_set_switch(cfg, flags->key[i], flags->value[i], &err))
            tn_die_usage("tnllm %s: %s", command, err.msg);
    if (tn_config_validate(cfg, &err)) tn_die_usage("tnllm %s: %s", command, err.msg);
}

void switch_flags_usage(void) {
    printf("model switches (SPEC section 3, the paper's ablations; the first value is the default)\n"
           "  --arch transnormer|transformer   transformer: the LLaMA-style softmax baseline (RoPE, SwiGLU,\n"
           "                                   RMSNorm with gains, no embedding scale), same D, L, H, G;\n"
           "                                   it takes none of the switches below\n"
           "  --pe lrpe-d|lrpe|exp-decay|ape   position encoding: LRPE + decay, LRPE only, decay only, learned\n"
           "                                   absolute positions (exp-decay and ape clear the LRPE layers)\n"
           "  --decay official|paper|none      decay rates: the released models', Eq. 2, none\n"
           "  --decay-temperature on|off       the (1 - l/L) layer factor of the decay\n"
           "  --gate on|off                    the output gate u of GLA (off: W_qkv is [3D, D])\n"
           "  --gla-act silu|1+elu|none        activation of q and k\n"
           "  --glu-act none|silu              activation of W1 x in SGLU\n"
           "  --norm srmsnorm|rmsnorm|layernorm  every norm (rmsnorm: learned gain; layernorm: gain and bias)\n"
           "  --lrpe-layers all|none|I,J,...   layers with LRPE (default: the configuration's list)\n"
           "  --max-positions N                rows of the APE table (pe ape; default 2048)\n");
}
