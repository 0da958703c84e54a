/* switch_flags.h: the model switches of SPEC section 3 as command-line
 * flags, shared by `tnllm init` and `tnllm train`.
 *
 * The flags are --arch, --pe, --decay, --decay-temperature, --gate, --gla-act,
 * --glu-act, --norm, --lrpe-layers and --max-positions (the keys of
 * tn_config_set_switch). They are recorded while the command parses its
 * arguments and applied, in the order given, once the command has built
 * the configuration from --size or --config, so that they override it.
 */
#ifndef TN_CLI_SWITCH_FLAGS_H
#define TN_CLI_SWITCH_FLAGS_H

#include "cli/args.h"
#include "model/config.h"

#define TN_MAX_SWITCH_FLAGS 32

typedef struct TnSwitchFlags {
    int count;
    const char *key[TN_MAX_SWITCH_FLAGS];   /* tn_config_set_switch keys */
    const char *value[TN_MAX_SWITCH_FLAGS]; /* borrowed from argv */
} TnSwitchFlags;

/* If the current argument is a switch flag, records it (with its value)
 * and returns 1; else 0. */
int switch_flags_match(TnSwitchFlags *flags, TnArgs *a);
/* Applies the recorded flags to cfg and validates the result; dies (status
 * 2, bad usage) with a message naming the command on a bad value or a
 * meaningless combination. */
void switch_flags_apply(const TnSwitchFlags *flags, TnConfig *cfg, const char *command);
/* Prints the flags' lines of a --help text. */
void switch_flags_usage(void);

#endif
