# test_snapshot_emu_apic_to_kvm: test_snapshot_emu_to_kvm with the guest on the emulator's APIC
# platform (--irqchip apic: local APIC, IOAPIC, MSI-X): its snapshot holds their state, and under KVM
# (vmctl run --restore picks the APIC platform from the snapshot by itself) the emulated local APIC
# and IOAPIC drive the in-kernel irqchip; the guest carries on counting in the same boot.
# timeout: 600
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 50
IRQCHIP=apic exec bash "$(dirname "$0")/test_snapshot_emu_to_kvm.sh"
