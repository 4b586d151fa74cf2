# Inner guest that reboots instead of powering off: with --no-reboot, vmctl must exit 0 on the reset.
echo "INNER: rebooting"
reboot -f
sleep 30
echo "INNER: still running after reboot -f"
