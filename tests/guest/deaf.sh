# deaf: a guest that ignores every shutdown request (for test_daemon_autostart's forced path):
# Ctrl-Alt-Del goes to init as SIGINT, which a non-interactive init shell does not handle, and
# nothing listens to the ACPI power button.
echo 0 > /proc/sys/kernel/ctrl-alt-del
echo "VMD-GUEST: deaf ready"
while :; do sleep 1; done
