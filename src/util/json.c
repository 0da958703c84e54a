#include "util/json.h"

#include <string.h>

cJSON *tn_json_parse_whole(const char *text, size_t n, const char *blanks, size_t *at) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    size_t i = end ? (size_t)(end - text) : 0;
    /* strchr finds the terminating NUL too: test for it apart */
    while (root && i < n && text[i] != '\0' && strchr(blanks, text[i])) i++;
    *at = i;
    return root;
}
