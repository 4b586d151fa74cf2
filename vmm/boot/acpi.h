/* acpi: the minimal ACPI table set vmd gives a directly booted Linux guest:
 * RSDP, RSDT, XSDT, FADT (fixed-hardware PM block at I/O 0x600, see devices/acpi_pm),
 * FACS, a DSDT with \_S5_ and the PCI host bridge, and a MADT when the machine has APICs. */
#ifndef VMD_BOOT_ACPI_H
#define VMD_BOOT_ACPI_H

#include <stdint.h>

struct machine;

/* The ACPI PM register block the FADT describes is devices/acpi_pm.c's; its header is
 * the one source of the port numbers, the SCI and the S5 sleep type. */
#include "devices/acpi_pm.h"

#define ACPI_PM1_EVT_PORT ACPI_PM1_STS /* PM1a status (2 bytes) + enable (2 bytes) */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_PORT ACPI_PM1_CNT /* PM1a control (2 bytes): SCI_EN, SLP_TYP, SLP_EN */
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_PORT ACPI_PM_TMR   /* 32-bit 3.579545 MHz PM timer */
#define ACPI_PM_TMR_LEN 4
#define ACPI_RESET_PORT ACPI_RESET_REG /* write ACPI_RESET_VALUE: system reset */
#define ACPI_RESET_VALUE 1
#define ACPI_S5_SLP_TYP ACPI_SLP_TYP_S5 /* SLP_TYPa for soft-off, in \_S5_ */

#define ACPI_RSDP_ADDR 0xE0000ULL /* first 16-byte slot Linux's legacy RSDP scan visits */

/* Region of the BIOS area the ACPI tables may use. */
#define ACPI_AREA_START 0xE0000ULL
#define ACPI_AREA_END 0xF0000ULL

/* Write the tables into guest RAM; *rsdp_addr gets the RSDP address. 0 or -errno. */
int acpi_build(struct machine *m, uint64_t *rsdp_addr);

/* The same tables for firmware (SeaBIOS, OVMF): fw_cfg files "etc/acpi/tables" and
 * "etc/acpi/rsdp", and "etc/table-loader", the script (QEMU's format) with which the firmware
 * places them (the RSDP in the F segment), patches the pointers between them and redoes the
 * checksums. 0 or -errno. */
struct fw_cfg;
int acpi_build_fw_cfg(struct machine *m, struct fw_cfg *f);

/* Byte sum of [p, p+len) mod 256 (a valid ACPI table sums to 0). */
uint8_t acpi_checksum(const void *p, uint64_t len);

#endif
