/* acpi_pm: the ACPI fixed-hardware power management registers the boot helper's FADT
 * points at (SCI on ISA IRQ 9, level, active high):
 *   0x600 PM1a_STS (16-bit, write-1-to-clear: TMR_STS bit 0, PWRBTN_STS bit 8, WAK_STS bit 15)
 *   0x602 PM1a_EN  (16-bit)
 *   0x604 PM1a_CNT (16-bit: SCI_EN bit 0 always reads 1, SLP_TYP bits 10-12, SLP_EN bit 13;
 *                   SLP_EN with SLP_TYP 5 (S5) powers the machine off)
 *   0x608 PM_TMR   (32-bit free-running 3.579545 MHz counter, derived from the clock)
 *   0x60C RESET_REG (byte; writing the FADT's RESET_VALUE 1 (any non-zero value) resets)
 */
#ifndef VMD_DEVICES_ACPI_PM_H
#define VMD_DEVICES_ACPI_PM_H

#include <stdint.h>

#include "vmm/device.h"

#define ACPI_PM_BASE 0x600
#define ACPI_PM_LEN 0x0D
#define ACPI_PM1_STS 0x600
#define ACPI_PM1_EN 0x602
#define ACPI_PM1_CNT 0x604
#define ACPI_PM_TMR 0x608
#define ACPI_RESET_REG 0x60C
#define ACPI_SCI_IRQ 9
#define ACPI_PM_TIMER_HZ 3579545ULL
#define ACPI_SLP_TYP_S5 5

#define ACPI_PM1_TMR_STS 0x0001
#define ACPI_PM1_PWRBTN_STS 0x0100
#define ACPI_PM1_WAK_STS 0x8000
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_EN 0x2000

struct machine;

struct acpi_pm {
    struct machine *m;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint32_t tmr_msb_seen; /* PM timer bit 31 when TMR_STS was last cleared */
    int sci_level;
    uint64_t timer_offset_ns; /* added to the clock (mod 2^64) so a restored timer continues */
    /* Time source; tests replace it to drive the PM timer deterministically. */
    uint64_t (*clock_ns)(void *opaque);
    void *clock_opaque;
};

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc acpi_pm_device;

/* Press the power button: sets PWRBTN_STS and raises the SCI if PWRBTN_EN is set
 * (Linux's ACPI button driver then runs an orderly power-off). Caller holds dev_lock. */
void acpi_pm_power_button(struct acpi_pm *p);

/* Current PM timer value (32 bits). */
uint32_t acpi_pm_timer(const struct acpi_pm *p);

#endif
