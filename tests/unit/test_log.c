/* Unit tests for vmm/log's rate limiter: at most `burst` lines a second per limiter, the rest
 * counted and reported in one "suppressed" line once the second is over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"

/* Run fn with stderr redirected to a temporary file; return what it wrote (caller frees). */
static char *capture(void (*fn)(struct log_limit *), struct log_limit *rl)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn(rl);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long n = ftell(tmp);
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void flood(struct log_limit *rl)
{
    for (int i = 0; i < 100; i++) log_limited(rl, LOG_WARN, "peer %d: refused", i);
}

static void test_burst_then_suppressed(void **state)
{
    (void)state;
    struct log_limit rl = LOG_LIMIT_INIT("test refusals", 3);
    char *out = capture(flood, &rl);
    assert_int_equal(count(out, ": refused"), 3); /* peers 0, 1, 2 */
    assert_non_null(strstr(out, "peer 2: refused"));
    assert_null(strstr(out, "peer 3: refused"));
    assert_null(strstr(out, "suppressed")); /* not before the second is over */
    free(out);
    assert_int_equal(rl.suppressed, 97);
    rl.window_ms -= 1000; /* the second is over */
    out = capture(flood, &rl);
    assert_non_null(strstr(out, "97 similar messages suppressed (test refusals: at most 3 a second)"));
    assert_int_equal(count(out, ": refused"), 3);
    free(out);
}

static void flush_now(struct log_limit *rl) { log_limit_flush(rl, 0); }

static void test_flush_reports_once(void **state)
{
    (void)state;
    struct log_limit rl = LOG_LIMIT_INIT("test", 1);
    char *out = capture(flood, &rl);
    free(out);
    out = capture(flush_now, &rl); /* within the second: nothing yet */
    assert_string_equal(out, "");
    free(out);
    rl.window_ms -= 1000;
    out = capture(flush_now, &rl);
    assert_int_equal(count(out, "99 similar messages suppressed"), 1);
    free(out);
    rl.window_ms -= 1000;
    out = capture(flush_now, &rl); /* reported once only */
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_suppressed),
        cmocka_unit_test(test_flush_reports_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
