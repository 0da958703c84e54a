#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

cJSON *tn_json_parse_whole(const char *text, size_t n, const char *blanks, size_t *at) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    size_t i = end ? (size_t)(end - text) : 0;
    /* strchr finds the terminating NUL too: test for it apart */
    while (root && i < n && text[i] != '\0' && strchr(blanks, text[i])) i++;
    *at = i;
    return root;
}

int tn_json_write_file(const char *path, cJSON *root, TnError *err) {
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return tn_fail(err, "%s: out of memory printing JSON", path);
    size_t n = strlen(text);
    char *line = tn_malloc(n + 2);
    memcpy(line, text, n);
    line[n] = '\n';
    cJSON_free(text);
    int rc = tn_write_file(path, line, n + 1, err);
    free(line);
    return rc;
}
