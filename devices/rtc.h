/* rtc: the MC146818 CMOS real-time clock and its 128 bytes of NVRAM (index port 0x70,
 * bit 7 = NMI mask; data port 0x71), ISA IRQ 8.
 *
 * The clock follows the host's wall clock (UTC) plus an offset the guest sets by writing
 * the time registers. Registers A-D behave as on the chip (UIP in the last 244 us of
 * each second, BCD or binary and 12/24-hour per register B, flags in C cleared on read,
 * VRT in D). Update-ended and alarm interrupts are delivered from a once-a-second timer
 * while enabled, the periodic interrupt from a timer at register A's rate while PIE is set
 * (PF is only tracked while PIE is set).
 * The memory-size bytes (0x15-0x18, 0x30/0x31, 0x34/0x35, 0x5B-0x5D) describe guest RAM.
 */
#ifndef VMD_DEVICES_RTC_H
#define VMD_DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/timer.h"

#define RTC_INDEX_PORT 0x70
#define RTC_DATA_PORT 0x71
#define RTC_IRQ 8
#define RTC_CMOS_SIZE 128

/* Register indexes */
#define RTC_REG_SECONDS 0x00
#define RTC_REG_SECONDS_ALARM 0x01
#define RTC_REG_MINUTES 0x02
#define RTC_REG_MINUTES_ALARM 0x03
#define RTC_REG_HOURS 0x04
#define RTC_REG_HOURS_ALARM 0x05
#define RTC_REG_DAY_OF_WEEK 0x06
#define RTC_REG_DAY_OF_MONTH 0x07
#define RTC_REG_MONTH 0x08
#define RTC_REG_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define RTC_REG_CENTURY 0x32

#define RTC_A_UIP 0x80
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80

struct machine;

struct rtc {
    struct machine *m;
    uint8_t index;     /* selected register, bits 0-6 of the last write to 0x70 */
    bool nmi_masked;   /* bit 7 of the last write to 0x70 */
    uint8_t cmos[RTC_CMOS_SIZE];
    int64_t offset_s;  /* guest time minus host wall time, in seconds */
    int irq_level;
    struct vm_timer update_timer; /* next second boundary, while UIE or AIE is set */
    struct vm_timer periodic_timer; /* periodic interrupt, while PIE is set */
    uint64_t periodic_next_ns;
    /* Host wall clock (UTC, ns since the epoch) and the monotonic clock the machine's timers
     * use; tests replace them. */
    uint64_t (*wall_ns)(void *opaque);
    uint64_t (*mono_ns)(void *opaque);
    void *clock_opaque;
};

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc rtc_device;

#endif
