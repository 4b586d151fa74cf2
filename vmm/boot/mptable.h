/* mptable: Intel MultiProcessor Specification 1.4 tables (floating pointer in the
 * EBDA, configuration table in the BIOS area), describing the CPUs, the ISA and PCI
 * buses and the IOAPIC. Linux uses them when ACPI is off (acpi=off). */
#ifndef VMD_BOOT_MPTABLE_H
#define VMD_BOOT_MPTABLE_H

#include <stdint.h>

struct machine;

#define MPTABLE_FLOAT_ADDR 0x9FC00ULL  /* start of the EBDA */
#define MPTABLE_CONFIG_ADDR 0xF0000ULL /* in the reserved BIOS area */
#define MPTABLE_CONFIG_MAX 0x1000ULL
#define MPTABLE_BUS_PCI 0
#define MPTABLE_BUS_ISA 1

/* Write the floating pointer and configuration table. 0 or -errno. */
int mptable_build(struct machine *m);

#endif
