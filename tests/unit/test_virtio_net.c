/* Unit tests for devices/virtio_net with the slirp backend, driven like a guest driver: an ARP
 * request for the gateway gets slirp's reply in an RX buffer, and a TCP connection to a hostfwd
 * port on the host's loopback arrives at the guest as a SYN to the forwarded guest port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio_net.h"
#include "tests/unit/virtio_test_driver.h"
#include "vmm/vm_config.h"

#define RING 0x10000
#define TXBUF 0x40000
#define RXBUF 0x50000
#define HDR sizeof(struct virtio_net_hdr_v1)

static const uint8_t guest_mac[6] = {0x02, 0x76, 0x6d, 0, 0, 1};

static void post_rx(struct vtd *d)
{
    uint64_t a = RXBUF;
    uint32_t l = 2048;
    int w = 1;
    memset(guest_mem_ptr(&d->m->mem, RXBUF, 2048), 0, 2048);
    vtd_submit(d, 0, 1, &a, &l, &w);
}

static void send_frame(struct vtd *d, const uint8_t *frame, uint32_t len)
{
    uint8_t *p = guest_mem_ptr(&d->m->mem, TXBUF, HDR + len);
    memset(p, 0, HDR);
    memcpy(p + HDR, frame, len);
    uint64_t a = TXBUF;
    uint32_t l = (uint32_t)(HDR + len);
    int w = 0;
    uint16_t before = d->q[1].next_avail;
    vtd_submit(d, 1, 1, &a, &l, &w);
    assert_int_equal(vtd_wait_used(d, 1, (uint16_t)(before + 1), 5000), 0);
}

static void test_arp_and_hostfwd_through_slirp(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    assert_non_null(m);
    struct vm_config cfg;
    vm_config_init(&cfg);
    m->cfg = &cfg;
    int port = 20000 + (getpid() % 20000);
    char spec[96], err[256];
    snprintf(spec, sizeof(spec), "slirp,hostfwd=tcp:127.0.0.1:%d-:80", port);
    struct vm_net net;
    assert_int_equal(vm_net_parse(&net, spec, err, sizeof(err)), 0);
    assert_int_equal(virtio_net_create(m, &net, 0, err, sizeof(err)), 0);

    struct vtd d;
    uint8_t status = vtd_init(&d, m, 1, 1ULL << VIRTIO_NET_F_MAC, RING, 2);
    assert_true(status & 4);
    uint8_t mac[6];
    for (int i = 0; i < 6; i++) {
        uint64_t v;
        machine_mmio(m, d.bar + 0x2000 + i, &v, 1, false);
        mac[i] = (uint8_t)v;
    }
    assert_int_equal(mac[0], 0x02); /* locally administered, stable per VM */

    /* ARP who-has 10.0.2.2 tell 10.0.2.15 */
    post_rx(&d);
    uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(arp + 6, guest_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(arp + 14, arp_hdr, 8);
    memcpy(arp + 22, guest_mac, 6);
    const uint8_t spa[4] = {10, 0, 2, 15}, tpa[4] = {10, 0, 2, 2};
    memcpy(arp + 28, spa, 4);
    memcpy(arp + 38, tpa, 4);
    send_frame(&d, arp, sizeof(arp));
    assert_int_equal(vtd_wait_used(&d, 0, 1, 5000), 0);
    uint8_t *rx = guest_mem_ptr(&m->mem, RXBUF + HDR, 64);
    assert_true(vtd_used_len(&d, 0, 0) >= HDR + 42);
    assert_memory_equal(rx, guest_mac, 6);           /* to us */
    assert_int_equal(rx[12] << 8 | rx[13], 0x0806);  /* ARP */
    assert_int_equal(rx[20] << 8 | rx[21], 2);       /* reply */
    assert_memory_equal(rx + 28, tpa, 4);            /* from the gateway */

    /* A host connection to the forwarded port becomes a SYN to guest port 80. */
    post_rx(&d);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
    assert_true(r == 0 || errno == EINPROGRESS);
    assert_int_equal(vtd_wait_used(&d, 0, 2, 5000), 0);
    assert_int_equal(rx[12] << 8 | rx[13], 0x0800); /* IPv4 */
    assert_int_equal(rx[23], 6);                    /* TCP */
    const uint8_t *tcp = rx + 14 + (rx[14] & 0xf) * 4;
    assert_int_equal(tcp[2] << 8 | tcp[3], 80);     /* destination port */
    assert_true(tcp[13] & 0x02);                    /* SYN */
    close(s);
    vtd_machine_free(m);
    vm_config_free(&cfg);
}

static void test_bad_hostfwd_and_tap_errors(void **state)
{
    (void)state;
    struct vm_net net;
    char err[256];
    assert_int_equal(vm_net_parse(&net, "slirp,hostfwd=tcp:127.0.0.1:0-:80", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "host port"));
    assert_int_equal(vm_net_parse(&net, "bogus", err, sizeof(err)), -EINVAL);
    assert_int_equal(vm_net_parse(&net, "tap:", err, sizeof(err)), -EINVAL);
    /* A bridge that does not exist is named in the error (or the missing capability is). */
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_config cfg;
    vm_config_init(&cfg);
    m->cfg = &cfg;
    assert_int_equal(vm_net_parse(&net, "tap:vmdnobr0", err, sizeof(err)), 0);
    assert_int_not_equal(virtio_net_create(m, &net, 0, err, sizeof(err)), 0);
    assert_true(strstr(err, "vmdnobr0") || strstr(err, "CAP_NET_ADMIN") || strstr(err, "/dev/net/tun"));
    vtd_machine_free(m);
    vm_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arp_and_hostfwd_through_slirp),
        cmocka_unit_test(test_bad_hostfwd_and_tap_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
