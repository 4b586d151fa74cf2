/* Unit tests for devices/fw_cfg as firmware reads it: the signature and interface ID through
 * the selector/data ports, the file directory and a file found by name (etc/e820 describing
 * RAM), reads past an item's end, refused writes, DMA reads (with select, skip, partial and
 * out-of-RAM targets), and a snapshot round trip of the read position. */
#include "tests/unit/device_test_machine.h"

#include <errno.h>

#include "devices/fw_cfg.h"

#define MEM (2u << 20)

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, MEM, &dtm_backend, &fw_cfg_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &fw_cfg_device);
    return 0;
}

static void sel(struct device_test_machine *t, uint16_t key) { dtm_out(t, FW_CFG_PORT_SEL, key, 2); }

static void read_bytes(struct device_test_machine *t, void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) p[i] = dtm_inb(t, FW_CFG_PORT_DATA);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* The selector of the file called name, from the directory, and its size. */
static int find_file(struct device_test_machine *t, const char *name, uint32_t *size)
{
    sel(t, FW_CFG_FILE_DIR);
    uint8_t cnt[4];
    read_bytes(t, cnt, 4);
    for (uint32_t i = 0; i < be32(cnt); i++) {
        uint8_t e[64];
        read_bytes(t, e, 64);
        if (!strncmp((char *)e + 8, name, 56)) {
            *size = be32(e);
            return e[4] << 8 | e[5];
        }
    }
    return -1;
}

static void test_signature_and_id(void **state)
{
    struct device_test_machine *t = *state;
    char sig[5] = {0};
    sel(t, FW_CFG_SIGNATURE);
    read_bytes(t, sig, 4);
    assert_string_equal(sig, "QEMU");
    sel(t, FW_CFG_ID);
    assert_int_equal(dtm_in(t, FW_CFG_PORT_DATA, 4), FW_CFG_VERSION | FW_CFG_VERSION_DMA);
    /* past the end: zeros; selecting again rewinds */
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 0);
    sel(t, FW_CFG_SIGNATURE);
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 'Q');
    sel(t, FW_CFG_RAM_SIZE);
    uint64_t ram;
    read_bytes(t, &ram, 8);
    assert_int_equal(ram, MEM);
    /* an unknown key and an arch-specific one read as zeros; a write key is refused */
    sel(t, 0x1234);
    assert_int_equal(dtm_in(t, FW_CFG_PORT_DATA, 4), 0);
    sel(t, 0x8003);
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 0);
    sel(t, 0x8000 | 0x3fff);
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 0);
    sel(t, FW_CFG_IRQ0_OVERRIDE); /* the test machine has no APICs */
    assert_int_equal(dtm_in(t, FW_CFG_PORT_DATA, 4), 0);
    sel(t, 0x4000 | FW_CFG_SIGNATURE);
    dtm_outb(t, FW_CFG_PORT_DATA, 'X');
    sel(t, FW_CFG_SIGNATURE);
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 'Q');
}

static void test_e820_file(void **state)
{
    struct device_test_machine *t = *state;
    uint32_t size = 0;
    int key = find_file(t, "etc/e820", &size);
    assert_true(key >= FW_CFG_FILE_FIRST);
    assert_int_equal(size, 20); /* one RAM region: 2 MiB from 0 */
    uint8_t e[20];
    sel(t, (uint16_t)key);
    read_bytes(t, e, 20);
    uint64_t addr, len;
    uint32_t type;
    memcpy(&addr, e, 8), memcpy(&len, e + 8, 8), memcpy(&type, e + 16, 4);
    assert_int_equal(addr, 0);
    assert_int_equal(len, MEM);
    assert_int_equal(type, 1);
    assert_true(find_file(t, "bootorder", &size) >= FW_CFG_FILE_FIRST);
    key = find_file(t, "etc/sercon-port", &size);
    assert_int_equal(size, 2);
    sel(t, (uint16_t)key);
    assert_int_equal(dtm_in(t, FW_CFG_PORT_DATA, 2), 0x3f8);
    assert_int_equal(find_file(t, "no/such/file", &size), -1);
}

static void test_add_file_replaces_and_refuses_bad_names(void **state)
{
    struct device_test_machine *t = *state;
    struct fw_cfg *f = fw_cfg_of(&t->m);
    assert_non_null(f);
    assert_int_equal(fw_cfg_add_file(f, "etc/test", "abc", 3), 0);
    assert_int_equal(fw_cfg_add_file(f, "etc/test", "hello", 5), 0);
    uint32_t size;
    int key = find_file(t, "etc/test", &size);
    assert_int_equal(size, 5);
    char buf[6] = {0};
    sel(t, (uint16_t)key);
    read_bytes(t, buf, 5);
    assert_string_equal(buf, "hello");
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[79] = 0;
    assert_int_equal(fw_cfg_add_file(f, longname, "x", 1), -EINVAL);
    assert_int_equal(fw_cfg_add_file(f, "", "x", 1), -EINVAL);
}

/* Write a FWCfgDmaAccess at gpa and start it; returns the control word the device left. */
static uint32_t dma(struct device_test_machine *t, uint64_t gpa, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t req[16];
    for (int i = 0; i < 4; i++) req[i] = (uint8_t)(control >> (24 - 8 * i)), req[4 + i] = (uint8_t)(len >> (24 - 8 * i));
    for (int i = 0; i < 8; i++) req[8 + i] = (uint8_t)(addr >> (56 - 8 * i));
    assert_int_equal(guest_mem_write(&t->m.mem, gpa, req, 16), 0);
    dtm_out(t, FW_CFG_PORT_DMA, __builtin_bswap32((uint32_t)(gpa >> 32)), 4);
    dtm_out(t, FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)gpa), 4);
    uint8_t st[4];
    assert_int_equal(guest_mem_read(&t->m.mem, gpa, st, 4), 0);
    return be32(st);
}

static void test_dma(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t buf[8];
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(guest_mem_write(&t->m.mem, 0x2000, buf, sizeof(buf)), 0);
    /* select + read 8 bytes of the 4-byte signature: the rest is zero-filled */
    assert_int_equal(dma(t, 0x1000, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 8, 0x2000), 0);
    assert_int_equal(guest_mem_read(&t->m.mem, 0x2000, buf, 8), 0);
    assert_memory_equal(buf, "QEMU\0\0\0\0", 8);
    /* skip 2 bytes then read 2 */
    assert_int_equal(dma(t, 0x1000, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP, 2, 0), 0);
    assert_int_equal(dma(t, 0x1000, FW_CFG_DMA_READ, 2, 0x3000), 0);
    assert_int_equal(guest_mem_read(&t->m.mem, 0x3000, buf, 2), 0);
    assert_memory_equal(buf, "MU", 2);
    /* a target outside RAM, one straddling its end, and a write: error bit, nothing written */
    assert_int_equal(dma(t, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0xfffff000ULL), FW_CFG_DMA_ERROR);
    assert_int_equal(dma(t, 0x1000, FW_CFG_DMA_READ, 16, MEM - 8), FW_CFG_DMA_ERROR);
    assert_int_equal(dma(t, 0x1000, FW_CFG_DMA_WRITE, 4, 0x2000), FW_CFG_DMA_ERROR);
    /* a request block outside RAM is ignored */
    dtm_out(t, FW_CFG_PORT_DMA, 0, 4);
    dtm_out(t, FW_CFG_PORT_DMA + 4, __builtin_bswap32(0xfffffff8u), 4);
    /* the signature register */
    assert_int_equal(__builtin_bswap32((uint32_t)dtm_in(t, FW_CFG_PORT_DMA, 4)), 0x51454d55);
}

static void test_snapshot_keeps_position(void **state)
{
    struct device_test_machine *t = *state;
    sel(t, FW_CFG_SIGNATURE);
    assert_int_equal(dtm_inb(t, FW_CFG_PORT_DATA), 'Q');
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, MEM, &dtm_backend, &fw_cfg_device);
    dtm_snapshot_copy(t, u, &fw_cfg_device);
    assert_int_equal(dtm_inb(u, FW_CFG_PORT_DATA), 'E');
    dtm_teardown(u, &fw_cfg_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_e820_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_file_replaces_and_refuses_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_keeps_position, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
