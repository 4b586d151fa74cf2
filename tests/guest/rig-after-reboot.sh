# Sourced by the nested rig's outer guest after the first vmctl run: a second inner guest that runs
# `reboot -f`, under vmctl run --no-reboot (which must exit 0 when the guest resets).
timeout "$VMCTL_TIMEOUT" vmctl run --accel kvm --no-reboot --memory "$INNER_MEMORY" --kernel /rig/vmlinuz \
    --initrd /rig/reboot.cpio.gz --cmdline "$INNER_CMDLINE" < /dev/null
echo "RIG: reboot vmctl exit $?"
