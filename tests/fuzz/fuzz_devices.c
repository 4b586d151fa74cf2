/* fuzz_devices: libFuzzer target for the device models (devices/) as a hostile guest
 * sees them: random sequences of port I/O (the legacy platform ports, PCI config mechanism #1
 * and the PCI I/O window), MMIO (VGA memory, the PCI MMIO window where BARs live) and the
 * passage of time (due timers run), on a machine with every registered device.
 *
 * Each op is 6 bytes: kind/size, a 3-byte address selector, a 2-byte value. The first half of
 * the input may also use fuzz_poke_devices's table of well-known ports. Every device must
 * stay within its buffers whatever the register values; the machine is rebuilt per input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/vga.h"
#include "fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, 2u << 20, true) < 0) abort();
    struct machine *m = &fm.m;
    struct fuzz_input in = {data, size};
    uint64_t now = 1000000000ULL;
    static const unsigned sizes[] = {1, 2, 4, 8};
    while (in.len >= 6) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint32_t sel = (uint32_t)fuzz_take(&in, 3);
        uint64_t v = fuzz_take(&in, 2);
        bool wr = op & 0x10;
        unsigned sz = sizes[(op >> 5) & 3];
        if (op & 0x80) v |= v << 16 | v << 32 | v << 48;
        switch (op & 0xF) {
        case 0: case 1: case 2: /* any port */
            machine_pio(m, (uint16_t)sel, &v, sz > 4 ? 4 : sz, wr);
            break;
        case 3: { /* PCI config: select a slot/function/register, then access the data port */
            uint64_t a = 0x80000000u | (sel & 0xFFFFFC);
            machine_pio(m, 0xCF8, &a, 4, true);
            machine_pio(m, (uint16_t)(0xCFC + (sel & 3)), &v, sz > 4 ? 4 : sz, wr);
            break;
        }
        case 4: case 5: /* VGA memory */
            machine_mmio(m, VGA_MEM_BASE + sel % (VGA_MEM_SIZE + 16), &v, sz, wr);
            break;
        case 6: case 7: /* the PCI MMIO window (BARs are assigned from its start) */
            machine_mmio(m, PCI_MMIO_BASE + (sel & 0xFFFFF), &v, sz, wr);
            break;
        case 8: /* the PCI I/O window */
            machine_pio(m, (uint16_t)(PCI_IOPORT_BASE + (sel & 0x3FFF)), &v, sz > 4 ? 4 : sz, wr);
            break;
        case 9: /* time passes */
            now += (uint64_t)sel * 1000;
            pthread_mutex_lock(&m->dev_lock);
            timers_run(&m->timers, now);
            pthread_mutex_unlock(&m->dev_lock);
            break;
        case 10: /* guest RAM (DMA targets) */
            guest_mem_write(&m->mem, sel % (2u << 20), &v, 2);
            break;
        default: { /* a burst on the well-known legacy ports */
            uint8_t script[8];
            memcpy(script, &sel, 3);
            memcpy(script + 3, &v, 2);
            script[5] = op, script[6] = (uint8_t)(sel >> 3), script[7] = (uint8_t)v;
            struct fuzz_input sub = {script, sizeof(script)};
            fuzz_poke_devices(&fm, &sub, &now);
            break;
        }
        }
    }
    fuzz_machine_free(&fm);
    return 0;
}
