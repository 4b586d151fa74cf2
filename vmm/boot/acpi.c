/* acpi: builds RSDP, XSDT/RSDT, FADT, FACS, DSDT and (with APICs) MADT in the BIOS area.
 * Facts from the ACPI 6.x specification, chapter 5; field offsets are spelled out
 * next to each write because the tables are packed byte layouts. */
#include "vmm/boot/acpi.h"

#include <errno.h>
#include <string.h>

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

static void finish(uint8_t *t)
{
    uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    t[9] = 0;
    t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
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
    dword_mem(&r, 0x01, (uint32_t)GUEST_MEM_HOLE_START, BOOT_PCI_MMIO_END); /* 32-bit BARs */
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
    if (pvpanic_present(m)) {
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

/* Bump allocator over the table area, in guest-physical terms. */
struct area {
    uint8_t *base; /* host address of ACPI_AREA_START */
    uint64_t next; /* next free guest-physical address */
};

static uint8_t *alloc(struct area *a, uint64_t len, uint64_t align, uint64_t *gpa)
{
    uint64_t at = (a->next + align - 1) & ~(align - 1);
    if (at + len > ACPI_AREA_END) return NULL;
    a->next = at + len;
    *gpa = at;
    return a->base + (at - ACPI_AREA_START);
}

static int build_fadt(struct machine *m, struct area *a, uint64_t dsdt, uint64_t facs, uint64_t *gpa)
{
    uint8_t *t = alloc(a, FADT_LEN, 16, gpa);
    if (!t) return -ENOSPC;
    header(t, "FACP", FADT_LEN, 6);
    put32(t + 36, 0); /* FIRMWARE_CTRL: 0, X_FIRMWARE_CTRL has it (both set makes ACPICA install the FACS twice) */
    put32(t + 40, (uint32_t)dsdt);                 /* DSDT */
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
    put64(t + 132, facs);                          /* X_FIRMWARE_CTRL */
    put64(t + 140, dsdt);                          /* X_DSDT */
    put_gas(t + 148, GAS_SYSTEM_IO, ACPI_PM1_EVT_LEN * 8, 2, ACPI_PM1_EVT_PORT); /* X_PM1a_EVT_BLK */
    put_gas(t + 172, GAS_SYSTEM_IO, ACPI_PM1_CNT_LEN * 8, 2, ACPI_PM1_CNT_PORT); /* X_PM1a_CNT_BLK */
    put_gas(t + 208, GAS_SYSTEM_IO, ACPI_PM_TMR_LEN * 8, 3, ACPI_PM_TMR_PORT);   /* X_PM_TMR_BLK */
    memcpy(t + 268, "vmd\0\0\0\0\0", 8);           /* Hypervisor Vendor Identity */
    finish(t);
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
    finish(t);
    return 0;
}

int acpi_build(struct machine *m, uint64_t *rsdp_addr)
{
    uint8_t *base = guest_mem_ptr(&m->mem, ACPI_AREA_START, ACPI_AREA_END - ACPI_AREA_START);
    if (!base) return -EFAULT;
    memset(base, 0, ACPI_AREA_END - ACPI_AREA_START);
    struct area a = {.base = base, .next = ACPI_AREA_START};

    uint64_t rsdp_gpa, facs_gpa, dsdt_gpa, fadt_gpa, madt_gpa = 0, xsdt_gpa, rsdt_gpa;
    uint8_t *rsdp = alloc(&a, 36, 16, &rsdp_gpa);
    uint8_t *facs = alloc(&a, FACS_LEN, 64, &facs_gpa);
    if (!rsdp || !facs) return -ENOSPC;
    memcpy(facs, "FACS", 4);
    put32(facs + 4, FACS_LEN);
    put8(facs + 32, 2); /* version */

    uint8_t aml_buf[DSDT_AML_MAX];
    struct aml aml;
    aml_init(&aml, aml_buf, sizeof(aml_buf));
    build_dsdt_aml(m, &aml);
    if (aml.overflow) return -ENOSPC;
    uint8_t *dsdt = alloc(&a, ACPI_HDR_LEN + aml.len, 16, &dsdt_gpa);
    if (!dsdt) return -ENOSPC;
    header(dsdt, "DSDT", (uint32_t)(ACPI_HDR_LEN + aml.len), 2);
    memcpy(dsdt + ACPI_HDR_LEN, aml_buf, aml.len);
    finish(dsdt);

    int r = build_fadt(m, &a, dsdt_gpa, facs_gpa, &fadt_gpa);
    if (r < 0) return r;
    if (m->apic && (r = build_madt(m, &a, &madt_gpa)) < 0) return r;

    uint64_t entries[2] = {fadt_gpa, madt_gpa};
    unsigned nent = madt_gpa ? 2 : 1;
    uint8_t *xsdt = alloc(&a, ACPI_HDR_LEN + 8 * nent, 16, &xsdt_gpa);
    uint8_t *rsdt = alloc(&a, ACPI_HDR_LEN + 4 * nent, 16, &rsdt_gpa);
    if (!xsdt || !rsdt) return -ENOSPC;
    header(xsdt, "XSDT", ACPI_HDR_LEN + 8 * nent, 1);
    header(rsdt, "RSDT", ACPI_HDR_LEN + 4 * nent, 1);
    for (unsigned i = 0; i < nent; i++) {
        put64(xsdt + ACPI_HDR_LEN + 8 * i, entries[i]);
        put32(rsdt + ACPI_HDR_LEN + 4 * i, (uint32_t)entries[i]);
    }
    finish(xsdt);
    finish(rsdt);

    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "VMD   ", 6);
    put8(rsdp + 15, 2);                 /* revision: ACPI 2.0+ */
    put32(rsdp + 16, (uint32_t)rsdt_gpa);
    put32(rsdp + 20, 36);               /* length */
    put64(rsdp + 24, xsdt_gpa);
    rsdp[8] = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
    rsdp[32] = (uint8_t)(0x100 - acpi_checksum(rsdp, 36));
    *rsdp_addr = rsdp_gpa;
    return 0;
}
