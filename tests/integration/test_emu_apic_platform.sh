# test_emu_apic_platform: Debian's kernel under the emulator's APIC platform (--irqchip apic: a local
# APIC, the IOAPIC, MSI-X for virtio): the disk, network, hostfwd checks of test_virtio_disk_net, and
# the guest's /proc/interrupts shows it used the IOAPIC, MSI-X and its local APIC timer.
# timeout: 900
# duration: 11
IRQCHIP=apic exec bash "$(dirname "$0")/test_virtio_disk_net.sh"
