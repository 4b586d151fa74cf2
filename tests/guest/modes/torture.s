# torture.s: a mode-switching torture test. From the reset vector: real mode -> 16-bit protected
# mode -> 32-bit protected mode -> PAE paging (a page mapped away from its identity) -> paging
# off -> long mode (IA-32e compatibility mode first, then 64-bit code) -> compatibility mode (a
# far return to a 32-bit segment) -> long mode and paging off: 32-bit protected mode -> 16-bit
# protected mode -> real mode. Each step prints a letter as it is reached (any mode can OUT) and
# stores what it sees in RAM (segment selectors, CR0, EFER, results of 16/32/64-bit code, what a
# paged store reached); back in real mode the values are printed, and an INT3 shows that events go
# through the IVT again. Built into a 64 KiB ROM (see common.inc).
.include "common.inc"

.set SEL_CODE16, 0x08           # 16-bit code, base ROMBASE
.set SEL_DATA16, 0x10           # 16-bit data, base 0, 64 KiB
.set SEL_CODE32, 0x18           # flat 32-bit code
.set SEL_DATA32, 0x20           # flat 32-bit data
.set SEL_CODE64, 0x28           # 64-bit code
.set RES, 0x800                 # results

.macro STEP c
    mov $\c, %al
    mov $COM1, %dx
    out %al, %dx
.endm

.code16
.text
start:
    REAL_INIT
    PUTS "torture: "
    STEP 'R'
    lgdtl %cs:gdtdesc
    mov %cr0, %eax
    or $1, %al
    mov %eax, %cr0
    ljmp $SEL_CODE16, $pm16

pm16:                           # 16-bit protected mode
    mov $SEL_DATA16, %ax
    mov %ax, %ds
    mov %ax, %ss
    STEP 'p'
    mov %cs, %ax
    mov %ax, RES + 0x00
    smsw %ax
    mov %ax, RES + 0x02
    call sub16
    mov %bx, RES + 0x04
    ljmpl $SEL_CODE32, $(ROMBASE + pm32)

sub16:
    mov $0x1616, %bx
    ret

.code32
pm32:                           # 32-bit protected mode
    mov $SEL_DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7000, %esp
    STEP 'P'
    mov %cs, %ax
    mov %ax, RES + 0x06
    mov $0x87654321, %eax
    bswap %eax
    mov %eax, RES + 0x08
    call sub32
    mov %eax, RES + 0x0c

    # PAE paging: 0-2 MiB identity, linear 0x40000000 -> physical 0x200000
    mov $0x20000, %edi
    xor %eax, %eax
    mov $0xc00, %ecx
    cld
    rep stosl
    movl $0x21001, 0x20000      # PDPT[0] -> PD at 0x21000
    movl $0x22001, 0x20008      # PDPT[1] -> PD at 0x22000
    movl $0x000083, 0x21000     # 2 MiB page at 0
    movl $0x200083, 0x22000     # 2 MiB page 0x40000000 -> 0x200000
    mov %cr4, %eax
    or $0x20, %eax              # PAE
    mov %eax, %cr4
    mov $0x20000, %eax
    mov %eax, %cr3
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    STEP 'G'
    movl $0x5a5aa5a5, 0x40000010
    mov 0x40000010, %eax
    mov %eax, RES + 0x10
    mov %cr0, %eax
    and $0x7fffffff, %eax
    mov %eax, %cr0
    mov 0x200010, %eax          # the same store, seen at its physical address
    mov %eax, RES + 0x14

    # long mode: PML4 0x30000 -> PDPT 0x31000 -> PD 0x32000, 0-2 MiB identity
    mov $0x30000, %edi
    xor %eax, %eax
    mov $0xc00, %ecx
    rep stosl
    movl $0x31003, 0x30000
    movl $0x32003, 0x31000
    movl $0x000083, 0x32000
    mov $0x30000, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx       # EFER.LME
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0              # IA-32e mode, still in the 32-bit segment: compatibility mode
    STEP 'c'
    rdmsr
    mov %eax, RES + 0x18
    ljmp $SEL_CODE64, $(ROMBASE + lm64)

sub32:
    mov %esp, %eax
    ret

.code64
lm64:                           # 64-bit mode
    STEP 'L'
    mov $0x123456789abcdef0, %rax
    mov $0x10, %r8
    mul %r8
    mov %rax, RES + 0x20
    mov %rdx, RES + 0x28
    lea lm64(%rip), %rbx
    mov %rbx, RES + 0x30
    mov %rsp, %r9
    mov %r9, RES + 0x48
    pushq $SEL_CODE32
    lea compat(%rip), %rax
    pushq %rax
    lretq

.code32
compat:                         # compatibility mode
    STEP 'C'
    mov %cs, %ax
    mov %ax, RES + 0x38
    mov %cr0, %eax              # leave long mode: paging off, then EFER.LME and CR4.PAE off
    and $0x7fffffff, %eax
    mov %eax, %cr0
    mov $0xc0000080, %ecx
    rdmsr
    and $~0x100, %eax
    wrmsr
    rdmsr
    mov %eax, RES + 0x3c
    mov %cr4, %eax
    and $~0x20, %eax
    mov %eax, %cr4
    STEP 'P'
    mov %cr0, %eax
    mov %eax, RES + 0x40
    ljmp $SEL_CODE16, $pm16b

.code16
pm16b:                          # 16-bit protected mode again, 16-bit segments for real mode
    mov $SEL_DATA16, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7000, %esp
    STEP 'p'
    mov %cr0, %eax
    and $0xfe, %al
    mov %eax, %cr0
    ljmp $0xf000, $real_back

real_back:                      # real mode
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    STEP 'R'
    call nl
    PUTS "pm16: cs="
    mov RES + 0x00, %ax
    call hex16
    PUTS " msw="
    mov RES + 0x02, %ax
    call hex16
    PUTS " call="
    mov RES + 0x04, %ax
    call hex16
    PUTS "\npm32: cs="
    mov RES + 0x06, %ax
    call hex16
    PUTS " bswap="
    mov RES + 0x08, %eax
    call hex32
    PUTS " esp="
    mov RES + 0x0c, %eax
    call hex32
    PUTS "\npae: linear="
    mov RES + 0x10, %eax
    call hex32
    PUTS " physical="
    mov RES + 0x14, %eax
    call hex32
    PUTS "\nia32e: efer="
    mov RES + 0x18, %eax
    call hex32
    PUTS "\nlm64: mul="
    mov RES + 0x2c, %eax
    call hex32
    mov RES + 0x28, %eax
    call hex32
    mov RES + 0x24, %eax
    call hex32
    mov RES + 0x20, %eax
    call hex32
    PUTS " rip="
    mov RES + 0x34, %eax
    call hex32
    mov RES + 0x30, %eax
    call hex32
    PUTS " rsp="
    mov RES + 0x48, %eax
    call hex32
    PUTS "\ncompat: cs="
    mov RES + 0x38, %ax
    call hex16
    PUTS " efer after="
    mov RES + 0x3c, %eax
    call hex32
    PUTS " cr0="
    mov RES + 0x40, %eax
    call hex32
    PUTS "\nreal: cr0="
    mov %cr0, %eax
    call hex32
    PUTS " cs="
    mov %cs, %ax
    call hex16
    call nl
    int3
    nop
    nop
    END_MARKER

.p2align 3
gdt:
    .quad 0
    .quad 0x00009a0f0000ffff    # 0x08: 16-bit code, base 0xF0000, 64 KiB
    .quad 0x000092000000ffff    # 0x10: 16-bit data, base 0, 64 KiB
    .quad 0x00cf9a000000ffff    # 0x18: 32-bit code, flat
    .quad 0x00cf92000000ffff    # 0x20: 32-bit data, flat
    .quad 0x00af9a000000ffff    # 0x28: 64-bit code
gdtdesc:
    .word 47
    .long ROMBASE + gdt

REAL_HELPERS
RESET_VECTOR
