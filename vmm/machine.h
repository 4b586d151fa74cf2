/* machine: one VM's hardware: guest RAM, the PIO and MMIO buses, the devices,
 * interrupt lines, timers and the vCPUs, plus the run loop that drives them.
 *
 * Threads: one thread per vCPU runs the backend's vcpu_run; the worker's main
 * thread runs the I/O loop (console input, control channel, timers for kvm).
 * Device state is guarded by one lock, dev_lock, held around every bus access,
 * interrupt-line change and timer callback.
 */
#ifndef VMD_MACHINE_H
#define VMD_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "cpu_backend.h"
#include "guest_mem.h"
#include "timer.h"
#include "vm_config.h"

#define MACHINE_MAX_CPUS 64
#define MACHINE_NUM_GSI 24

/* Why the machine stopped, in order of precedence (a higher value wins). */
enum machine_stop {
    MACHINE_RUNNING = 0,
    MACHINE_STOP_PAUSE,    /* host asked to pause: vCPUs return, state kept */
    MACHINE_STOP_RESET,    /* guest reset (i8042 pulse, triple fault, ACPI reset) */
    MACHINE_STOP_POWEROFF, /* guest powered off (ACPI S5) */
    MACHINE_STOP_GUEST_EXIT, /* guest wrote its exit status to isa-debug-exit (machine.guest_exit_status) */
    MACHINE_STOP_PANIC,    /* guest kernel panicked (pvpanic) and the panic policy stops the VM */
    MACHINE_STOP_KILL,     /* host asked to stop now */
    MACHINE_STOP_ERROR,    /* a backend or device failed */
};

/* What a vCPU did, for the worker's stats (docs/worker-protocol.md "stats"). The counters are
 * written by the vCPU's own thread (relaxed atomics, no lock) and read by the thread that starts
 * and joins the vCPU threads (the worker's loop). */
enum vcpu_exit_kind { VCPU_EXITS_IO, VCPU_EXITS_MMIO, VCPU_EXITS_INTR, VCPU_EXITS_OTHER, VCPU_EXITS_KINDS };
struct vcpu_stats {
    _Atomic uint64_t instructions;           /* emu: guest instructions executed */
    _Atomic uint64_t exits[VCPU_EXITS_KINDS]; /* kvm: KVM_RUN exits by reason */
    _Atomic uint64_t cpu_ns_last;            /* the CPU time of the thread that ended last */
    uint64_t cpu_ns_done;                    /* the CPU time of the joined threads (the joiner's) */
};

struct vcpu {
    struct machine *m;
    unsigned index;
    pthread_t thread;
    void *backend; /* backend-private per-vCPU state */
    enum vcpu_exit exit;
    struct vcpu_stats stats;
};

/* The machine's device I/O, per disk and per NIC (by their index in the config; the cloud-init
 * seed's at VM_SEED_DISK_INDEX), counted by the devices' I/O threads with relaxed atomics. */
struct machine_io_stats {
    _Atomic uint64_t disk_read_bytes[VM_MAX_DISKS + 1], disk_write_bytes[VM_MAX_DISKS + 1];
    _Atomic uint64_t disk_read_ops[VM_MAX_DISKS + 1], disk_write_ops[VM_MAX_DISKS + 1], disk_flush_ops[VM_MAX_DISKS + 1];
    _Atomic uint64_t net_rx_bytes[VM_MAX_NETS], net_tx_bytes[VM_MAX_NETS];
    _Atomic uint64_t net_rx_packets[VM_MAX_NETS], net_tx_packets[VM_MAX_NETS], net_rx_dropped[VM_MAX_NETS];
};
static inline void machine_count(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* A VM's counters as plain numbers: a snapshot of a machine's (machine_totals_add), summed over
 * the machines a VM had (a reboot builds a new one). */
struct machine_totals {
    uint64_t cpu_ns[MACHINE_MAX_CPUS], instructions[MACHINE_MAX_CPUS], exits[MACHINE_MAX_CPUS][VCPU_EXITS_KINDS];
    uint64_t disk_read_bytes[VM_MAX_DISKS + 1], disk_write_bytes[VM_MAX_DISKS + 1];
    uint64_t disk_read_ops[VM_MAX_DISKS + 1], disk_write_ops[VM_MAX_DISKS + 1], disk_flush_ops[VM_MAX_DISKS + 1];
    uint64_t net_rx_bytes[VM_MAX_NETS], net_tx_bytes[VM_MAX_NETS];
    uint64_t net_rx_packets[VM_MAX_NETS], net_tx_packets[VM_MAX_NETS], net_rx_dropped[VM_MAX_NETS];
};

/* Serial output goes to a sink chosen by the host side (stdout, log file, socket). */
typedef void (*console_out_fn)(void *opaque, const uint8_t *buf, size_t len);

struct machine {
    const struct vm_config *cfg;
    const struct cpu_backend_ops *backend;
    void *backend_data; /* backend-private machine state */

    struct guest_mem mem;
    struct bus pio, mmio;
    pthread_mutex_t dev_lock;
    struct timer_list timers;

    unsigned ncpus;
    struct vcpu vcpus[MACHINE_MAX_CPUS];

    _Atomic int stop; /* enum machine_stop */
    int stop_fd;      /* eventfd, signalled by machine_request_stop */
    unsigned started; /* vCPU threads running */

    /* Platform shape, fixed by the backend's init: whether the guest sees a local APIC and
     * IOAPIC (kvm: in-kernel irqchip; emu with --irqchip apic: vmm/emu/lapic.c, devices/ioapic.c)
     * or only the i8259 PIC pair (emu's default). The boot loader describes the APICs in ACPI/MP
     * tables, and virtio devices offer MSI-X, only when this is set. */
    bool apic;

    /* The A20 gate: the i8042's output port and port 0x92's fast-A20 bit, OR-ed as on a PIIX
     * chipset. Each source that turned A20 off sets its bit here (device lock held); when every
     * source has, physical address bit 20 reads as 0 (the emulator applies this; KVM has no A20
     * masking and ignores it). a20_gen changes whenever the gate does, for the CPU to notice. */
    _Atomic unsigned a20_off;
    _Atomic unsigned a20_gen;

    /* Guest-physical layout decided at boot */
    uint64_t kernel_entry;   /* entry point: 64-bit, or 32-bit (code32_start) if kernel_entry32 */
    bool kernel_entry32;     /* the 32-bit boot protocol: flat protected mode, no paging */
    uint64_t boot_params_gpa;
    bool multiboot;          /* a multiboot kernel: EAX = 0x2BADB002, EBX = multiboot_info at entry */
    uint64_t multiboot_info;

    /* The status a guest asked to end with (isa-debug-exit, devices/debug_exit.c): set under dev_lock
     * before MACHINE_STOP_GUEST_EXIT is requested; read after machine_join. */
    int guest_exit_status;

    /* Devices (NULL when absent). Typed as opaque here; see devices/. */
    struct uart *com1;
    struct pic *pic;
    struct ioapic *ioapic; /* emu's APIC platform (KVM's is in the kernel) */
    struct pit *pit;
    struct rtc *rtc;
    struct i8042 *i8042;
    struct acpi_pm *acpi_pm;
    struct vga *vga;
    struct vnc_server *vnc; /* the VNC console when --vnc is given */
    struct vnc_console *vnc_console;
    struct pci_bus *pci;
    struct firmware_rom *firmware; /* the ROM image of a firmware boot (vmm/boot/firmware.h), else NULL */
    struct machine_io_stats io_stats;

    /* Serial console: the UART writes guest output to console_out; host input goes
     * to console_in (set by the device that owns the console, e.g. COM1). */
    console_out_fn console_out;
    void *console_opaque;
    void (*console_in)(void *dev, const uint8_t *buf, size_t len);
    void *console_in_dev;
};

/* Build a machine from a validated config: RAM, backend, devices, kernel loaded.
 * On error returns -errno and writes a user-facing message to err. */
int machine_create(struct machine *m, const struct vm_config *cfg, const struct cpu_backend_ops *backend,
                   char *err, size_t errlen);
void machine_destroy(struct machine *m);

/* Start the vCPU threads. machine_join() waits for them and returns the stop reason.
 * stop_fd (an eventfd) becomes readable once a stop has been requested, for poll loops. */
int machine_start(struct machine *m);
enum machine_stop machine_join(struct machine *m);
/* After a pause (machine_request_stop(PAUSE) then machine_join): clear the stop request and
 * start the vCPU threads again with their state as it was. */
int machine_resume(struct machine *m);

/* Ask every vCPU to stop (any thread; async-signal-safe apart from kick). */
void machine_request_stop(struct machine *m, enum machine_stop why);

#define MACHINE_A20_KBC 1u    /* the i8042's output port, bit 1 */
#define MACHINE_A20_PORT92 2u /* system control port A, bit 1 */
/* A source of the A20 gate drives it (device lock held). */
void machine_set_a20(struct machine *m, unsigned source, bool enabled);
static inline bool machine_a20_enabled(struct machine *m)
{
    return atomic_load(&m->a20_off) != (MACHINE_A20_KBC | MACHINE_A20_PORT92);
}
static inline enum machine_stop machine_stop_requested(struct machine *m)
{
    return (enum machine_stop)atomic_load_explicit(&m->stop, memory_order_relaxed);
}

/* Add m's counters to t; vCPU time includes the running threads' so far. Call from the thread that
 * starts and joins m's vCPU threads. */
void machine_totals_add(struct machine *m, struct machine_totals *t);

/* Backend entry points into the device model. Both take dev_lock. */
void machine_pio(struct machine *m, uint16_t port, uint64_t *data, unsigned size, bool is_write);
/* Returns false if no device claims addr (the backend decides what that means). */
bool machine_mmio(struct machine *m, uint64_t addr, uint64_t *data, unsigned size, bool is_write);

/* Whether devices may offer MSI-X: the guest has a local APIC and the backend can deliver MSIs. */
static inline bool machine_msi_supported(const struct machine *m) { return m->apic && m->backend->send_msi; }
/* Deliver an MSI (address/data from a device's MSI-X table entry). */
void machine_send_msi(struct machine *m, uint64_t addr, uint32_t data);

/* Device entry point: set interrupt line `gsi` to `level`. Caller holds dev_lock. */
void machine_set_irq(struct machine *m, unsigned gsi, int level);
/* Pulse an edge-triggered line (level 1 then 0). Caller holds dev_lock. */
void machine_pulse_irq(struct machine *m, unsigned gsi);

/* Run the device timers that are due (takes dev_lock) and return the next deadline
 * (CLOCK_MONOTONIC ns, or TIMER_NEVER). For I/O loops of backends that don't run timers
 * themselves (cpu_backend_ops.runs_device_timers false); others may call it harmlessly. */
uint64_t machine_run_timers(struct machine *m);
/* Milliseconds a poll() may sleep before machine_run_timers() is due again (at most max_ms). */
int machine_timer_poll_ms(struct machine *m, int max_ms);

/* Console input from the host (main thread): feeds the UART. */
void machine_console_input(struct machine *m, const uint8_t *buf, size_t len);

#endif
