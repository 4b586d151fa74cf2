/* Unit tests for vmm/bus: registration, overlap rejection, dispatch, unclaimed accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "vmm/bus.h"

struct fake_dev {
    uint64_t last_offset, last_data;
    unsigned last_size, writes, reads;
};

static void fake_handler(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct fake_dev *d = opaque;
    d->last_offset = offset;
    d->last_size = size;
    if (is_write) {
        d->last_data = *data;
        d->writes++;
    } else {
        *data = 0xA0 + offset;
        d->reads++;
    }
}

static void test_dispatch_to_owner_with_offset(void **state)
{
    (void)state;
    struct bus b;
    struct fake_dev a = {0}, c = {0};
    bus_init(&b);
    assert_int_equal(bus_register(&b, 0x3f8, 8, fake_handler, &a, "com1"), 0);
    assert_int_equal(bus_register(&b, 0x60, 1, fake_handler, &c, "kbd"), 0);
    uint64_t v = 0x41;
    assert_true(bus_access(&b, 0x3f8, &v, 1, true));
    assert_int_equal(a.writes, 1);
    assert_int_equal(a.last_data, 0x41);
    assert_true(bus_access(&b, 0x3fd, &v, 1, false));
    assert_int_equal(a.last_offset, 5);
    assert_int_equal(v, 0xA5);
    assert_true(bus_access(&b, 0x60, &v, 1, false));
    assert_int_equal(c.reads, 1);
    bus_free(&b);
}

static void test_overlap_rejected(void **state)
{
    (void)state;
    struct bus b;
    struct fake_dev a = {0};
    bus_init(&b);
    assert_int_equal(bus_register(&b, 0x100, 0x10, fake_handler, &a, "a"), 0);
    assert_int_equal(bus_register(&b, 0x10f, 1, fake_handler, &a, "b"), -EEXIST);
    assert_int_equal(bus_register(&b, 0xf8, 0x9, fake_handler, &a, "c"), -EEXIST);
    assert_int_equal(bus_register(&b, 0xf0, 0x10, fake_handler, &a, "d"), 0);
    assert_int_equal(bus_register(&b, 0x110, 0x10, fake_handler, &a, "e"), 0);
    assert_int_equal(bus_register(&b, 0x200, 0, fake_handler, &a, "zero"), -EINVAL);
    assert_int_equal(bus_register(&b, UINT64_MAX, 2, fake_handler, &a, "wrap"), -EINVAL);
    bus_free(&b);
}

static void test_unclaimed_reads_all_ones(void **state)
{
    (void)state;
    struct bus b;
    bus_init(&b);
    uint64_t v = 0;
    assert_false(bus_access(&b, 0x80, &v, 1, false));
    assert_int_equal(v, 0xff);
    assert_false(bus_access(&b, 0x80, &v, 2, false));
    assert_int_equal(v, 0xffff);
    assert_false(bus_access(&b, 0x80, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    v = 5;
    assert_false(bus_access(&b, 0x80, &v, 1, true));
    bus_free(&b);
}

static void test_many_ranges_binary_search(void **state)
{
    (void)state;
    struct bus b;
    struct fake_dev devs[100] = {0};
    bus_init(&b);
    for (int i = 99; i >= 0; i--)
        assert_int_equal(bus_register(&b, 0x1000 + (uint64_t)i * 0x10, 8, fake_handler, &devs[i], "d"), 0);
    for (int i = 0; i < 100; i++) {
        const struct bus_range *r = bus_find(&b, 0x1000 + (uint64_t)i * 0x10 + 7);
        assert_non_null(r);
        assert_ptr_equal(r->opaque, &devs[i]);
        assert_null(bus_find(&b, 0x1000 + (uint64_t)i * 0x10 + 8));
    }
    assert_int_equal(bus_unregister(&b, 0x1000), 0);
    assert_null(bus_find(&b, 0x1000));
    assert_int_equal(bus_unregister(&b, 0x1000), -ENOENT);
    bus_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_to_owner_with_offset),
        cmocka_unit_test(test_overlap_rejected),
        cmocka_unit_test(test_unclaimed_reads_all_ones),
        cmocka_unit_test(test_many_ranges_binary_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
