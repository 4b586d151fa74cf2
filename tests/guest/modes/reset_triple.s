# reset_triple.s: a reset ROM (reset.inc) that resets the machine through a triple fault.
.set RESET_METHOD, 1
.include "reset.inc"
