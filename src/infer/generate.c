#include "infer/generate.h"

#include <stdlib.h>
#include <string.h>

int tn_generate(TnSession *s, TnSampler *sampler, int max_new, int32_t eos_token, TnTokenSink sink, void *user,
                int *n_generated, TnError *err) {
    int32_t recent[TN_SESSION_RECENT];
    *n_generated = 0;
    for (int i = 0; i < max_new; i++) {
        int n_recent = tn_session_recent(s, 0, recent);
        int32_t token = tn_sampler_sample(sampler, tn_session_logits(s, 0), recent, n_recent);
        if (token == eos_token) break;
        int stop = sink ? sink(user, token) : 0;
        if (tn_session_decode(s, &token, 1, err)) return -1;
        ++*n_generated;
        if (stop) break;
    }
    return 0;
}

int tn_ends_with_stop(const char *const *stops, int n_stops, const char *text, size_t len) {
    for (int i = 0; i < n_stops; i++) {
        size_t n = strlen(stops[i]);
        if (n && n <= len && memcmp(text + len - n, stops[i], n) == 0) return 1;
    }
    return 0;
}

size_t tn_utf8_unfinished(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned char lead = s[len - k];
        if ((lead & 0xc0) == 0x80) continue; /* a continuation byte: the lead is further back */
        size_t need = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3
                                                        : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
        if (need <= k) return 0; /* ASCII, a complete character or an invalid lead */
        if (k == 1) return k;
        /* the second byte's range where the lead allows less than 80..BF (Unicode Table 3-7) */
        unsigned char second = s[len - k + 1];
        unsigned char low = lead == 0xe0 ? 0xa0 : lead == 0xf0 ? 0x90 : 0x80;
        unsigned char high = lead == 0xed ? 0x9f : lead == 0xf4 ? 0x8f : 0xbf;
        return second >= low && second <= high ? k : 0;
    }
    return 0;
}

const char *tn_stop_reason_name(TnStopReason reason) {
    return reason == TN_STOP_EOS ? "eos" : reason == TN_STOP_SINK ? "stop" : "length";
}

/* Samples the next token of the sequence in `slot` and emits it; returns
 * 1 if the sequence ends there (its token, if any, is then not fed). */
static int sample_slot(TnSession *s, int slot, int seq, TnSampler *sampler, int max_new, int32_t eos_token,
                       TnBatchSink sink, void *user, int32_t *token, int *n_generated, TnStopReason *reason) {
    int32_t recent[TN_SESSION_RECENT];
    if (n_generated[seq] == max_new) {
        *reason = TN_STOP_LENGTH;
        return 1;
    }
    int n_recent = tn_session_recent(s, slot, recent);
    *token = tn_sampler_sample(sampler, tn_session_logits(s, slot), recent, n_recent);
    if (*token == eos_token) {
        *reason = TN_STOP_EOS;
        return 1;
    }
    n_generated[seq]++;
    if (sink && sink(user, seq, *token)) {
        *reason = TN_STOP_SINK;
        return 1;
    }
    *reason = TN_STOP_LENGTH; /* the last token needs no decode step */
    return n_generated[seq] == max_new;
}

int tn_generate_batch(TnSession *s, int batch, TnSampler *samplers, int max_new, int32_t eos_token, TnBatchSink sink,
                      void *user, int *n_generated, TnStopReason *reasons, TnError *err) {
    TN_ASSERT(batch >= 1 && batch <= s->max_batch);
    int32_t *tokens = tn_malloc((size_t)batch * sizeof *tokens);
    int *seq_of = tn_malloc((size_t)batch * sizeof *seq_of); /* the sequence each slot holds */
    for (int seq = 0; seq < batch; seq++) {
        seq_of[seq] = seq;
        n_generated[seq] = 0;
    }
    int live = batch, rc = 0;
    while (live > 0 && rc == 0) {
        for (int slot = 0; slot < live;) {
            int seq = seq_of[slot];
            if (!sample_slot(s, slot, seq, &samplers[seq], max_new, eos_token, sink, user, &tokens[slot], n_generated,
                             &reasons[seq])) {
                slot++;
                continue;
            }
            /* Drop out: the last live slot (not sampled yet) takes this one's place. */
            live--;
            if (slot == live) break;
            if ((rc = tn_session_copy(s, live, slot, err))) break;
            seq_of[slot] = seq_of[live];
        }
        if (rc == 0 && live > 0) rc = tn_session_decode(s, tokens, live, err);
    }
    free(tokens);
    free(seq_of);
    return rc;
}
