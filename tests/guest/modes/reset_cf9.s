# reset_cf9.s: a reset ROM (reset.inc) that resets the machine through port 0xcf9.
.set RESET_METHOD, 2
.include "reset.inc"
