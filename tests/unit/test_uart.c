/* Unit tests for devices/uart: the 16550A as Linux's 8250 driver drives it on COM1. */
#include "tests/unit/device_test_machine.h"

#include <linux/serial_reg.h>

#include "devices/uart.h"

#define COM1 0x3F8
#define IRQ4 4

static int setup(void **state)
{
    static struct device_test_machine t; /* one test at a time; cmocka runs them serially */
    dtm_setup(&t, 1 << 20, &dtm_backend, &uart_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &uart_device);
    return 0;
}

static void test_registers_com1_and_console_input(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.com1);
    assert_ptr_equal(t->m.console_in_dev, t->m.com1);
    /* COM2 is absent: reads float high, which Linux takes as "no UART". */
    assert_int_equal(dtm_inb(t, 0x2F8 + UART_LSR), 0xFF);
}

static void test_divisor_latch(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_IER, 0x05);
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    dtm_outb(t, COM1 + UART_DLL, 0x01); /* 115200 baud */
    dtm_outb(t, COM1 + UART_DLM, 0x00);
    assert_int_equal(dtm_inb(t, COM1 + UART_DLL), 0x01);
    assert_int_equal(dtm_inb(t, COM1 + UART_DLM), 0x00);
    /* With DLAB set, offset 0 is the divisor: nothing was transmitted. */
    assert_int_equal(t->console_len, 0);
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_WLEN8);
    assert_int_equal(dtm_inb(t, COM1 + UART_LCR), UART_LCR_WLEN8);
    assert_int_equal(dtm_inb(t, COM1 + UART_IER), 0x05); /* IER was not overwritten by DLM */
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_DLAB);
    assert_int_equal(dtm_inb(t, COM1 + UART_DLL), 0x01);
}

static void test_transmit_reaches_console(void **state)
{
    struct device_test_machine *t = *state;
    const char *msg = "Linux version";
    for (const char *p = msg; *p; p++) {
        assert_true(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_THRE);
        dtm_outb(t, COM1 + UART_TX, (uint8_t)*p);
    }
    assert_int_equal(t->console_len, strlen(msg));
    assert_memory_equal(t->console, msg, strlen(msg));
    uint8_t lsr = dtm_inb(t, COM1 + UART_LSR);
    assert_true(lsr & UART_LSR_THRE);
    assert_true(lsr & UART_LSR_TEMT);
    assert_false(lsr & UART_LSR_DR);
    assert_int_equal(t->irq_level[IRQ4], 0); /* no interrupt enabled */
}

static void test_thre_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & UART_IIR_NO_INT, UART_IIR_NO_INT);
    /* Enabling THRI with an empty transmitter raises the interrupt at once. */
    dtm_outb(t, COM1 + UART_IER, UART_IER_THRI);
    assert_int_equal(t->irq_level[IRQ4], 1);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & UART_IIR_ID, UART_IIR_THRI);
    /* Reading IIR acknowledged it. */
    assert_int_equal(t->irq_level[IRQ4], 0);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR), UART_IIR_NO_INT);
    /* Each transmitted byte empties THR again: the interrupt comes back. */
    dtm_outb(t, COM1 + UART_TX, 'x');
    assert_int_equal(t->irq_level[IRQ4], 1);
    /* Re-writing IER with THRI re-raises it, as the 8250 driver's start_tx expects. */
    (void)dtm_inb(t, COM1 + UART_IIR);
    assert_int_equal(t->irq_level[IRQ4], 0);
    dtm_outb(t, COM1 + UART_IER, 0);
    dtm_outb(t, COM1 + UART_IER, UART_IER_THRI);
    assert_int_equal(t->irq_level[IRQ4], 1);
    /* Disabling THRI drops the line. */
    dtm_outb(t, COM1 + UART_IER, 0);
    assert_int_equal(t->irq_level[IRQ4], 0);
}

static void test_fifo_bits_in_iir(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & 0xC0, 0);
    dtm_outb(t, COM1 + UART_FCR, UART_FCR_ENABLE_FIFO);
    /* Linux's autoconfig identifies a 16550A by IIR bits 7:6 = 11. */
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) >> 6, 3);
    dtm_outb(t, COM1 + UART_FCR, 0);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) >> 6, 0);
}

static void test_receive_through_console_input(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_FCR, UART_FCR_ENABLE_FIFO);
    machine_console_input(&t->m, (const uint8_t *)"ls\n", 3);
    assert_int_equal(t->irq_level[IRQ4], 0); /* RDI not enabled */
    assert_true(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_DR);
    dtm_outb(t, COM1 + UART_IER, UART_IER_RDI | UART_IER_THRI);
    assert_int_equal(t->irq_level[IRQ4], 1);
    /* Received data outranks THR empty. */
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR), 0xC0 | UART_IIR_RDI);
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), 'l');
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), 's');
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), '\n');
    assert_false(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_DR);
    /* Now THR empty shows (reading IIR twice: the second read shows none). */
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR), 0xC0 | UART_IIR_THRI);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR), 0xC0 | UART_IIR_NO_INT);
    assert_int_equal(t->irq_level[IRQ4], 0);
}

static void test_overrun_and_line_status_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    static uint8_t big[UART_RX_FIFO_SIZE + 10];
    memset(big, 'a', sizeof(big));
    big[0] = 'Z';
    dtm_outb(t, COM1 + UART_IER, UART_IER_RLSI | UART_IER_RDI);
    machine_console_input(&t->m, big, sizeof(big));
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & UART_IIR_ID, UART_IIR_RLSI);
    uint8_t lsr = dtm_inb(t, COM1 + UART_LSR);
    assert_true(lsr & UART_LSR_OE);
    assert_true(lsr & UART_LSR_DR);
    /* OE clears on read; data remains. */
    assert_false(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_OE);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & UART_IIR_ID, UART_IIR_RDI);
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), 'Z');
    size_t n = 1;
    while (dtm_inb(t, COM1 + UART_LSR) & UART_LSR_DR) {
        assert_int_equal(dtm_inb(t, COM1 + UART_RX), 'a');
        n++;
    }
    assert_int_equal(n, UART_RX_FIFO_SIZE);
    assert_int_equal(t->irq_level[IRQ4], 0);
}

static void test_fcr_clears_receiver(void **state)
{
    struct device_test_machine *t = *state;
    machine_console_input(&t->m, (const uint8_t *)"abc", 3);
    dtm_outb(t, COM1 + UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    assert_false(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_DR);
}

static void test_loopback(void **state)
{
    struct device_test_machine *t = *state;
    /* Linux's 8250 autoconfig: loopback with OUT2|RTS must read back DCD|CTS in MSR. */
    dtm_outb(t, COM1 + UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    assert_int_equal(dtm_inb(t, COM1 + UART_MSR) & 0xF0, UART_MSR_DCD | UART_MSR_CTS);
    dtm_outb(t, COM1 + UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
    uint8_t msr = dtm_inb(t, COM1 + UART_MSR);
    assert_int_equal(msr & 0xF0, UART_MSR_DSR | UART_MSR_RI);
    assert_true(msr & UART_MSR_DDCD);
    assert_true(msr & UART_MSR_DCTS);
    assert_int_equal(dtm_inb(t, COM1 + UART_MSR) & UART_MSR_ANY_DELTA, 0); /* deltas clear on read */
    /* Transmitted bytes come back on the receiver instead of the console. */
    dtm_outb(t, COM1 + UART_TX, 0x5A);
    assert_int_equal(t->console_len, 0);
    assert_true(dtm_inb(t, COM1 + UART_LSR) & UART_LSR_DR);
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), 0x5A);
    dtm_outb(t, COM1 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    dtm_outb(t, COM1 + UART_TX, 'k');
    assert_int_equal(t->console_len, 1);
    assert_int_equal(t->console[0], 'k');
}

static void test_scratch_and_ier_width(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_SCR, 0xA5);
    assert_int_equal(dtm_inb(t, COM1 + UART_SCR), 0xA5);
    dtm_outb(t, COM1 + UART_IER, 0xFF);
    assert_int_equal(dtm_inb(t, COM1 + UART_IER), 0x0F);
}

static void test_modem_status_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_IER, UART_IER_MSI);
    assert_int_equal(t->irq_level[IRQ4], 0);
    dtm_outb(t, COM1 + UART_MCR, UART_MCR_LOOP); /* CTS/DSR/DCD drop: deltas */
    assert_int_equal(t->irq_level[IRQ4], 1);
    assert_int_equal(dtm_inb(t, COM1 + UART_IIR) & UART_IIR_ID, UART_IIR_MSI);
    (void)dtm_inb(t, COM1 + UART_MSR);
    assert_int_equal(t->irq_level[IRQ4], 0);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    dtm_outb(t, COM1 + UART_DLL, 0x01);
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_WLEN8);
    dtm_outb(t, COM1 + UART_FCR, UART_FCR_ENABLE_FIFO);
    dtm_outb(t, COM1 + UART_IER, UART_IER_RDI);
    dtm_outb(t, COM1 + UART_SCR, 0x77);
    machine_console_input(&t->m, (const uint8_t *)"xyz", 3);
    assert_int_equal(dtm_inb(t, COM1 + UART_RX), 'x');
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &uart_device);
    dtm_snapshot_copy(t, u, &uart_device);
    assert_int_equal(u->irq_level[IRQ4], 1); /* pending received data re-drives IRQ 4 */
    assert_int_equal(dtm_inb(u, COM1 + UART_IIR), 0xC0 | UART_IIR_RDI);
    assert_int_equal(dtm_inb(u, COM1 + UART_RX), 'y');
    assert_int_equal(dtm_inb(u, COM1 + UART_RX), 'z');
    assert_false(dtm_inb(u, COM1 + UART_LSR) & UART_LSR_DR);
    assert_int_equal(dtm_inb(u, COM1 + UART_SCR), 0x77);
    dtm_outb(u, COM1 + UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    assert_int_equal(dtm_inb(u, COM1 + UART_DLL), 0x01);
    dtm_teardown(u, &uart_device);
    free(u);
}

/* serial8250_startup's THRE probe: Linux flags UART_BUG_THRE if re-enabling THRI does not
 * raise the interrupt again. */
static void test_linux_thre_probe_sees_no_bug(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, COM1 + UART_LCR, UART_LCR_WLEN8);
    dtm_outb(t, COM1 + UART_IER, UART_IER_THRI);
    uint8_t lsr = dtm_inb(t, COM1 + UART_LSR);
    uint8_t iir1 = dtm_inb(t, COM1 + UART_IIR);
    dtm_outb(t, COM1 + UART_IER, 0);
    dtm_outb(t, COM1 + UART_IER, UART_IER_THRI);
    uint8_t iir = dtm_inb(t, COM1 + UART_IIR);
    dtm_outb(t, COM1 + UART_IER, 0);
    assert_true(lsr & UART_LSR_TEMT);
    assert_false(iir1 & UART_IIR_NO_INT);
    assert_false(iir & UART_IIR_NO_INT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers_com1_and_console_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_reaches_console, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_bits_in_iir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_through_console_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrun_and_line_status_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fcr_clears_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_and_ier_width, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modem_status_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_thre_probe_sees_no_bug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
