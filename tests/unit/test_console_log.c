/* Unit tests for worker/console_log: the serial log rotates at its size bound (keeping the
 * previous part), and output queued for live viewers is bounded, keeping the newest bytes.
 * console_log.c belongs to vmd-worker, so it is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/console_log.c"

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/console-log-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], old[140];
    snprintf(path, sizeof(path), "%s/console.log", dir);
    snprintf(old, sizeof(old), "%s.1", path);
    struct console_log l;
    assert_int_equal(console_log_open(&l, path, 1000), 0);
    uint8_t line[100];
    memset(line, 'a', sizeof(line));
    for (int i = 0; i < 25; i++) {
        line[0] = (uint8_t)('A' + i);
        console_log_write(&l, line, sizeof(line));
        assert_true(file_size(path) <= 1000);
    }
    /* 2500 bytes written, at most 1000 per file: the newest are in console.log, the part
     * before in console.log.1 */
    assert_int_equal(file_size(path), 500);
    assert_int_equal(file_size(old), 1000);
    FILE *f = fopen(path, "r");
    int first = fgetc(f);
    fclose(f);
    assert_int_equal(first, 'A' + 20);
    console_log_close(&l);
    /* reopening appends to the existing log */
    assert_int_equal(console_log_open(&l, path, 1000), 0);
    console_log_write(&l, line, 10);
    assert_int_equal(file_size(path), 510);
    console_log_close(&l);
    unlink(path);
    unlink(old);
    rmdir(dir);
}

static int g_wakes;
static void count_wake(void *opaque)
{
    (void)opaque;
    g_wakes++;
}

static void test_live_queue_bounded(void **state)
{
    (void)state;
    struct console_log l;
    assert_int_equal(console_log_open(&l, "/dev/null", 0), 0);
    l.wake = count_wake;
    size_t len;
    console_log_write(&l, (const uint8_t *)"unseen", 6);
    assert_null(console_log_take_live(&l, &len)); /* nobody watching: nothing queued */
    console_log_set_watching(&l, 1);
    g_wakes = 0;
    console_log_write(&l, (const uint8_t *)"ab", 2);
    console_log_write(&l, (const uint8_t *)"cd", 2);
    assert_int_equal(g_wakes, 1); /* one wake-up per batch of output */
    uint8_t *d = console_log_take_live(&l, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(d, "abcd", 4);
    free(d);
    /* a viewer that does not keep up loses the oldest bytes, never the newest */
    uint8_t *big = malloc(CONSOLE_LIVE_MAX);
    memset(big, 'x', CONSOLE_LIVE_MAX);
    console_log_write(&l, big, CONSOLE_LIVE_MAX);
    console_log_write(&l, (const uint8_t *)"END", 3);
    d = console_log_take_live(&l, &len);
    assert_int_equal(len, CONSOLE_LIVE_MAX);
    assert_memory_equal(d + len - 3, "END", 3);
    free(d);
    free(big);
    console_log_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_live_queue_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
