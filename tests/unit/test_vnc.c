/* Unit tests for vnc/: a real libvncclient viewer connects to the server, reads the text the
 * text source shows back from the pixels, types keys that arrive as set-1 scan codes, and
 * password authentication, reconnect storms and garbage clients leave the server serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/vnc_test_client.h"
#include "vnc/font.h"
#include "vnc/vnc.h"

struct fake_screen {
    pthread_mutex_t lock;
    uint8_t cells[VNC_ROWS * VNC_COLS * 2];
    int cursor;
    uint8_t keys[256];
    size_t nkeys;
};

static bool fake_text(void *opaque, uint8_t *cells, int *cursor)
{
    struct fake_screen *f = opaque;
    pthread_mutex_lock(&f->lock);
    memcpy(cells, f->cells, sizeof(f->cells));
    *cursor = f->cursor;
    pthread_mutex_unlock(&f->lock);
    return true;
}

static void fake_keys(void *opaque, const uint8_t *codes, size_t n)
{
    struct fake_screen *f = opaque;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n && f->nkeys < sizeof(f->keys); i++) f->keys[f->nkeys++] = codes[i];
    pthread_mutex_unlock(&f->lock);
}

static void put_text(struct fake_screen *f, unsigned row, unsigned col, const char *s, uint8_t attr)
{
    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; s[i]; i++) {
        f->cells[2 * (row * VNC_COLS + col + i)] = (uint8_t)s[i];
        f->cells[2 * (row * VNC_COLS + col + i) + 1] = attr;
    }
    pthread_mutex_unlock(&f->lock);
}

static struct vga_font font;
static struct fake_screen screen;

static int start(struct vnc_server **s, const char *pwfile)
{
    memset(&screen.cells, 0, sizeof(screen.cells));
    for (unsigned i = 0; i < VNC_ROWS * VNC_COLS; i++) screen.cells[2 * i + 1] = 0x07;
    screen.cursor = -1;
    screen.nkeys = 0;
    struct vnc_options o = {.listen = "127.0.0.1:0", .password_file = pwfile, .text = fake_text,
                            .keys = fake_keys, .opaque = &screen, .refresh_hz = 100};
    char err[256];
    int r = vnc_start(&o, s, err, sizeof(err));
    if (r) print_error("vnc_start: %s\n", err);
    return r;
}

static int port_of(struct vnc_server *s) { return atoi(strrchr(vnc_address(s), ':') + 1); }

static int setup(void **state)
{
    (void)state;
    pthread_mutex_init(&screen.lock, NULL);
    char err[256];
    if (font_load(&font, VMD_DEFAULT_FONT, err, sizeof(err))) {
        print_error("%s\n", err);
        return -1;
    }
    return 0;
}

static void test_text_reaches_viewer(void **state)
{
    (void)state;
    struct vnc_server *s;
    assert_int_equal(start(&s, NULL), 0);
    assert_non_null(strstr(vnc_address(s), "127.0.0.1:"));
    put_text(&screen, 3, 5, "Hello from vmd 42", 0x1f);
    struct vnc_probe p;
    assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), NULL), 0);
    vnc_probe_pump(&p, 500);
    char row[81];
    vnc_probe_row(&p, &font, 3, row);
    assert_memory_equal(row + 5, "Hello from vmd 42", 17);
    /* A later change arrives as an update. */
    put_text(&screen, 10, 0, "second line", 0x07);
    vnc_probe_pump(&p, 500);
    assert_true(vnc_probe_screen_has(&p, &font, "second line"));
    assert_int_equal(vnc_client_count(s), 1);
    vnc_probe_close(&p);
    vnc_stop(s);
}

static void test_keys_become_scancodes(void **state)
{
    (void)state;
    struct vnc_server *s;
    assert_int_equal(start(&s, NULL), 0);
    struct vnc_probe p;
    assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), NULL), 0);
    vnc_probe_type(&p, "aZ\n");
    vnc_probe_pump(&p, 300);
    const uint8_t want[] = {0x1E, 0x9E, 0x2A, 0x2C, 0xAC, 0xAA, 0x1C, 0x9C};
    pthread_mutex_lock(&screen.lock);
    assert_int_equal(screen.nkeys, sizeof(want));
    assert_memory_equal(screen.keys, want, sizeof(want));
    pthread_mutex_unlock(&screen.lock);
    vnc_probe_close(&p);
    vnc_stop(s);
}

static void test_password(void **state)
{
    (void)state;
    char path[] = "/tmp/vmd-vncpw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "s3cret\n", 7) == 7);
    close(fd);
    struct vnc_server *s;
    assert_int_equal(start(&s, path), 0);
    struct vnc_probe p;
    assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), "wrong"), -1);
    assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), "s3cret"), 0);
    vnc_probe_close(&p);
    vnc_stop(s);
    unlink(path);
}

static void test_reconnects_and_garbage(void **state)
{
    (void)state;
    struct vnc_server *s;
    assert_int_equal(start(&s, NULL), 0);
    for (int i = 0; i < 30; i++) {
        struct vnc_probe p;
        assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), NULL), 0);
        vnc_probe_close(&p);
    }
    /* Clients that send garbage instead of the RFB handshake. */
    srand(7);
    for (int i = 0; i < 20; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(s))};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        char junk[512];
        for (size_t j = 0; j < sizeof(junk); j++) junk[j] = (char)rand();
        ssize_t w = write(fd, junk, (size_t)(rand() % (int)sizeof(junk)) + 1);
        (void)w;
        close(fd);
    }
    /* Still serving. */
    put_text(&screen, 0, 0, "still here", 0x07);
    struct vnc_probe p;
    assert_int_equal(vnc_probe_connect(&p, "127.0.0.1", port_of(s), NULL), 0);
    vnc_probe_pump(&p, 500);
    assert_true(vnc_probe_screen_has(&p, &font, "still here"));
    vnc_probe_close(&p);
    vnc_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_reaches_viewer),
        cmocka_unit_test(test_keys_become_scancodes),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_reconnects_and_garbage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
