/* fuzz_virtqueue: libFuzzer target for the device side of virtio (devices/virtqueue.c,
 * devices/virtio_pci.c): what a hostile guest driver can put in rings and registers.
 *
 * Byte 0 even: direct virtqueue. The next bytes give the queue size (top bit: indirect tables
 * negotiated) and the three ring
 * addresses (which may point anywhere, in RAM or not), the rest is copied into a 64 KiB
 * guest RAM. The queue is enabled and popped/pushed repeatedly, with guest RAM bytes changed
 * between pops as a racing driver would; every segment returned must lie inside guest RAM
 * and every chain must respect VIRTQ_MAX_CHAIN_BYTES.
 * Byte 0 odd: virtio-rng on a machine with every device. A driver sets the device up as
 * Linux would, then the rest of the input is a script of BAR0 MMIO reads/writes (common
 * config, ISR, device config, notify), guest RAM pokes and PCI config writes.
 */
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtqueue.h"
#include "fuzz_machine.h"
#include "virtio_test_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define VQ_RAM (64u << 10)

static void check_elem(const struct guest_mem *mem, const struct virtq_elem *e)
{
    uint64_t out = 0, in = 0;
    if (e->nout > VIRTQ_MAX_SIZE || e->nin > VIRTQ_MAX_SIZE) abort();
    for (unsigned k = 0; k < 2; k++) {
        const struct iovec *iov = k ? e->in : e->out;
        unsigned n = k ? e->nin : e->nout;
        for (unsigned i = 0; i < n; i++) {
            uintptr_t b = (uintptr_t)iov[i].iov_base, base = (uintptr_t)mem->base;
            if (iov[i].iov_len > mem->size || b < base || b - base > mem->size - iov[i].iov_len) {
                fprintf(stderr, "segment %u/%u [%#lx+%zu] is outside guest RAM\n", k, i,
                        (unsigned long)(b - base), iov[i].iov_len);
                abort();
            }
            if (k) in += iov[i].iov_len;
            else out += iov[i].iov_len;
        }
    }
    if (out != e->out_len || in != e->in_len) abort();
    if (out + in > VIRTQ_MAX_CHAIN_BYTES) abort();
}

static void fuzz_queue(const uint8_t *data, size_t size)
{
    static struct virtq_elem elem; /* large: keep it off the stack */
    struct fuzz_input in = {data, size};
    struct guest_mem mem;
    if (guest_mem_init(&mem, VQ_RAM) < 0) abort();
    struct virtq q;
    virtq_reset(&q, &mem);
    uint16_t size_word = (uint16_t)fuzz_take(&in, 2);
    q.size = size_word & 0x7fff;
    q.indirect = size_word >> 15; /* the top bit: indirect tables negotiated */
    q.desc_gpa = fuzz_take(&in, 3);
    q.avail_gpa = fuzz_take(&in, 3);
    q.used_gpa = fuzz_take(&in, 3);
    unsigned script = (unsigned)fuzz_take(&in, 1) * 4; /* trailing bytes kept for pokes */
    if (script > in.len) script = (unsigned)in.len;
    size_t ram_bytes = in.len - script;
    memcpy(mem.base, in.p, ram_bytes < VQ_RAM ? ram_bytes : VQ_RAM);
    in.p += ram_bytes, in.len = script;

    if (virtq_enable(&q) == 0) {
        for (unsigned round = 0; round < 64; round++) {
            int r = virtq_pop(&q, &elem);
            if (r < 0) break;
            if (r == 1) {
                check_elem(&mem, &elem);
                uint32_t written = (uint32_t)(elem.in_len > 0xFFFFFFFFu ? 0xFFFFFFFFu : elem.in_len);
                if (round & 1) written = (uint32_t)(written / 2 + 1);
                virtq_push(&q, &elem, written);
                (void)virtq_needs_interrupt(&q);
                uint8_t tmp[64];
                iov_to_buf(elem.out, elem.nout, round, tmp, sizeof(tmp));
                iov_from_buf(elem.in, elem.nin, round, tmp, sizeof(tmp));
            }
            if (in.len < 3) {
                if (r == 0) break;
                continue;
            }
            /* the driver changes a byte of RAM (e.g. publishes more avail entries) */
            uint16_t off = (uint16_t)fuzz_take(&in, 2);
            mem.base[off % VQ_RAM] = (uint8_t)fuzz_take(&in, 1);
        }
    }
    guest_mem_free(&mem);
}

static int find_rng_slot(struct machine *m)
{
    for (unsigned slot = 0; slot < 32; slot++) {
        uint32_t id = vtd_cfg_read(m, slot, 0, 4);
        if (id == ((0x1040u + 4) << 16 | 0x1AF4u)) return (int)slot;
    }
    return -1;
}

static void fuzz_transport(const uint8_t *data, size_t size)
{
    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, 1u << 20, true) < 0) abort();
    struct machine *m = &fm.m;
    int slot = find_rng_slot(m);
    if (slot < 0) abort(); /* virtio-rng is always present */
    struct vtd d;
    vtd_init(&d, m, (unsigned)slot, 0, 0x10000, 1);
    struct fuzz_input in = {data, size};
    for (unsigned n = 0; n < 512 && in.len >= 4; n++) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        static const unsigned sizes[] = {1, 2, 4, 8};
        unsigned sz = sizes[op >> 6];
        switch (op & 7) {
        case 0: case 1: { /* BAR0 write anywhere in the 16 KiB BAR (and a little past it) */
            uint64_t off = fuzz_take(&in, 2) % 0x4100;
            uint64_t v = fuzz_take(&in, (op & 8) ? 1 : 4);
            machine_mmio(m, d.bar + off, &v, sz, true);
            break;
        }
        case 2: { /* BAR0 read */
            uint64_t off = fuzz_take(&in, 2) % 0x4100, v = 0;
            machine_mmio(m, d.bar + off, &v, sz, false);
            break;
        }
        case 3: { /* a descriptor / ring byte in RAM near the rings */
            uint64_t gpa = 0x10000 + fuzz_take(&in, 2);
            uint8_t v = (uint8_t)fuzz_take(&in, 1);
            guest_mem_write(&m->mem, gpa, &v, 1);
            break;
        }
        case 4: { /* notify queue (maybe a queue that does not exist) */
            uint64_t v = fuzz_take(&in, 1) & 3;
            machine_mmio(m, d.bar + 0x3000 + 4 * v, &v, 2, true);
            break;
        }
        case 5: { /* publish a descriptor chain the device will accept or reject */
            uint64_t addr[2] = {fuzz_take(&in, 2) << 4, 0x20000};
            uint32_t len[2] = {(uint32_t)fuzz_take(&in, 1) << 4, 64};
            int wr[2] = {1, 1};
            if (d.q[0].size && d.q[0].size <= VIRTQ_MAX_SIZE) vtd_submit(&d, 0, 2, addr, len, wr);
            break;
        }
        case 6: { /* PCI config space write (command, BARs, interrupt line) */
            unsigned reg = (unsigned)fuzz_take(&in, 1);
            uint32_t v = (uint32_t)fuzz_take(&in, 2);
            vtd_cfg_write(m, (unsigned)slot, reg & ~3u, 4, v | (reg & 0x10 ? 0 : (uint32_t)d.bar));
            break;
        }
        default: /* re-initialise the device as a driver would after a reset */
            fuzz_take(&in, 3);
            vtd_init(&d, m, (unsigned)slot, 0, 0x10000, 1);
            break;
        }
    }
    fuzz_machine_free(&fm);
}

/* Seeds (written when FUZZ_SEED_DIR is set): a well-formed 8-entry queue holding one
 * readable + writable chain, and a transport script that submits and notifies. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (!dir || !*dir) return 0;
    uint8_t q[1 + 2 + 9 + 1 + 0x300];
    memset(q, 0, sizeof(q));
    q[0] = 0;                        /* direct queue */
    q[1] = 8;                        /* size 8 */
    q[3] = 0x00, q[4] = 0x00;        /* desc 0x0 */
    q[6] = 0x00, q[7] = 0x01;        /* avail 0x100 */
    q[9] = 0x00, q[10] = 0x02;       /* used 0x200 */
    q[12] = 0;                       /* no pokes */
    uint8_t *ram = q + 13;
    struct vring_desc d0 = {.addr = 0x1000, .len = 64, .flags = VRING_DESC_F_NEXT, .next = 1};
    struct vring_desc d1 = {.addr = 0x2000, .len = 128, .flags = VRING_DESC_F_WRITE, .next = 0};
    memcpy(ram, &d0, sizeof(d0));
    memcpy(ram + 16, &d1, sizeof(d1));
    ram[0x102] = 1; /* avail idx 1, ring[0] = 0 */
    fuzz_write_seed(dir, "seed-queue", q, sizeof(q));
    const uint8_t t[] = {1, 5, 0x00, 0x10, 4, 4, 0, 0, 0, 2, 0x00, 0x10, 0, 0x42, 0x14, 0x00, 0x01};
    fuzz_write_seed(dir, "seed-transport", t, sizeof(t));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (VQ_RAM + 4096)) return 0;
    if (data[0] & 1)
        fuzz_transport(data + 1, size - 1);
    else
        fuzz_queue(data + 1, size - 1);
    return 0;
}
