/* Unit tests for devices/pic: the i8259A pair as Linux's init_8259A and the emu backend use it. */
#include "tests/unit/device_test_machine.h"

#include "devices/pic.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &pic_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &pic_device);
    return 0;
}

static void eoi(struct device_test_machine *t, bool slave)
{
    if (slave) dtm_outb(t, 0xA0, 0x20);
    dtm_outb(t, 0x20, 0x20);
}

static void test_masked_until_programmed_and_init_sequence(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.pic);
    dtm_pic_line(t, 0, 1);
    dtm_pic_line(t, 0, 0);
    assert_false(pic_has_irq(t->m.pic)); /* all masked at power-on */
    dtm_pic_init_linux(t, false);
    assert_int_equal(dtm_inb(t, 0x21), 0x00);
    /* ICW1 reset the edge latch: the pre-init pulse is gone. */
    assert_false(pic_has_irq(t->m.pic));
    dtm_pic_line(t, 0, 1);
    dtm_pic_line(t, 0, 0);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x30);
    assert_false(pic_has_irq(t->m.pic));
    /* OCW3 read ISR */
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x01);
    eoi(t, false);
    assert_int_equal(dtm_inb(t, 0x20), 0x00);
    dtm_outb(t, 0x20, 0x0A); /* back to IRR */
}

static void test_masking(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x21, 0x02); /* mask IRQ1 */
    assert_int_equal(dtm_inb(t, 0x21), 0x02);
    dtm_pic_line(t, 1, 1);
    dtm_pic_line(t, 1, 0);
    assert_false(pic_has_irq(t->m.pic));
    dtm_outb(t, 0x20, 0x0A);
    assert_int_equal(dtm_inb(t, 0x20), 0x02); /* latched in IRR while masked */
    dtm_outb(t, 0x21, 0x00);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x31);
    eoi(t, false);
    assert_int_equal(dtm_pic_ack(t), -1); /* nothing left */
}

static void test_priority_and_nesting(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_pic_line(t, 4, 1);
    dtm_pic_line(t, 1, 1);
    assert_int_equal(dtm_pic_ack(t), 0x31); /* IRQ1 outranks IRQ4 */
    assert_false(pic_has_irq(t->m.pic)); /* IRQ4 waits behind IRQ1 in service */
    dtm_pic_line(t, 0, 1);
    assert_true(pic_has_irq(t->m.pic)); /* IRQ0 preempts IRQ1 */
    assert_int_equal(dtm_pic_ack(t), 0x30);
    eoi(t, false); /* non-specific EOI ends IRQ0 (highest in service) */
    assert_false(pic_has_irq(t->m.pic));
    eoi(t, false); /* ends IRQ1 */
    assert_int_equal(dtm_pic_ack(t), 0x34);
    eoi(t, false);
}

static void test_specific_eoi_and_rotation(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_pic_line(t, 3, 1);
    assert_int_equal(dtm_pic_ack(t), 0x33);
    dtm_outb(t, 0x20, 0x60 | 3); /* specific EOI for IRQ3 */
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x00);
    /* Rotate on specific EOI for IRQ3: IRQ4 becomes the highest priority. */
    dtm_pic_line(t, 3, 0);
    dtm_pic_line(t, 5, 1);
    assert_int_equal(dtm_pic_ack(t), 0x35);
    dtm_outb(t, 0x20, 0xE0 | 3);
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x20); /* IRQ5 still in service: only IRQ3 was named */
    dtm_outb(t, 0x20, 0x60 | 5);
    dtm_pic_line(t, 1, 1);
    dtm_pic_line(t, 6, 1);
    assert_int_equal(dtm_pic_ack(t), 0x36); /* 6 outranks 1 after the rotation */
    dtm_outb(t, 0x20, 0x60 | 6);
    assert_int_equal(dtm_pic_ack(t), 0x31);
    dtm_outb(t, 0x20, 0x60 | 1);
    /* Set priority: IRQ7 lowest again, IRQ0 highest. */
    dtm_outb(t, 0x20, 0xC7);
    dtm_pic_line(t, 6, 0);
    dtm_pic_line(t, 6, 1);
    dtm_pic_line(t, 2, 0);
    dtm_pic_line(t, 0, 1);
    assert_int_equal(dtm_pic_ack(t), 0x30);
}

static void test_cascade_through_irq2(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_pic_line(t, 12, 1);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x38 + 4);
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x04); /* master: IRQ2 in service */
    dtm_outb(t, 0xA0, 0x0B);
    assert_int_equal(dtm_inb(t, 0xA0), 0x10);
    /* A master IRQ3 is blocked by the cascade in service; IRQ1 is not. */
    dtm_pic_line(t, 3, 1);
    assert_false(pic_has_irq(t->m.pic));
    dtm_pic_line(t, 1, 1);
    assert_int_equal(dtm_pic_ack(t), 0x31);
    eoi(t, false);
    eoi(t, true);
    assert_int_equal(dtm_pic_ack(t), 0x33);
    eoi(t, false);
    /* Masking the slave line masks its IRQs. */
    dtm_outb(t, 0xA1, 0x01);
    dtm_pic_line(t, 8, 1);
    assert_false(pic_has_irq(t->m.pic));
    dtm_outb(t, 0xA1, 0x00);
    assert_int_equal(dtm_pic_ack(t), 0x38);
    eoi(t, true);
}

static void test_level_vs_edge(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    /* Edge IRQ4 held high: one interrupt only. */
    dtm_pic_line(t, 4, 1);
    assert_int_equal(dtm_pic_ack(t), 0x34);
    eoi(t, false);
    assert_false(pic_has_irq(t->m.pic));
    dtm_pic_line(t, 4, 0);
    /* IRQ9 and 11 level-triggered (as Linux sets ELCR for the ACPI SCI / PCI). */
    dtm_outb(t, 0x4D1, 0x0A);
    assert_int_equal(dtm_inb(t, 0x4D1), 0x0A);
    dtm_outb(t, 0x4D0, 0xFF);
    assert_int_equal(dtm_inb(t, 0x4D0), 0xF8); /* IRQ0-2 cannot be level */
    dtm_outb(t, 0x4D0, 0x00);
    dtm_pic_line(t, 9, 1);
    assert_int_equal(dtm_pic_ack(t), 0x39);
    eoi(t, true);
    eoi(t, false);
    /* Still high after EOI: it asks again. */
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x39);
    dtm_pic_line(t, 9, 0);
    eoi(t, true);
    eoi(t, false);
    assert_false(pic_has_irq(t->m.pic));
    /* A level request that goes away before INTA leaves no trace on the slave. */
    dtm_pic_line(t, 11, 1);
    dtm_pic_line(t, 11, 0);
    dtm_outb(t, 0xA0, 0x0A);
    assert_int_equal(dtm_inb(t, 0xA0), 0x00);
}

static void test_spurious_irq15(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    /* The slave's request reaches the master (edge latched on IRQ2) and is then masked. */
    dtm_pic_line(t, 10, 1);
    dtm_outb(t, 0xA1, 0x04);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x38 + 7); /* spurious IRQ15: slave ISR untouched */
    dtm_outb(t, 0xA0, 0x0B);
    assert_int_equal(dtm_inb(t, 0xA0), 0x00);
    eoi(t, false);
}

static void test_auto_eoi(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, true);
    dtm_pic_line(t, 5, 1);
    assert_int_equal(dtm_pic_ack(t), 0x35);
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x00); /* nothing left in service */
    dtm_pic_line(t, 6, 1);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x36);
}

static void test_poll_mode(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x20, 0x0C); /* OCW3 poll */
    assert_int_equal(dtm_inb(t, 0x20), 0x00);
    dtm_pic_line(t, 3, 1);
    dtm_outb(t, 0x20, 0x0C);
    assert_int_equal(dtm_inb(t, 0x20), 0x83);
    dtm_outb(t, 0x20, 0x0B);
    assert_int_equal(dtm_inb(t, 0x20), 0x08); /* the poll acknowledged IRQ3 */
}

static void test_special_mask_mode(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_pic_line(t, 1, 1);
    assert_int_equal(dtm_pic_ack(t), 0x31);
    dtm_pic_line(t, 5, 1);
    assert_false(pic_has_irq(t->m.pic));
    /* The handler masks its own level and enters special mask mode: IRQ5 may now nest. */
    dtm_outb(t, 0x21, 0x02);
    dtm_outb(t, 0x20, 0x68);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x35);
    dtm_outb(t, 0x20, 0x48); /* leave special mask mode */
}

static void test_absent_with_kernel_irqchip(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 1 << 20, &dtm_backend_irqchip, &pic_device);
    assert_null(t->m.pic);
    assert_int_equal(dtm_inb(t, 0x21), 0xFF);
    dtm_teardown(t, &pic_device);
    free(t);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x4D1, 0x02); /* IRQ9 level */
    dtm_outb(t, 0x21, 0x40);
    dtm_pic_line(t, 3, 1);
    assert_int_equal(dtm_pic_ack(t), 0x33); /* IRQ3 in service */
    dtm_pic_line(t, 5, 1);             /* waiting behind it */
    dtm_pic_line(t, 6, 1);             /* masked */
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &pic_device);
    dtm_pic_copy(t, u);
    assert_int_equal(dtm_inb(u, 0x21), 0x40);
    assert_int_equal(dtm_inb(u, 0x4D1), 0x02);
    dtm_outb(u, 0x20, 0x0B);
    assert_int_equal(dtm_inb(u, 0x20), 0x08);
    assert_false(pic_has_irq(u->m.pic));
    eoi(u, false);
    assert_int_equal(dtm_pic_ack(u), 0x35);
    eoi(u, false);
    assert_int_equal(dtm_pic_ack(u), -1);
    dtm_teardown(u, &pic_device);
    free(u);
}

static void test_special_fully_nested_mode(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x20, 0x11);
    dtm_outb(t, 0x21, 0x30);
    dtm_outb(t, 0x21, 0x04);
    dtm_outb(t, 0x21, 0x11); /* ICW4: SFNM */
    dtm_outb(t, 0x21, 0x00);
    dtm_pic_line(t, 12, 1);
    assert_int_equal(dtm_pic_ack(t), 0x3C);
    /* A higher-priority slave request nests although the cascade is in service. */
    dtm_pic_line(t, 9, 1);
    assert_true(pic_has_irq(t->m.pic));
    assert_int_equal(dtm_pic_ack(t), 0x39);
    /* Without SFNM it would wait: re-init plain and repeat. */
    dtm_pic_init_linux(t, false);
    dtm_pic_line(t, 12, 0);
    dtm_pic_line(t, 9, 0);
    dtm_pic_line(t, 12, 1);
    assert_int_equal(dtm_pic_ack(t), 0x3C);
    dtm_pic_line(t, 9, 1);
    assert_false(pic_has_irq(t->m.pic));
}

static void test_rotate_on_auto_eoi_and_single_mode(void **state)
{
    struct device_test_machine *t = *state;
    dtm_pic_init_linux(t, true);
    dtm_outb(t, 0x20, 0x80); /* OCW2: rotate in auto-EOI mode, set */
    dtm_pic_line(t, 2, 0);
    dtm_pic_line(t, 1, 1);
    dtm_pic_line(t, 4, 1);
    assert_int_equal(dtm_pic_ack(t), 0x31); /* IRQ1 becomes lowest: 2..7 0 1 */
    dtm_pic_line(t, 0, 1);
    assert_int_equal(dtm_pic_ack(t), 0x34);
    assert_int_equal(dtm_pic_ack(t), 0x30);
    /* ICW1 with SNGL and no IC4: ICW2 completes the sequence, the next 0x21 write is OCW1. */
    dtm_outb(t, 0x20, 0x12);
    dtm_outb(t, 0x21, 0x48);
    dtm_outb(t, 0x21, 0x01); /* IRQ0 masked */
    assert_int_equal(dtm_inb(t, 0x21), 0x01);
    dtm_pic_line(t, 0, 0);
    dtm_pic_line(t, 0, 1);
    assert_false(pic_has_irq(t->m.pic));
    dtm_outb(t, 0x21, 0x00);
    assert_int_equal(dtm_pic_ack(t), 0x48);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_masked_until_programmed_and_init_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_specific_eoi_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cascade_through_irq2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_vs_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious_irq15, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_mask_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_fully_nested_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_on_auto_eoi_and_single_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test(test_absent_with_kernel_irqchip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
