# Guest side of test_boot_protocol32: the shell is up; say which kernel runs it.
echo "GUEST: shell up, kernel $(uname -m)"
