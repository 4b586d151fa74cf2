# reset_i8042.s: a reset ROM (reset.inc) that resets the machine through the i8042.
.set RESET_METHOD, 3
.include "reset.inc"
