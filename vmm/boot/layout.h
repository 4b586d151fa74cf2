/* layout: where the direct-boot path puts things in guest-physical memory.
 * docs/boot.md explains the choices. Everything below 1 MiB sits in pages Linux
 * either reserves (first page, EBDA, 0xA0000-0xFFFFF) or reads before it reuses.
 */
#ifndef VMD_BOOT_LAYOUT_H
#define VMD_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x500ULL         /* null, null, 0x10 code64, 0x18 data, 0x20 TSS (16 bytes) */
#define BOOT_GDT_ENTRIES 6             /* 8-byte slots; the TSS descriptor takes two */
#define BOOT_IDT_ADDR 0x540ULL         /* empty IDT (limit 0): any exception before Linux's own IDT triple-faults */
#define BOOT_TSS_ADDR 0x580ULL         /* 104-byte 64-bit TSS; only there so TR is usable */
#define BOOT_TSS_LIMIT 0x67U
#define BOOT_SEL_CODE 0x10             /* __BOOT_CS */
#define BOOT_SEL_DATA 0x18             /* __BOOT_DS */
#define BOOT_SEL_TSS 0x20

#define BOOT_PARAMS_ADDR 0x7000ULL     /* the "zero page" */
#define BOOT_STACK_TOP 0x8FF0ULL       /* initial RSP, grows down towards the zero page's end */

#define BOOT_PML4_ADDR 0x9000ULL
#define BOOT_PDPT_ADDR 0xA000ULL
#define BOOT_PD_ADDR 0xB000ULL         /* four page directories, 0xB000-0xEFFF: 4 GiB of 2 MiB pages */
#define BOOT_PD_COUNT 4

/* Multiboot (multiboot_load.c): the info structure and what it points to, where the 64-bit
 * protocol's page tables would be (a multiboot kernel is entered with paging off); its command
 * line at BOOT_CMDLINE_ADDR. */
#define BOOT_MB_INFO_ADDR 0x9000ULL       /* struct multiboot_info (88 bytes used) */
#define BOOT_MB_MMAP_ADDR 0x9100ULL       /* the memory map, 24 bytes an entry */
#define BOOT_MB_MMAP_MAX 32
#define BOOT_MB_MODS_ADDR 0x9400ULL       /* the module list (16 bytes per module; one module) */
#define BOOT_MB_LOADER_NAME_ADDR 0x9480ULL
#define BOOT_MB_MODSTR_ADDR 0x9500ULL     /* the module's string, up to BOOT_MB_MODSTR_MAX with its NUL */
#define BOOT_MB_MODSTR_MAX 0x1000ULL
#define BOOT_MB_MIN_LOAD 0x100000ULL      /* multiboot images load from 1 MiB up */

#define BOOT_CMDLINE_ADDR 0x20000ULL
#define BOOT_CMDLINE_MAX 0x10000ULL    /* room reserved for the command line, NUL included */

#define BOOT_EBDA_ADDR 0x9FC00ULL      /* Extended BIOS Data Area: the MP floating pointer */
#define BOOT_LOW_RAM_END 0xA0000ULL    /* VGA memory and the BIOS area follow */
#define BOOT_BIOS_AREA 0xE0000ULL      /* ACPI tables, MP config table: reserved in e820 */
#define BOOT_BIOS_AREA_END 0x100000ULL

#define BOOT_KERNEL_ADDR 0x100000ULL   /* protected-mode kernel (1 MiB) */
#define BOOT_KERNEL_ENTRY64_OFFSET 0x200ULL

/* 32-bit PCI MMIO window (ACPI _CRS): from the end of low RAM's hole start to just below the IOAPIC */
#define BOOT_PCI_MMIO_END 0xFEBFFFFFU

#define BOOT_IOAPIC_ADDR 0xFEC00000U
#define BOOT_LAPIC_ADDR 0xFEE00000U

/* BIOS Data Area fields Linux reads */
#define BDA_EBDA_SEGMENT 0x40EULL      /* u16: EBDA address >> 4 */
#define BDA_BASE_MEM_KB 0x413ULL       /* u16: conventional memory size in KiB */

#endif
