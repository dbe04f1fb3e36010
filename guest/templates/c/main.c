/*
 * A stark-pipe program: reads its private input (stdin) into a malloc'd buffer, then prints a
 * greeting and a few facts about the input to its public output (stdout) with printf. The
 * proof shows that this program printed exactly that for some input, without revealing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t cap = 64, len = 0, n;
    char *buf = malloc(cap);
    if (!buf) return 1;
    /* The private input: `--input FILE`. */
    while ((n = fread(buf + len, 1, cap - len - 1, stdin)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            buf = bigger;
        }
    }
    buf[len] = '\0';
    /* Diagnostics (stderr) are printed but are not part of the proof. */
    fprintf(stderr, "read %zu bytes of input\n", len);

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) buf[--len] = '\0';
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++) sum = sum * 31 + (unsigned char)buf[i];
    /* The public output (stdout): what the proof binds and `stark-pipe verify` prints. */
    printf("hello, %s!\n", len ? buf : "world");
    printf("%zu bytes, hash %08x\n", len, sum);
    free(buf);
    return 0;
}
