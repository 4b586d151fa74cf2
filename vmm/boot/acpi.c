/* acpi: builds RSDP, XSDT/RSDT, FADT, FACS, DSDT and (with APICs) MADT, in the BIOS area for a
 * directly booted kernel, or as fw_cfg files with a table-loader script for firmware.
 * Facts from the ACPI 6.x specification, chapter 5; field offsets are spelled out
 * next to each write because the tables are packed byte layouts. */
#include "vmm/boot/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "devices/pvpanic.h"
#include "vmm/boot/aml.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/pci_intx.h"
#include "vmm/machine.h"

#define ACPI_HDR_LEN 36
#define FADT_LEN 276 /* revision 6 */
#define FACS_LEN 64

/* FADT flags (ACPI 6.x table 5-35) */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5) /* sleep button absent (or control method) */
#define FADT_FIX_RTC (1u << 6)    /* no RTC wake status in PM1 */
#define FADT_TMR_VAL_EXT (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)

/* IAPC_BOOT_ARCH (table 5-36) */
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042 (1u << 1)
#define IAPC_MSI_NOT_SUPPORTED (1u << 3)

#define GAS_SYSTEM_IO 1

uint8_t acpi_checksum(const void *p, uint64_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    for (uint64_t i = 0; i < len; i++) sum = (uint8_t)(sum + b[i]);
    return sum;
}

static void put8(uint8_t *p, uint8_t v) { p[0] = v; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* Generic Address Structure (12 bytes) */
static void put_gas(uint8_t *p, uint8_t space, uint8_t bit_width, uint8_t access_size, uint64_t addr)
{
    p[0] = space;
    p[1] = bit_width;
    p[2] = 0; /* bit offset */
    p[3] = access_size; /* 1 byte, 2 word, 3 dword, 4 qword */
    put64(p + 4, addr);
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    put8(t + 8, rev);
    /* t[9]: checksum, filled by finish() */
    memcpy(t + 10, "VMD   ", 6);       /* OEMID */
    memcpy(t + 16, "VMD", 3);          /* OEM table ID: "VMD" + signature */
    memcpy(t + 19, sig, 4);
    t[23] = ' ';
    put32(t + 24, 1);                  /* OEM revision */
    memcpy(t + 28, "VMD ", 4);         /* creator ID */
    put32(t + 32, 1);                  /* creator revision */
}


/* Largest DSDT we build: \_S5_, PCI0 with _CRS and a _PRT of up to 32 entries, PEVT (pvpanic). */
#define DSDT_AML_MAX 4096

static void word_addr(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
    uint8_t d[16] = {0x88, 13, 0, type, 0x0C /* MinFixed, MaxFixed, PosDecode */, tflags};
    uint16_t len = (uint16_t)(max - min + 1);
    memcpy(d + 8, &min, 2); /* d[6..7]: granularity 0 */
    memcpy(d + 10, &max, 2);
    memcpy(d + 14, &len, 2); /* d[12..13]: translation 0 */
    aml_bytes(a, d, sizeof(d));
}

static void dword_mem(struct aml *a, uint8_t tflags, uint32_t min, uint32_t max)
{
    uint8_t d[26] = {0x87, 23, 0, 0 /* memory */, 0x0C, tflags};
    uint32_t len = max - min + 1;
    memcpy(d + 10, &min, 4); /* d[6..9]: granularity 0 */
    memcpy(d + 14, &max, 4);
    memcpy(d + 22, &len, 4); /* d[18..21]: translation 0 */
    aml_bytes(a, d, sizeof(d));
}

/* DSDT body: \_S5_ for soft-off and the PCI host bridge with its windows and INTx routing
 * (without PCI0 in the namespace, Linux with ACPI enabled never scans PCI). */
static void build_dsdt_aml(const struct machine *m, struct aml *a)
{
    /* Name (_S5_, Package () { 5, 5, 0, 0 }): SLP_TYPa/SLP_TYPb for S5 */
    aml_name_decl(a, "_S5_");
    size_t pkg = aml_package(a, 4);
    aml_byte(a, 0x0A); aml_byte(a, ACPI_S5_SLP_TYP); /* BytePrefix 5 (not shortened, as iasl emits it) */
    aml_byte(a, 0x0A); aml_byte(a, ACPI_S5_SLP_TYP);
    aml_int(a, 0);
    aml_int(a, 0);
    aml_pkg_end(a, pkg);

    size_t sb = aml_scope(a, "\\_SB_");
    size_t dev = aml_device(a, "PCI0");
    aml_name_decl(a, "_HID");
    aml_int(a, 0x030AD041); /* EisaId ("PNP0A03"): PCI host bridge */
    aml_name_decl(a, "_UID");
    aml_int(a, 0);
    aml_name_decl(a, "_ADR");
    aml_int(a, 0);
    aml_name_decl(a, "_BBN");
    aml_int(a, 0);

    aml_name_decl(a, "_CRS");
    uint8_t crs[256];
    struct aml r;
    aml_init(&r, crs, sizeof(crs));
    word_addr(&r, 2, 0, 0x00, 0xFF);                        /* bus numbers 0-255 */
    static const uint8_t cf8[] = {0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08}; /* IO: config ports */
    aml_bytes(&r, cf8, sizeof(cf8));
    word_addr(&r, 1, 0x03, 0x0000, 0x0CF7);                 /* I/O window below the config ports */
    word_addr(&r, 1, 0x03, 0x0D00, 0xFFFF);                 /* I/O window above them */
    dword_mem(&r, 0x03, 0x000A0000, 0x000BFFFF);            /* VGA memory, cacheable */
    /* 32-bit BARs: from the end of RAM below 4 GiB to the IOAPIC. vmd assigns them from
     * PCI_MMIO_BASE; firmware (SeaBIOS on an i440FX) from 2 or 3 GiB, depending on the RAM size. */
    uint64_t low_ram_end = m->mem.nregions ? m->mem.regions[0].gpa + m->mem.regions[0].size : GUEST_MEM_HOLE_START;
    dword_mem(&r, 0x01, (uint32_t)low_ram_end, BOOT_PCI_MMIO_END);
    static const uint8_t end_tag[] = {0x79, 0x00};
    aml_bytes(&r, end_tag, sizeof(end_tag));
    size_t buf = aml_buffer(a, r.len);
    aml_bytes(a, crs, r.len);
    aml_pkg_end(a, buf);

    /* _PRT: one entry per device with an INTx pin, straight to its IRQ (no link devices) */
    struct pci_intx_route routes[PCI_INTX_MAX_ROUTES];
    unsigned nroutes = pci_intx_routes(m, routes);
    aml_name_decl(a, "_PRT");
    size_t prt = aml_package(a, (uint8_t)nroutes);
    for (unsigned i = 0; i < nroutes; i++) {
        size_t e = aml_package(a, 4);
        aml_int(a, ((uint64_t)routes[i].slot << 16) | 0xFFFF);
        aml_int(a, routes[i].pin);
        aml_int(a, 0);
        aml_int(a, routes[i].irq);
        aml_pkg_end(a, e);
    }
    aml_pkg_end(a, prt);
    aml_pkg_end(a, dev);

    /* pvpanic (devices/pvpanic.h), as QEMU describes it: Linux's pvpanic-mmio binds to
     * _HID "QEMU0001" and takes the port from _CRS (IO Decode16, one byte). */
    if (bus_find(&m->pio, PVPANIC_PORT)) { /* the device claimed its port (pvpanic.c) */
        size_t pev = aml_device(a, "PEVT");
        aml_name_decl(a, "_HID");
        aml_string(a, "QEMU0001");
        aml_name_decl(a, "_CRS");
        const uint8_t io[] = {0x47, 0x01, PVPANIC_PORT & 0xFF, PVPANIC_PORT >> 8, PVPANIC_PORT & 0xFF,
                              PVPANIC_PORT >> 8, 0x01, 0x01, 0x79, 0x00}; /* IO (Decode16, 0x505, 0x505, 1, 1), end */
        size_t iobuf = aml_buffer(a, sizeof(io));
        aml_bytes(a, io, sizeof(io));
        aml_pkg_end(a, iobuf);
        aml_pkg_end(a, pev);
    }
    aml_pkg_end(a, sb);
    if (r.overflow) a->overflow = true;
}

/* Where the tables are built: a bump allocator over one blob. Either the blob is the BIOS
 * area of guest RAM (direct boot: `start` is its guest-physical address and pointers are final),
 * or it is a fw_cfg file that firmware places (loader mode: `start` is 0, a pointer holds the
 * offset of its target in the tables blob, and every pointer and checksum is recorded as a
 * command for the firmware's table loader). */
struct loader;
struct area {
    uint8_t *base;     /* host address of the blob's first byte */
    uint64_t start;    /* the address the blob's first byte has (0 in loader mode) */
    uint64_t next;     /* next free address */
    uint64_t end;
    const char *file;  /* loader mode: this blob's fw_cfg file name */
    struct loader *ld; /* loader mode: the commands; NULL on direct boot */
};

static uint8_t *alloc(struct area *a, uint64_t len, uint64_t align, uint64_t *addr)
{
    uint64_t at = (a->next + align - 1) & ~(align - 1);
    if (at > a->end || len > a->end - at) return NULL;
    a->next = at + len;
    *addr = at;
    return a->base + (at - a->start);
}

/* ---- the table loader (QEMU's "etc/table-loader" format, which SeaBIOS and OVMF run) ---- */

#define LOADER_ENTRY_LEN 128
#define LOADER_ALLOCATE 1
#define LOADER_ADD_POINTER 2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH 1
#define LOADER_ZONE_FSEG 2
#define LOADER_MAX_ENTRIES 48
#define ACPI_FILE_TABLES "etc/acpi/tables"
#define ACPI_FILE_RSDP "etc/acpi/rsdp"

struct loader {
    uint8_t cmd[LOADER_MAX_ENTRIES][LOADER_ENTRY_LEN];
    unsigned n;
    bool overflow;
    /* checksums run after every pointer is patched: kept apart, appended at the end */
    uint8_t sum[LOADER_MAX_ENTRIES][LOADER_ENTRY_LEN];
    unsigned nsum;
};

static uint8_t *loader_entry(struct loader *ld, bool checksum)
{
    unsigned *n = checksum ? &ld->nsum : &ld->n;
    if (*n == LOADER_MAX_ENTRIES) {
        ld->overflow = true;
        return NULL;
    }
    uint8_t *e = checksum ? ld->sum[(*n)++] : ld->cmd[(*n)++];
    memset(e, 0, LOADER_ENTRY_LEN);
    return e;
}

static void put_name(uint8_t *dst, const char *name)
{
    size_t n = strlen(name);
    memcpy(dst, name, n < 55 ? n : 55);
}

static void loader_allocate(struct loader *ld, const char *file, uint32_t align, uint8_t zone)
{
    uint8_t *e = loader_entry(ld, false);
    if (!e) return;
    e[0] = LOADER_ALLOCATE;
    put_name(e + 4, file);
    put32(e + 60, align);
    e[64] = zone;
}

/* A pointer field of `size` (4 or 8) bytes at p, inside blob a, to `target`, an address in the
 * tables blob. */
static void put_ptr(struct area *a, uint8_t *p, uint64_t target, unsigned size)
{
    if (size == 4) put32(p, (uint32_t)target);
    else put64(p, target);
    if (!a->ld) return;
    uint8_t *e = loader_entry(a->ld, false);
    if (!e) return;
    e[0] = LOADER_ADD_POINTER;
    put_name(e + 4, a->file);              /* the blob holding the pointer */
    put_name(e + 60, ACPI_FILE_TABLES);    /* the blob it points into */
    put32(e + 116, (uint32_t)(p - a->base));
    e[120] = (uint8_t)size;
}

/* Set the checksum byte at t[csum_off] so that [t, t+len) sums to 0; in loader mode also tell
 * the firmware to redo it once the pointers are patched. */
static void checksum(struct area *a, uint8_t *t, unsigned csum_off, uint32_t len)
{
    t[csum_off] = 0;
    t[csum_off] = (uint8_t)(0x100 - acpi_checksum(t, len));
    if (!a->ld) return;
    uint8_t *e = loader_entry(a->ld, true);
    if (!e) return;
    e[0] = LOADER_ADD_CHECKSUM;
    put_name(e + 4, a->file);
    put32(e + 60, (uint32_t)(t - a->base) + csum_off);
    put32(e + 64, (uint32_t)(t - a->base));
    put32(e + 68, len);
}

static void finish(struct area *a, uint8_t *t)
{
    uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    checksum(a, t, 9, len);
}

static int build_fadt(struct machine *m, struct area *a, uint64_t dsdt, uint64_t facs, uint64_t *gpa)
{
    uint8_t *t = alloc(a, FADT_LEN, 16, gpa);
    if (!t) return -ENOSPC;
    header(t, "FACP", FADT_LEN, 6);
    put32(t + 36, 0); /* FIRMWARE_CTRL: 0, X_FIRMWARE_CTRL has it (both set makes ACPICA install the FACS twice) */
    put_ptr(a, t + 40, dsdt, 4);                   /* DSDT */
    put8(t + 45, 0);                               /* Preferred_PM_Profile: unspecified */
    put16(t + 46, ACPI_SCI_IRQ);                   /* SCI_INT */
    put32(t + 48, 0);                              /* SMI_CMD: none, ACPI is always enabled */
    put32(t + 56, ACPI_PM1_EVT_PORT);              /* PM1a_EVT_BLK */
    put32(t + 64, ACPI_PM1_CNT_PORT);              /* PM1a_CNT_BLK */
    put32(t + 76, ACPI_PM_TMR_PORT);               /* PM_TMR_BLK */
    put8(t + 88, ACPI_PM1_EVT_LEN);                /* PM1_EVT_LEN */
    put8(t + 89, ACPI_PM1_CNT_LEN);                /* PM1_CNT_LEN */
    put8(t + 91, ACPI_PM_TMR_LEN);                 /* PM_TMR_LEN */
    put16(t + 96, 101);                            /* P_LVL2_LAT > 100: C2 not supported */
    put16(t + 98, 1001);                           /* P_LVL3_LAT > 1000: C3 not supported */
    put8(t + 108, 0);                              /* CENTURY: no CMOS century register */
    uint16_t boot_arch = IAPC_LEGACY_DEVICES | IAPC_8042;
    if (!m->apic) boot_arch |= IAPC_MSI_NOT_SUPPORTED;
    put16(t + 109, boot_arch);                     /* IAPC_BOOT_ARCH (VGA present: bit 2 clear) */
    put32(t + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_TMR_VAL_EXT |
                       FADT_RESET_REG_SUP);         /* Flags: not HW_REDUCED; fixed power button */
    put_gas(t + 116, GAS_SYSTEM_IO, 8, 1, ACPI_RESET_PORT); /* RESET_REG */
    put8(t + 128, ACPI_RESET_VALUE);               /* RESET_VALUE */
    put8(t + 131, 0);                              /* FADT minor version (6.0) */
    put_ptr(a, t + 132, facs, 8);                  /* X_FIRMWARE_CTRL */
    put_ptr(a, t + 140, dsdt, 8);                  /* X_DSDT */
    put_gas(t + 148, GAS_SYSTEM_IO, ACPI_PM1_EVT_LEN * 8, 2, ACPI_PM1_EVT_PORT); /* X_PM1a_EVT_BLK */
    put_gas(t + 172, GAS_SYSTEM_IO, ACPI_PM1_CNT_LEN * 8, 2, ACPI_PM1_CNT_PORT); /* X_PM1a_CNT_BLK */
    put_gas(t + 208, GAS_SYSTEM_IO, ACPI_PM_TMR_LEN * 8, 3, ACPI_PM_TMR_PORT);   /* X_PM_TMR_BLK */
    memcpy(t + 268, "vmd\0\0\0\0\0", 8);           /* Hypervisor Vendor Identity */
    finish(a, t);
    return 0;
}

static int build_madt(struct machine *m, struct area *a, uint64_t *gpa)
{
    unsigned n = m->ncpus;
    uint32_t len = ACPI_HDR_LEN + 8 + 8 * n + 12 + 10 * 2 + 6;
    uint8_t *t = alloc(a, len, 16, gpa);
    if (!t) return -ENOSPC;
    header(t, "APIC", len, 3);
    put32(t + 36, BOOT_LAPIC_ADDR);   /* Local Interrupt Controller Address */
    put32(t + 40, 1);                 /* Flags: PCAT_COMPAT (dual 8259s present) */
    uint8_t *e = t + 44;
    for (unsigned i = 0; i < n; i++, e += 8) {
        e[0] = 0; e[1] = 8;           /* Processor Local APIC */
        e[2] = (uint8_t)i;            /* ACPI processor UID */
        e[3] = (uint8_t)i;            /* APIC ID */
        put32(e + 4, 1);              /* Enabled */
    }
    e[0] = 1; e[1] = 12;              /* I/O APIC */
    e[2] = (uint8_t)n;                /* I/O APIC ID, after the CPUs' */
    e[3] = 0;
    put32(e + 4, BOOT_IOAPIC_ADDR);
    put32(e + 8, 0);                  /* GSI base */
    e += 12;
    /* Interrupt source overrides: the PIT's IRQ0 arrives on GSI2; the SCI is level, active high. */
    e[0] = 2; e[1] = 10; e[2] = 0; e[3] = 0; put32(e + 4, 2); put16(e + 8, 0x0005);   /* edge, high */
    e += 10;
    e[0] = 2; e[1] = 10; e[2] = 0; e[3] = ACPI_SCI_IRQ; put32(e + 4, ACPI_SCI_IRQ); put16(e + 8, 0x000D); /* level, high */
    e += 10;
    e[0] = 4; e[1] = 6; e[2] = 0xFF; put16(e + 3, 0x0005); e[5] = 1; /* LAPIC NMI on LINT1, all CPUs */
    finish(a, t);
    return 0;
}

/* Build every table in a, and the RSDP in ra (a itself on direct boot); *rsdp_addr gets its
 * address. */
static int build_tables(struct machine *m, struct area *a, struct area *ra, uint64_t *rsdp_addr)
{
    uint64_t rsdp_gpa = 0, facs_gpa = 0, dsdt_gpa = 0, fadt_gpa = 0, madt_gpa = 0, xsdt_gpa = 0, rsdt_gpa = 0;
    uint8_t *rsdp = alloc(ra, 36, 16, &rsdp_gpa);
    uint8_t *facs = alloc(a, FACS_LEN, 64, &facs_gpa);
    if (!rsdp || !facs) return -ENOSPC;
    memcpy(facs, "FACS", 4);
    put32(facs + 4, FACS_LEN);
    put8(facs + 32, 2); /* version */

    uint8_t aml_buf[DSDT_AML_MAX];
    struct aml aml;
    aml_init(&aml, aml_buf, sizeof(aml_buf));
    build_dsdt_aml(m, &aml);
    if (aml.overflow) return -ENOSPC;
    uint8_t *dsdt = alloc(a, ACPI_HDR_LEN + aml.len, 16, &dsdt_gpa);
    if (!dsdt) return -ENOSPC;
    header(dsdt, "DSDT", (uint32_t)(ACPI_HDR_LEN + aml.len), 2);
    memcpy(dsdt + ACPI_HDR_LEN, aml_buf, aml.len);
    finish(a, dsdt);

    int r = build_fadt(m, a, dsdt_gpa, facs_gpa, &fadt_gpa);
    if (r < 0) return r;
    if (m->apic && (r = build_madt(m, a, &madt_gpa)) < 0) return r;

    uint64_t entries[2] = {fadt_gpa, madt_gpa};
    unsigned nent = madt_gpa ? 2 : 1;
    uint8_t *xsdt = alloc(a, ACPI_HDR_LEN + 8 * nent, 16, &xsdt_gpa);
    uint8_t *rsdt = alloc(a, ACPI_HDR_LEN + 4 * nent, 16, &rsdt_gpa);
    if (!xsdt || !rsdt) return -ENOSPC;
    header(xsdt, "XSDT", ACPI_HDR_LEN + 8 * nent, 1);
    header(rsdt, "RSDT", ACPI_HDR_LEN + 4 * nent, 1);
    for (unsigned i = 0; i < nent; i++) {
        put_ptr(a, xsdt + ACPI_HDR_LEN + 8 * i, entries[i], 8);
        put_ptr(a, rsdt + ACPI_HDR_LEN + 4 * i, entries[i], 4);
    }
    finish(a, xsdt);
    finish(a, rsdt);

    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "VMD   ", 6);
    put8(rsdp + 15, 2);                 /* revision: ACPI 2.0+ */
    put_ptr(ra, rsdp + 16, rsdt_gpa, 4);
    put32(rsdp + 20, 36);               /* length */
    put_ptr(ra, rsdp + 24, xsdt_gpa, 8);
    checksum(ra, rsdp, 8, 20);          /* the ACPI 1.0 part first: the extended sum covers it */
    checksum(ra, rsdp, 32, 36);
    *rsdp_addr = rsdp_gpa;
    return 0;
}

int acpi_build(struct machine *m, uint64_t *rsdp_addr)
{
    uint8_t *base = guest_mem_ptr(&m->mem, ACPI_AREA_START, ACPI_AREA_END - ACPI_AREA_START);
    if (!base) return -EFAULT;
    memset(base, 0, ACPI_AREA_END - ACPI_AREA_START);
    struct area a = {.base = base, .start = ACPI_AREA_START, .next = ACPI_AREA_START, .end = ACPI_AREA_END};
    return build_tables(m, &a, &a, rsdp_addr);
}

int acpi_build_fw_cfg(struct machine *m, struct fw_cfg *f)
{
    const uint64_t max = ACPI_AREA_END - ACPI_AREA_START; /* what the tables fit in on direct boot */
    struct loader *ld = calloc(1, sizeof(*ld));
    uint8_t *tables = calloc(1, max), rsdp[36] = {0};
    uint8_t *cmds = calloc(2 * LOADER_MAX_ENTRIES, LOADER_ENTRY_LEN);
    int r = -ENOMEM;
    if (!ld || !tables || !cmds) goto out;
    struct area a = {.base = tables, .end = max, .file = ACPI_FILE_TABLES, .ld = ld};
    struct area ra = {.base = rsdp, .end = sizeof(rsdp), .file = ACPI_FILE_RSDP, .ld = ld};
    loader_allocate(ld, ACPI_FILE_RSDP, 16, LOADER_ZONE_FSEG); /* the RSDP must sit below 1 MiB */
    loader_allocate(ld, ACPI_FILE_TABLES, 64, LOADER_ZONE_HIGH); /* FACS: 64-byte aligned */
    uint64_t unused;
    r = build_tables(m, &a, &ra, &unused);
    if (!r && ld->overflow) r = -ENOSPC;
    if (r) goto out;
    memcpy(cmds, ld->cmd, (size_t)ld->n * LOADER_ENTRY_LEN);
    memcpy(cmds + (size_t)ld->n * LOADER_ENTRY_LEN, ld->sum, (size_t)ld->nsum * LOADER_ENTRY_LEN);
    r = fw_cfg_add_file(f, ACPI_FILE_TABLES, tables, a.next);
    if (!r) r = fw_cfg_add_file(f, ACPI_FILE_RSDP, rsdp, sizeof(rsdp));
    if (!r) r = fw_cfg_add_file(f, "etc/table-loader", cmds, (size_t)(ld->n + ld->nsum) * LOADER_ENTRY_LEN);
out:
    free(cmds);
    free(tables);
    free(ld);
    return r;
}
