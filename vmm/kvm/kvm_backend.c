/* kvm_backend: the "kvm" CPU backend. Owns the /dev/kvm VM and vCPU file
 * descriptors, the memory slots, the in-kernel irqchip (PIC, IOAPIC, LAPIC, PIT),
 * per-vCPU CPUID, and the KVM_RUN loop that turns I/O and MMIO exits into
 * machine_pio/machine_mmio calls. State translation lives in kvm_state.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_backend.h"
#include "kvm_irqchip.h"
#include "kvm_state.h"
#include "vmm/host_files.h"
#include "vmm/cpu_backend.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define KVM_DEV_PATH "/dev/kvm"
/* Three pages just below the BIOS area at the top of the 32-bit space: KVM needs them for the
 * real-mode TSS and identity page table (VMX only, harmless elsewhere). Inside the MMIO hole,
 * so they never overlap guest RAM. */
#define KVM_TSS_GPA 0xfffbd000ULL
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL
#define KVM_MAX_CPUID_ENTRIES 256
/* The signal that interrupts KVM_RUN (machine.c leaves it unblocked in vCPU threads). */
#define KVM_KICK_SIGNAL SIGUSR1

struct kvm_vm {
    int kvm_fd, vm_fd;
    int run_mmap_size;
    struct kvm_state_caps caps;
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, shared template for all vCPUs */
};

struct kvm_vcpu {
    int fd;
    struct kvm_run *run;
    size_t run_size; /* bytes mapped at run */
    /* The thread inside vcpu_run, for kick; guarded by lock because kick runs on other threads. */
    pthread_mutex_t lock;
    pthread_t thread;
    bool running;
};

static int kvm_errno(const char *what)
{
    int e = errno;
    log_error("kvm: %s: %s", what, strerror(e));
    return -e;
}

/* ---- host probing -------------------------------------------------------------------- */

static bool cpuinfo_has_hw_virt(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
            if (!strcmp(tok, "vmx") || !strcmp(tok, "svm")) found = true;
    }
    fclose(f);
    return found;
}

bool kvm_host_has_hw_virt(void)
{
    if (!cpuinfo_has_hw_virt()) return false;
    int fd = host_files_open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return false;
    close(fd);
    return true;
}

/* ---- VM ------------------------------------------------------------------------------- */

static void kick_signal_handler(int sig) { (void)sig; }

static void install_kick_handler(void)
{
    /* No SA_RESTART: the signal must make KVM_RUN return EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_signal_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(KVM_KICK_SIGNAL, &sa, NULL);
}

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)

static bool vm_has(struct kvm_vm *vm, int cap) { return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap) > 0; }

/* Interrupt routing as on a PC and as vmd's MADT/MP table describe it: ISA IRQ n reaches the
 * 8259 pair on pin n (IRQ2 is the cascade) and the IOAPIC on pin n, except IRQ0 (the PIT),
 * which arrives on IOAPIC pin 2; GSIs 16-23 are IOAPIC-only. KVM's default routing would put
 * IRQ0 on pin 0, where Linux (told "IRQ0 -> GSI2") does not find its timer. */
static int set_gsi_routing(struct kvm_vm *vm)
{
    enum { MAX_ROUTES = 48 };
    struct {
        struct kvm_irq_routing hdr;
        struct kvm_irq_routing_entry e[MAX_ROUTES];
    } rt;
    memset(&rt, 0, sizeof(rt));
    unsigned n = 0;
    for (unsigned gsi = 0; gsi < 16; gsi++) {
        if (gsi == 2) continue;
        rt.e[n].gsi = gsi;
        rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
        rt.e[n].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        rt.e[n].u.irqchip.pin = gsi & 7;
        n++;
    }
    for (unsigned gsi = 0; gsi < MACHINE_NUM_GSI; gsi++) {
        if (gsi == 2) continue;
        rt.e[n].gsi = gsi;
        rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
        rt.e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        rt.e[n].u.irqchip.pin = gsi == 0 ? 2 : gsi;
        n++;
    }
    rt.hdr.nr = n;
    if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, &rt) < 0) return kvm_errno("KVM_SET_GSI_ROUTING");
    return 0;
}

static int kvm_init(struct machine *m)
{
    /* Signal dispositions are process-wide: the kick handler is installed once per process. */
    static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
    pthread_once(&handler_once, install_kick_handler);

    struct kvm_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) return -ENOMEM;
    vm->vm_fd = -1;
    int r;
    vm->kvm_fd = host_files_open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC, 0);
    if (vm->kvm_fd < 0) {
        r = -errno;
        log_error("kvm: cannot open %s: %s", KVM_DEV_PATH, strerror(errno));
        free(vm);
        return r;
    }
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        log_error("kvm: %s speaks API version %d, vmd needs %d", KVM_DEV_PATH, api, KVM_API_VERSION);
        r = -ENOTSUP;
        goto fail;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        r = kvm_errno("KVM_CREATE_VM");
        goto fail;
    }
    static const struct { int cap; const char *name; } required[] = {
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"}, {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
        {KVM_CAP_PIT2, "KVM_CAP_PIT2"}, {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"}, {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!vm_has(vm, required[i].cap)) {
            log_error("kvm: this host's KVM lacks %s, which vmd needs", required[i].name);
            r = -ENOTSUP;
            goto fail;
        }
    }
    vm->caps.xsave = vm_has(vm, KVM_CAP_XSAVE);
    vm->caps.xcrs = vm_has(vm, KVM_CAP_XCRS);
    vm->caps.debugregs = vm_has(vm, KVM_CAP_DEBUGREGS);
    vm->caps.vcpu_events = vm_has(vm, KVM_CAP_VCPU_EVENTS);
    vm->caps.mp_state = vm_has(vm, KVM_CAP_MP_STATE);

    int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max_vcpus <= 0) max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max_vcpus > 0 && m->ncpus > (unsigned)max_vcpus) {
        log_error("kvm: %u vCPUs requested, this host's KVM allows %d", m->ncpus, max_vcpus);
        r = -EINVAL;
        goto fail;
    }

    if (vm_has(vm, KVM_CAP_SET_TSS_ADDR) && ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0) {
        r = kvm_errno("KVM_SET_TSS_ADDR");
        goto fail;
    }
    if (vm_has(vm, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
        uint64_t idmap = KVM_IDENTITY_MAP_GPA;
        if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
            r = kvm_errno("KVM_SET_IDENTITY_MAP_ADDR");
            goto fail;
        }
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        r = kvm_errno("KVM_CREATE_IRQCHIP (the in-kernel PIC/IOAPIC/LAPIC vmd relies on)");
        goto fail;
    }
    if ((r = set_gsi_routing(vm)) < 0) goto fail;
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        r = kvm_errno("KVM_CREATE_PIT2");
        goto fail;
    }
    for (unsigned i = 0; i < m->mem.nregions; i++) {
        const struct guest_mem_region *g = &m->mem.regions[i];
        struct kvm_userspace_memory_region slot = {
            .slot = i, .guest_phys_addr = g->gpa, .memory_size = g->size, .userspace_addr = (uintptr_t)g->hva};
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            r = -errno;
            log_error("kvm: memory slot %u (guest 0x%llx, %llu MiB): %s", i, (unsigned long long)g->gpa,
                      (unsigned long long)(g->size >> 20), strerror(errno));
            goto fail;
        }
    }

    vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->run_mmap_size < (int)sizeof(struct kvm_run)) {
        r = vm->run_mmap_size < 0 ? kvm_errno("KVM_GET_VCPU_MMAP_SIZE") : -EINVAL;
        goto fail;
    }
    vm->cpuid = calloc(1, sizeof(*vm->cpuid) + KVM_MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2));
    if (!vm->cpuid) {
        r = -ENOMEM;
        goto fail;
    }
    vm->cpuid->nent = KVM_MAX_CPUID_ENTRIES;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
        r = kvm_errno("KVM_GET_SUPPORTED_CPUID");
        goto fail;
    }
    /* The TSC-deadline timer is emulated by the in-kernel local APIC, but older KVM (e.g. Linux 6.1) does not
     * list it in KVM_GET_SUPPORTED_CPUID (QEMU and kvmtool add it too). Without the CPUID bit
     * KVM ignores the LVT timer's TSC-deadline mode: a guest that runs its APIC timer in that
     * mode (one restored from the emulator's APIC platform, which shows the bit) gets no ticks. */
    if (vm_has(vm, KVM_CAP_TSC_DEADLINE_TIMER))
        for (unsigned i = 0; i < vm->cpuid->nent; i++)
            if (vm->cpuid->entries[i].function == 1) vm->cpuid->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
    m->backend_data = vm;
    m->apic = true;
    return 0;

fail:
    free(vm->cpuid);
    if (vm->vm_fd >= 0) close(vm->vm_fd);
    close(vm->kvm_fd);
    free(vm);
    return r;
}

static void kvm_destroy(struct machine *m)
{
    struct kvm_vm *vm = m->backend_data;
    if (!vm) return;
    free(vm->cpuid);
    close(vm->vm_fd);
    close(vm->kvm_fd);
    free(vm);
    m->backend_data = NULL;
}

/* ---- vCPU ----------------------------------------------------------------------------- */

/* Give vCPU `index` its own APIC ID in the topology leaves and set the hypervisor bit (KVM
 * does not report it as supported everywhere; without it Linux never looks at KVM's paravirt
 * leaves and runs without kvm-clock). Everything else is what the host's KVM supports. */
static void cpuid_fixup(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus)
{
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)index << 24) | ((ncpus > 1 ? ncpus : 1) << 16);
            if (ncpus > 1) e->edx |= 1u << 28; /* HTT: EBX[23:16] is meaningful */
            e->ecx |= 1u << 31;                /* hypervisor present */
            break;
        case 0xb:
        case 0x1f:
            e->edx = index; /* x2APIC ID */
            break;
        case 0x8000001e:
            e->eax = index; /* AMD extended APIC ID */
            break;
        }
    }
}

static int kvm_vcpu_init(struct vcpu *v)
{
    struct kvm_vm *vm = v->m->backend_data;
    struct kvm_vcpu *kv = calloc(1, sizeof(*kv));
    if (!kv) return -ENOMEM;
    pthread_mutex_init(&kv->lock, NULL);
    int r;
    kv->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
    if (kv->fd < 0) {
        r = kvm_errno("KVM_CREATE_VCPU");
        goto fail_free;
    }
    kv->run_size = (size_t)vm->run_mmap_size;
    kv->run = mmap(NULL, kv->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kv->fd, 0);
    if (kv->run == MAP_FAILED) {
        r = kvm_errno("mmap of kvm_run");
        goto fail_close;
    }
    size_t sz = sizeof(*vm->cpuid) + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c) {
        r = -ENOMEM;
        goto fail_unmap;
    }
    memcpy(c, vm->cpuid, sz);
    cpuid_fixup(c, v->index, v->m->ncpus);
    r = ioctl(kv->fd, KVM_SET_CPUID2, c) < 0 ? kvm_errno("KVM_SET_CPUID2") : 0;
    free(c);
    if (r < 0) goto fail_unmap;
    v->backend = kv;
    return 0;

fail_unmap:
    munmap(kv->run, (size_t)vm->run_mmap_size);
fail_close:
    close(kv->fd);
fail_free:
    pthread_mutex_destroy(&kv->lock);
    free(kv);
    return r;
}

static void kvm_vcpu_destroy(struct vcpu *v)
{
    struct kvm_vcpu *kv = v->backend;
    if (!kv) return;
    struct kvm_vm *vm = v->m->backend_data;
    munmap(kv->run, (size_t)vm->run_mmap_size);
    close(kv->fd);
    pthread_mutex_destroy(&kv->lock);
    free(kv);
    v->backend = NULL;
}

static int kvm_get_state(struct vcpu *v, struct cpu_state *s)
{
    struct kvm_vm *vm = v->m->backend_data;
    struct kvm_vcpu *kv = v->backend;
    return kvm_state_get(kv->fd, &vm->caps, s);
}

static int kvm_set_state(struct vcpu *v, const struct cpu_state *s)
{
    struct kvm_vm *vm = v->m->backend_data;
    struct kvm_vcpu *kv = v->backend;
    return kvm_state_set(kv->fd, &vm->caps, s);
}

/* ---- run loop -------------------------------------------------------------------------- */

static void log_vcpu_registers(struct vcpu *v)
{
    struct cpu_state s;
    if (kvm_get_state(v, &s) < 0) return;
    log_error("vCPU %u: rip=%016llx rsp=%016llx rflags=%08llx cs=%04x(dpl%u l%u) cr0=%llx cr3=%llx cr4=%llx "
              "efer=%llx", v->index, (unsigned long long)s.rip, (unsigned long long)s.gpr[GPR_RSP],
              (unsigned long long)s.rflags, s.seg[SEG_CS].selector, s.seg[SEG_CS].dpl, s.seg[SEG_CS].l,
              (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
              (unsigned long long)s.efer);
    log_error("vCPU %u: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx rsi=%016llx rdi=%016llx", v->index,
              (unsigned long long)s.gpr[GPR_RAX], (unsigned long long)s.gpr[GPR_RBX],
              (unsigned long long)s.gpr[GPR_RCX], (unsigned long long)s.gpr[GPR_RDX],
              (unsigned long long)s.gpr[GPR_RSI], (unsigned long long)s.gpr[GPR_RDI]);
}

static void handle_io(struct vcpu *v, struct kvm_run *run, size_t run_size)
{
    unsigned size = run->io.size;
    /* The kernel fills these, but check them before forming pointers into the mapping. */
    if ((size != 1 && size != 2 && size != 4) || run->io.data_offset >= run_size ||
        (uint64_t)run->io.count * size > run_size - run->io.data_offset) {
        log_error("vCPU %u: malformed I/O exit (port 0x%x size %u count %u)", v->index, run->io.port, size,
                  run->io.count);
        return;
    }
    uint8_t *p = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++, p += size) {
        uint64_t val = 0;
        if (is_write) memcpy(&val, p, size);
        machine_pio(v->m, run->io.port, &val, size, is_write);
        if (!is_write) memcpy(p, &val, size);
    }
}

static void handle_mmio(struct vcpu *v, struct kvm_run *run)
{
    unsigned len = run->mmio.len;
    if (len == 0 || len > sizeof(run->mmio.data)) return;
    uint64_t val = 0;
    if (run->mmio.is_write) memcpy(&val, run->mmio.data, len);
    bool claimed = machine_mmio(v->m, run->mmio.phys_addr, &val, len, run->mmio.is_write);
    if (!claimed) {
        if (!run->mmio.is_write) val = ~0ULL; /* unclaimed: reads float high, writes dropped */
        log_debug("vCPU %u: unclaimed MMIO %s 0x%llx size %u", v->index, run->mmio.is_write ? "write" : "read",
                  (unsigned long long)run->mmio.phys_addr, len);
    }
    if (!run->mmio.is_write) memcpy(run->mmio.data, &val, len);
}

/* Let KVM finish an I/O or MMIO instruction whose exit was handled (IN data into RAX, RIP
 * advanced) without running the guest further, so get_state sees a complete instruction. */
static void complete_pending_exit(struct kvm_vcpu *kv)
{
    kv->run->immediate_exit = 1;
    if (ioctl(kv->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN)
        log_warn("kvm: completing the last exit: %s", strerror(errno));
    kv->run->immediate_exit = 0;
}

/* Clear immediate_exit, then (full fence) let the caller re-read the stop flag. */
static void clear_immediate_exit(struct kvm_run *run)
{
    __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static enum vcpu_exit kvm_vcpu_run(struct vcpu *v)
{
    struct kvm_vcpu *kv = v->backend;
    struct kvm_run *run = kv->run;
    struct machine *m = v->m;

    pthread_mutex_lock(&kv->lock);
    kv->thread = pthread_self();
    kv->running = true;
    pthread_mutex_unlock(&kv->lock);

    enum vcpu_exit result;
    for (;;) {
        /* A kick sets stop before immediate_exit, and immediate_exit is cleared below before
         * stop is read again, so no kick is lost between this check and KVM_RUN. */
        if (machine_stop_requested(m) != MACHINE_RUNNING) {
            complete_pending_exit(kv);
            result = VCPU_EXIT_STOP;
            break;
        }
        if (ioctl(kv->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                clear_immediate_exit(run);
                continue;
            }
            log_error("vCPU %u: KVM_RUN: %s", v->index, strerror(errno));
            result = VCPU_EXIT_ERROR;
            break;
        }
        machine_count(&v->stats.exits[run->exit_reason == KVM_EXIT_IO     ? VCPU_EXITS_IO
                                      : run->exit_reason == KVM_EXIT_MMIO ? VCPU_EXITS_MMIO
                                      : run->exit_reason == KVM_EXIT_INTR ? VCPU_EXITS_INTR
                                                                          : VCPU_EXITS_OTHER],
                      1);
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(v, run, kv->run_size);
            continue;
        case KVM_EXIT_MMIO:
            handle_mmio(v, run);
            continue;
        case KVM_EXIT_INTR:
            clear_immediate_exit(run);
            continue;
        case KVM_EXIT_HLT:
            /* Only without an in-kernel irqchip, which vmd always creates: nothing can wake it. */
            log_error("vCPU %u: HLT exit without an in-kernel irqchip", v->index);
            result = VCPU_EXIT_ERROR;
            break;
        case KVM_EXIT_SHUTDOWN:
            log_info("vCPU %u: guest shutdown (triple fault): resetting", v->index);
            result = VCPU_EXIT_SHUTDOWN;
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
                machine_request_stop(m, MACHINE_STOP_POWEROFF);
                result = VCPU_EXIT_STOP;
            } else {
                result = VCPU_EXIT_SHUTDOWN;
            }
            break;
        case KVM_EXIT_FAIL_ENTRY:
            log_error("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)", v->index,
                      (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            log_vcpu_registers(v);
            result = VCPU_EXIT_ERROR;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            log_error("vCPU %u: KVM internal error, suberror %u", v->index, run->internal.suberror);
            log_vcpu_registers(v);
            result = VCPU_EXIT_ERROR;
            break;
        default:
            log_error("vCPU %u: unexpected KVM exit reason %u", v->index, run->exit_reason);
            log_vcpu_registers(v);
            result = VCPU_EXIT_ERROR;
            break;
        }
        break;
    }

    pthread_mutex_lock(&kv->lock);
    kv->running = false;
    pthread_mutex_unlock(&kv->lock);
    return result;
}

static void kvm_kick(struct vcpu *v)
{
    struct kvm_vcpu *kv = v->backend;
    if (!kv) return;
    __atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&kv->lock);
    if (kv->running) pthread_kill(kv->thread, KVM_KICK_SIGNAL);
    pthread_mutex_unlock(&kv->lock);
}

static void kvm_set_irq(struct machine *m, unsigned gsi, int level)
{
    struct kvm_vm *vm = m->backend_data;
    struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0) log_warn("kvm: KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static int kvm_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    struct kvm_vm *vm = m->backend_data;
    struct kvm_msi msi = {.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0) return kvm_errno("KVM_SIGNAL_MSI");
    return 0;
}

const struct cpu_backend_ops kvm_backend_ops = {
    .name = "kvm",
    .init = kvm_init,
    .destroy = kvm_destroy,
    .vcpu_init = kvm_vcpu_init,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_run = kvm_vcpu_run,
    .get_state = kvm_get_state,
    .set_state = kvm_set_state,
    .kick = kvm_kick,
    .set_irq = kvm_set_irq,
    .send_msi = kvm_send_msi,
    .irqchip_get = kvm_irqchip_get,
    .irqchip_set = kvm_irqchip_set,
    .has_kernel_irqchip = true,
};

int kvm_machine_vm_fd(const struct machine *m)
{
    if (m->backend != &kvm_backend_ops || !m->backend_data) return -1;
    return ((const struct kvm_vm *)m->backend_data)->vm_fd;
}

int kvm_vcpu_fd(const struct vcpu *v)
{
    if (!v->m || v->m->backend != &kvm_backend_ops || !v->backend) return -1;
    return ((const struct kvm_vcpu *)v->backend)->fd;
}
