/* Unit tests for devices/debugcon (port 0x402): the 0xE9 readback firmware probes for, lines
 * logged as "firmware: ...", control characters escaped, over-long lines split. */
#include <stdio.h>

#include "tests/unit/device_test_machine.h"

#include "devices/debugcon.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &debugcon_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &debugcon_device);
    return 0;
}

static void put_str(struct device_test_machine *t, const char *s)
{
    while (*s) dtm_outb(t, DEBUGCON_PORT, (uint8_t)*s++);
}

static void test_readback(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(dtm_inb(t, DEBUGCON_PORT), 0xE9);
}

/* What the device logs (to stderr) while fn runs. */
static char *captured_log(struct device_test_machine *t, void (*fn)(struct device_test_machine *))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    assert_true(saved >= 0);
    dup2(fileno(tmp), 2);
    fn(t);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long n = ftell(tmp);
    rewind(tmp);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
}

static void write_lines(struct device_test_machine *t)
{
    put_str(t, "SeaBIOS (version 1.16.2)\r\n");
    put_str(t, "evil\x1b[2J\\x\n");
    for (int i = 0; i < DEBUGCON_LINE_MAX + 10; i++) dtm_outb(t, DEBUGCON_PORT, 'a');
    put_str(t, "\n");
}

static void test_lines_logged_and_escaped(void **state)
{
    struct device_test_machine *t = *state;
    char *log = captured_log(t, write_lines);
    assert_non_null(strstr(log, "firmware: SeaBIOS (version 1.16.2)\n"));
    assert_non_null(strstr(log, "firmware: evil\\x1b[2J\\x5cx\n"));
    assert_null(strchr(log, '\x1b'));
    assert_null(strchr(log, '\r'));
    /* 210 bytes: a line of 200, then one of 10 */
    char want[DEBUGCON_LINE_MAX + 12] = "firmware: ";
    memset(want + 10, 'a', DEBUGCON_LINE_MAX);
    want[10 + DEBUGCON_LINE_MAX] = '\n';
    assert_non_null(strstr(log, want));
    assert_non_null(strstr(log, "firmware: aaaaaaaaaa\n"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_logged_and_escaped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
