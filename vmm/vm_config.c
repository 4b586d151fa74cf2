/* vm_config: parsing and validation of VM definitions from option/value pairs. */
#include "vm_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_config_init(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->memory_mib = 256;
    c->cpus = 1;
    c->accel = ACCEL_AUTO;
}

void vm_config_free(struct vm_config *c)
{
    free(c->name);
    free(c->kernel);
    free(c->initrd);
    free(c->firmware);
    free(c->cmdline);
    free(c->vnc);
    for (unsigned i = 0; i < c->ndisks; i++) free(c->disks[i].path);
    free(c->cloud_init.user_data);
    free(c->cloud_init.meta_data);
    free(c->cloud_init.network_config);
    free(c->cloud_init_seed);
    memset(c, 0, sizeof(*c));
}

const char *vm_accel_name(enum vm_accel a)
{
    switch (a) {
    case ACCEL_KVM: return "kvm";
    case ACCEL_EMU: return "emu";
    default: return "auto";
    }
}

const char *vm_irqchip_name(enum vm_irqchip i)
{
    switch (i) {
    case IRQCHIP_PIC: return "pic";
    case IRQCHIP_APIC: return "apic";
    default: return "auto";
    }
}

const char *vm_on_panic_name(enum vm_on_panic p)
{
    switch (p) {
    case ON_PANIC_STOP: return "stop";
    case ON_PANIC_REBOOT: return "reboot";
    case ON_PANIC_IGNORE: return "ignore";
    default: return "auto";
    }
}

const char *vm_disk_format_name(enum vm_disk_format f)
{
    return f == DISK_FORMAT_RAW ? "raw" : f == DISK_FORMAT_QCOW2 ? "qcow2" : NULL;
}

const char *vm_device_name(unsigned bit)
{
    return bit == VM_DEVICE_ISA_DEBUG_EXIT ? "isa-debug-exit" : NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -EINVAL;
    *out = v;
    return 0;
}

static int set_str(char **dst, const char *v)
{
    char *d = strdup(v);
    if (!d) return -ENOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

#define FAIL(...)                             \
    do {                                      \
        snprintf(err, errlen, __VA_ARGS__);   \
        return -EINVAL;                       \
    } while (0)

/* hostfwd=[tcp|udp]:[ADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, as QEMU spells it. */
static int parse_hostfwd(struct vm_hostfwd *f, const char *spec, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    const char *p = spec;
    if (!strncmp(p, "tcp:", 4)) p += 4;
    else if (!strncmp(p, "udp:", 4)) { f->udp = true; p += 4; }
    else FAIL("--net: hostfwd '%s': expected tcp: or udp:", spec);
    const char *colon = strchr(p, ':');
    const char *dash = colon ? strchr(colon, '-') : NULL;
    if (!colon || !dash) FAIL("--net: hostfwd '%s': expected [ADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", spec);
    size_t alen = (size_t)(colon - p);
    if (alen >= sizeof(f->host_addr)) FAIL("--net: hostfwd '%s': address too long", spec);
    memcpy(f->host_addr, p, alen);
    f->host_addr[alen] = 0;
    char port[16];
    size_t plen = (size_t)(dash - colon - 1);
    if (plen == 0 || plen >= sizeof(port)) FAIL("--net: hostfwd '%s': bad host port", spec);
    memcpy(port, colon + 1, plen);
    port[plen] = 0;
    uint64_t hp, gp;
    if (parse_u64(port, &hp) || hp == 0 || hp > 65535) FAIL("--net: hostfwd '%s': bad host port", spec);
    const char *g = strrchr(dash + 1, ':');
    g = g ? g + 1 : dash + 1;
    if (parse_u64(g, &gp) || gp == 0 || gp > 65535) FAIL("--net: hostfwd '%s': bad guest port", spec);
    f->host_port = (uint16_t)hp;
    f->guest_port = (uint16_t)gp;
    return 0;
}

int vm_net_parse(struct vm_net *n, const char *spec, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    if (!strncmp(spec, "tap:", 4)) {
        n->kind = NET_TAP;
        const char *br = spec + 4;
        if (!*br || strlen(br) > 15 || strchr(br, '/') || strchr(br, ','))
            FAIL("--net: '%s': expected tap:BRIDGE with a bridge name of at most 15 characters", spec);
        strcpy(n->bridge, br);
        return 0;
    }
    if (strncmp(spec, "slirp", 5) || (spec[5] && spec[5] != ','))
        FAIL("--net: '%s': expected slirp[,hostfwd=...] or tap:BRIDGE", spec);
    n->kind = NET_SLIRP;
    const char *p = spec + 5;
    while (*p == ',') {
        p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[128];
        if (len >= sizeof(item)) FAIL("--net: option too long in '%s'", spec);
        memcpy(item, p, len);
        item[len] = 0;
        if (strncmp(item, "hostfwd=", 8)) FAIL("--net: unknown slirp option '%s'", item);
        if (n->nhostfwd == VM_MAX_HOSTFWD) FAIL("--net: at most %d hostfwd rules", VM_MAX_HOSTFWD);
        int r = parse_hostfwd(&n->hostfwd[n->nhostfwd], item + 8, err, errlen);
        if (r) return r;
        n->nhostfwd++;
        p += len;
    }
    return 0;
}

int vm_config_set(struct vm_config *c, const char *opt, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (!strcmp(opt, "memory")) {
        if (parse_u64(v, &n) || n < 16 || n > 1024 * 1024) FAIL("--memory: '%s' is not a size in MiB between 16 and 1048576", v);
        c->memory_mib = n;
    } else if (!strcmp(opt, "cpus")) {
        if (parse_u64(v, &n) || n < 1 || n > 64) FAIL("--cpus: '%s' is not a count between 1 and 64", v);
        c->cpus = (unsigned)n;
    } else if (!strcmp(opt, "accel")) {
        if (!strcmp(v, "auto")) c->accel = ACCEL_AUTO;
        else if (!strcmp(v, "kvm")) c->accel = ACCEL_KVM;
        else if (!strcmp(v, "emu")) c->accel = ACCEL_EMU;
        else FAIL("--accel: '%s' is not one of auto, kvm, emu", v);
    } else if (!strcmp(opt, "irqchip")) {
        if (!strcmp(v, "auto")) c->irqchip = IRQCHIP_AUTO;
        else if (!strcmp(v, "pic")) c->irqchip = IRQCHIP_PIC;
        else if (!strcmp(v, "apic")) c->irqchip = IRQCHIP_APIC;
        else FAIL("--irqchip: '%s' is not one of auto, pic, apic", v);
    } else if (!strcmp(opt, "kernel")) {
        return set_str(&c->kernel, v);
    } else if (!strcmp(opt, "firmware")) {
        return set_str(&c->firmware, v);
    } else if (!strcmp(opt, "initrd")) {
        return set_str(&c->initrd, v);
    } else if (!strcmp(opt, "cmdline")) {
        if (strlen(v) > 2047) FAIL("--cmdline: longer than 2047 bytes");
        return set_str(&c->cmdline, v);
    } else if (!strcmp(opt, "name")) {
        return set_str(&c->name, v);
    } else if (!strcmp(opt, "vnc")) {
        if (!strchr(v, ':')) FAIL("--vnc: '%s': expected ADDR:PORT", v);
        return set_str(&c->vnc, v);
    } else if (!strcmp(opt, "disk")) {
        if (c->ndisks == VM_MAX_DISKS) FAIL("--disk: at most %d disks", VM_MAX_DISKS);
        char *path = strdup(v);
        if (!path) return -ENOMEM;
        bool ro = false;
        enum vm_disk_format fmt = DISK_FORMAT_UNSET;
        char *opt_s = strchr(path, ',');
        if (opt_s) *opt_s++ = 0;
        while (opt_s) { /* PATH[,readonly][,format=raw|qcow2], options in any order */
            char *next = strchr(opt_s, ',');
            if (next) *next++ = 0;
            if (!strcmp(opt_s, "readonly")) {
                ro = true;
            } else if (!strcmp(opt_s, "format=raw")) {
                fmt = DISK_FORMAT_RAW;
            } else if (!strcmp(opt_s, "format=qcow2")) {
                fmt = DISK_FORMAT_QCOW2;
            } else {
                snprintf(err, errlen, "--disk: unknown option '%s' (expected PATH[,readonly][,format=raw|qcow2])", opt_s);
                free(path);
                return -EINVAL;
            }
            opt_s = next;
        }
        c->disks[c->ndisks++] = (struct vm_disk){.path = path, .readonly = ro, .format = fmt};
    } else if (!strcmp(opt, "device")) {
        if (!strcmp(v, "isa-debug-exit")) c->devices |= VM_DEVICE_ISA_DEBUG_EXIT;
        else FAIL("--device: '%s' is not a known device (isa-debug-exit)", v);
    } else if (!strcmp(opt, "boot-protocol")) {
        if (!strcmp(v, "auto")) c->boot_protocol = BOOT_PROTOCOL_AUTO;
        else if (!strcmp(v, "32")) c->boot_protocol = BOOT_PROTOCOL_32;
        else if (!strcmp(v, "64")) c->boot_protocol = BOOT_PROTOCOL_64;
        else FAIL("--boot-protocol: '%s' is not one of auto, 32, 64", v);
    } else if (!strcmp(opt, "on-panic")) {
        if (!strcmp(v, "auto")) c->on_panic = ON_PANIC_AUTO;
        else if (!strcmp(v, "stop")) c->on_panic = ON_PANIC_STOP;
        else if (!strcmp(v, "reboot")) c->on_panic = ON_PANIC_REBOOT;
        else if (!strcmp(v, "ignore")) c->on_panic = ON_PANIC_IGNORE;
        else FAIL("--on-panic: '%s' is not one of auto, stop, reboot, ignore", v);
    } else if (!strcmp(opt, "net")) {
        if (c->nnets == VM_MAX_NETS) FAIL("--net: at most %d network interfaces", VM_MAX_NETS);
        int r = vm_net_parse(&c->nets[c->nnets], v, err, errlen);
        if (r) return r;
        c->nnets++;
    } else {
        FAIL("unknown option --%s", opt);
    }
    return 0;
}

int vm_cloud_init_check(const char *what, const char *text, size_t len, char *err, size_t errlen)
{
    if (memchr(text, 0, len)) FAIL("%s: contains a NUL byte: cloud-init data must be text", what);
    if (len > VM_CLOUD_INIT_MAX_BYTES)
        FAIL("%s: %zu bytes, more than the %u allowed", what, len, (unsigned)VM_CLOUD_INIT_MAX_BYTES);
    return 0;
}

int vm_cloud_init_set(char **field, const char *what, const char *text, size_t len, char *err, size_t errlen)
{
    int r = vm_cloud_init_check(what, text, len, err, errlen);
    if (r) return r;
    char *copy = strndup(text, len);
    if (!copy) return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int vm_config_validate(const struct vm_config *c, char *err, size_t errlen)
{
    if (!c->kernel && !c->firmware) FAIL("--kernel: required (or --firmware)");
    if (c->kernel && c->firmware)
        FAIL("--firmware: give --kernel or --firmware, not both (a kernel through firmware needs fw_cfg, not there yet)");
    if (c->firmware && c->accel == ACCEL_KVM)
        FAIL("--firmware: runs under the emulator only (--accel emu): the kvm backend has no read-only ROM mapping yet");
    if (c->firmware && c->initrd) FAIL("--initrd: needs --kernel (--firmware boots without one)");
    if (!c->cloud_init.user_data && (c->cloud_init.meta_data || c->cloud_init.network_config))
        FAIL("cloud_init.user_data: required with meta_data or network_config (--cloud-init FILE)");
    if (c->accel == ACCEL_KVM && c->irqchip == IRQCHIP_PIC)
        FAIL("--irqchip: the kvm backend always gives the guest its in-kernel APIC (use apic or auto)");
    if (c->accel == ACCEL_EMU && c->cpus > 1) FAIL("--cpus: the emu backend runs 1 vCPU (got %u)", c->cpus);
    return 0;
}
