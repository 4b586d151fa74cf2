/* Unit tests for vmm/boot/multiboot.c: finding the header, the a.out kludge and ELF32 loading
 * rules, and the refusal (with a reason) of every malformed image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "vmm/boot/multiboot.h"

static uint8_t img[16384];
static char why[256];

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void header(uint8_t *p, uint32_t flags)
{
    put32(p, MULTIBOOT_HEADER_MAGIC);
    put32(p + 4, flags);
    put32(p + 8, (uint32_t)-(MULTIBOOT_HEADER_MAGIC + flags));
}

/* An a.out-kludge image of len bytes with its header at offset 16, loaded at 1 MiB. */
static void aout(size_t len, uint32_t load_end, uint32_t bss_end, uint32_t entry)
{
    memset(img, 0, sizeof(img));
    header(img + 16, MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_MEMORY_INFO);
    put32(img + 16 + 12, 0x100010); /* header_addr */
    put32(img + 16 + 16, 0x100000); /* load_addr */
    put32(img + 16 + 20, load_end);
    put32(img + 16 + 24, bss_end);
    put32(img + 16 + 28, entry);
    (void)len;
}

static int parse(size_t len, struct multiboot_image *mb)
{
    why[0] = 0;
    int r = multiboot_parse(img, len, mb, why, sizeof(why));
    if (r) assert_true(strlen(why) > 10); /* a reason, always */
    return r;
}

static void expect_refused(size_t len, const char *reason)
{
    struct multiboot_image mb;
    assert_int_equal(parse(len, &mb), -ENOEXEC);
    if (!strstr(why, reason)) fail_msg("reason '%s' lacks '%s'", why, reason);
}

static void test_find(void **state)
{
    (void)state;
    uint32_t off = 0;
    memset(img, 0, sizeof(img));
    assert_int_equal(multiboot_find(img, sizeof(img), &off, why, sizeof(why)), 0);
    header(img + 8192, 0); /* beyond the first 8 KiB */
    assert_int_equal(multiboot_find(img, sizeof(img), &off, why, sizeof(why)), 0);
    header(img + 40, 3);
    put32(img + 48, 0); /* bad checksum */
    assert_int_equal(multiboot_find(img, sizeof(img), &off, why, sizeof(why)), -ENOEXEC);
    assert_non_null(strstr(why, "offset 0x28: bad checksum"));
    header(img + 102, 3); /* not 4-byte aligned: not a header */
    assert_int_equal(multiboot_find(img, sizeof(img), &off, why, sizeof(why)), -ENOEXEC);
    header(img + 4000, 3);
    assert_int_equal(multiboot_find(img, sizeof(img), &off, why, sizeof(why)), 1);
    assert_int_equal(off, 4000);
    assert_int_equal(multiboot_find(img, 4008, &off, why, sizeof(why)), -ENOEXEC); /* cut: only the bad one */
}

static void test_aout(void **state)
{
    (void)state;
    struct multiboot_image mb;
    aout(4096, 0x100800, 0x102000, 0x100020);
    assert_int_equal(parse(4096, &mb), 0);
    assert_true(mb.aout_kludge);
    assert_int_equal(mb.nsegments, 1);
    assert_int_equal(mb.seg[0].file_offset, 0);
    assert_int_equal(mb.seg[0].file_size, 0x800);
    assert_int_equal(mb.seg[0].addr, 0x100000);
    assert_int_equal(mb.seg[0].mem_size, 0x2000);
    assert_int_equal(mb.entry, 0x100020);
    assert_int_equal(mb.low, 0x100000);
    assert_int_equal(mb.high, 0x102000);
    aout(4096, 0, 0, 0x100020); /* load_end 0: the whole file; bss_end 0: none */
    assert_int_equal(parse(4096, &mb), 0);
    assert_int_equal(mb.seg[0].file_size, 4096);
    assert_int_equal(mb.seg[0].mem_size, 4096);
}

static void test_aout_refused(void **state)
{
    (void)state;
    aout(4096, 0x100800, 0, 0x100020);
    put32(img + 16 + 16, 0x100020); /* load_addr above header_addr */
    expect_refused(4096, "load_addr 0x100020 is above header_addr 0x100010");
    aout(4096, 0x100800, 0, 0x100020);
    put32(img + 16 + 16, 0xF0000); /* the load would start before the file */
    expect_refused(4096, "header is at file offset 0x10");
    aout(4096, 0xF0000, 0, 0x100020);
    expect_refused(4096, "load_end_addr 0xf0000 is below load_addr 0x100000");
    aout(4096, 0x102000, 0, 0x100020);
    expect_refused(4096, "the file has 4096");
    aout(4096, 0x100800, 0x100400, 0x100020);
    expect_refused(4096, "bss_end_addr 0x100400 is below the end of the loaded data");
    aout(4096, 0x100800, 0, 0x200000);
    expect_refused(4096, "entry_addr 0x200000 is outside the loaded image");
    aout(4096, 0x100800, 0, 0x100020);
    expect_refused(40, "address fields run past the end of the file");
    aout(4096, 0x100800, 0, 0xFFFFF020); /* above 4 GiB */
    put32(img + 16 + 12, 0xFFFFF010);
    put32(img + 16 + 16, 0xFFFFF000);
    put32(img + 16 + 20, 0);
    put32(img + 16 + 24, 0xFFFFFFFF);
    struct multiboot_image mb;
    assert_int_equal(parse(4096, &mb), -ENOEXEC); /* 4096 bytes from 0xFFFFF000 exceed bss_end: refused somehow */
}

static void test_flags_refused(void **state)
{
    (void)state;
    aout(4096, 0x100800, 0, 0x100020);
    header(img + 16, MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_VIDEO_MODE);
    expect_refused(4096, "video mode (flags bit 2)");
    header(img + 16, MULTIBOOT_AOUT_KLUDGE | 0x20);
    expect_refused(4096, "unknown required flags 0x20");
}

/* An ELF32 image: header at 0, program headers at 52, the multiboot header at 0x100 (in the
 * first segment's file range), segments given by the caller. */
static void elf(unsigned nph, const uint32_t (*ph)[6], uint32_t entry)
{
    memset(img, 0, sizeof(img));
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 1;
    img[5] = 1;
    img[6] = 1;
    put16(img + 16, 2);
    put16(img + 18, 3);
    put32(img + 24, entry);
    put32(img + 28, 52);
    put16(img + 42, 32);
    put16(img + 44, (uint16_t)nph);
    for (unsigned i = 0; i < nph; i++) {
        uint8_t *p = img + 52 + 32 * i;
        put32(p, ph[i][0]);
        for (unsigned k = 1; k < 6; k++) put32(p + 4 * k, ph[i][k]);
    }
    header(img + 0x200, MULTIBOOT_MEMORY_INFO);
}

static void test_elf(void **state)
{
    (void)state;
    struct multiboot_image mb;
    /* type, offset, vaddr, paddr, filesz, memsz */
    const uint32_t ph[3][6] = {{1, 0x200, 0x100000, 0x100000, 0x400, 0x2000},
                               {4, 0, 0, 0, 0x10, 0x10}, /* PT_NOTE: skipped */
                               {1, 0x600, 0xC0200000, 0x200000, 0x100, 0x100}};
    elf(3, ph, 0x100010);
    assert_int_equal(parse(4096, &mb), 0);
    assert_false(mb.aout_kludge);
    assert_int_equal(mb.nsegments, 2);
    assert_int_equal(mb.seg[1].addr, 0x200000); /* loaded at the physical address */
    assert_int_equal(mb.entry, 0x100010);
    assert_int_equal(mb.high, 0x200100);
    elf(3, ph, 0xC0200010); /* a virtual entry: translated into its segment's physical place */
    assert_int_equal(parse(4096, &mb), 0);
    assert_int_equal(mb.entry, 0x200010);
}

static void test_elf_refused(void **state)
{
    (void)state;
    const uint32_t ok1[1][6] = {{1, 0x200, 0x100000, 0x100000, 0x400, 0x2000}};
    elf(1, ok1, 0x100010);
    img[4] = 2;
    expect_refused(4096, "64-bit ELF");
    elf(1, ok1, 0x100010);
    put16(img + 18, 62);
    expect_refused(4096, "ELF machine 62");
    elf(1, ok1, 0x100010);
    put16(img + 16, 3);
    expect_refused(4096, "ELF type 3");
    elf(1, ok1, 0x100010);
    put16(img + 44, 0);
    expect_refused(4096, "no program headers");
    elf(1, ok1, 0x100010);
    put32(img + 28, 4090);
    expect_refused(4096, "program headers (1 at 0xffa) run past the end");
    elf(1, ok1, 0x300000);
    expect_refused(4096, "entry 0x300000 is outside every loadable segment");
    const uint32_t big[1][6] = {{1, 0x200, 0x100000, 0x100000, 0x4000, 0x2000}};
    elf(1, big, 0x100010);
    expect_refused(4096, "file size 16384 exceeds memory size 8192");
    const uint32_t past[1][6] = {{1, 0x200, 0x100000, 0x100000, 0x1000, 0x2000}};
    elf(1, past, 0x100010);
    expect_refused(4096, "run past the end of the file");
    const uint32_t overlap[2][6] = {{1, 0x200, 0x100000, 0x100000, 0x400, 0x2000}, {1, 0x600, 0x101000, 0x101000, 0x100, 0x100}};
    elf(2, overlap, 0x100010);
    expect_refused(4096, "overlap");
    const uint32_t high[1][6] = {{1, 0x200, 0xFFFFF000, 0xFFFFF000, 0x400, 0x2000}};
    elf(1, high, 0xFFFFF010);
    expect_refused(4096, "ends above 4 GiB");
    const uint32_t none[1][6] = {{4, 0x200, 0x100000, 0x100000, 0x400, 0x2000}};
    elf(1, none, 0x100010);
    expect_refused(4096, "no loadable segment");
    memset(img, 0, sizeof(img));
    header(img + 8, 0); /* no a.out kludge, not an ELF file */
    expect_refused(4096, "not an ELF file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),         cmocka_unit_test(test_aout),        cmocka_unit_test(test_aout_refused),
        cmocka_unit_test(test_flags_refused), cmocka_unit_test(test_elf),        cmocka_unit_test(test_elf_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
