#include "infer/generate.h"

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
