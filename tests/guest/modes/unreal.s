# unreal.s: unreal ("big real") mode as firmware uses it. Protected mode is entered only to load
# DS, ES, FS and GS from a 4 GiB data descriptor; back in real mode those segments keep the 4 GiB
# limit, so 32-bit offsets reach memory above 1 MiB: stores and loads through each of them,
# a 67h REP MOVSB above 1 MiB, and a real-mode segment load (MOV DS) that changes the base but
# keeps the limit. Without the kept limit the emulator raises #GP, which the IVT handler prints
# (and QEMU does not). Then, through the 4 GiB FS as firmware does, the local APIC is put in
# virtual-wire mode, and a hardware interrupt (the PIT through the i8259, vector 8) wakes HLT and
# runs its handler through the IVT. Built into a 64 KiB ROM (see common.inc).
.include "common.inc"
.code16
.text
start:
    REAL_INIT
    PUTS "unreal: entering\n"
    lgdtl %cs:gdtdesc
    mov %cr0, %eax
    or $1, %al
    mov %eax, %cr0
    mov $0x08, %bx
    mov %bx, %ds
    mov %bx, %es
    mov %bx, %fs
    mov %bx, %gs
    and $0xfe, %al
    mov %eax, %cr0
    xor %ax, %ax
    mov %ax, %ds                # real-mode loads: base 0 again, the 4 GiB limit stays
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %cr0, %eax
    PUTS "cr0="
    call hex32
    call nl

    addr32 movl $0x11111111, %ds:0x200000
    addr32 movl $0x22222222, %es:0x200004
    addr32 movl $0x33333333, %fs:0x200008
    addr32 movl $0x44444444, %gs:0x20000c
    mov $0x200000, %esi
    PUTS "ds/es/fs/gs:"
    mov $4, %cx
1:  addr32 lodsl
    call sp_
    call hex32
    loop 1b
    call nl

    # a 67h string copy above 1 MiB: the ROM's first 64 bytes to 0x300000
    mov $ROMBASE, %esi
    mov $0x300000, %edi
    mov $64, %ecx
    cld
    addr32 rep movsb
    PUTS "copy: esi="
    mov %esi, %eax
    call hex32
    PUTS " edi="
    mov %edi, %eax
    call hex32
    PUTS " ecx="
    mov %ecx, %eax
    call hex32
    PUTS " first="
    addr32 mov %ds:0x300000, %eax
    call hex32
    call nl

    # DS = 0x1000 (base 0x10000): a 32-bit offset is added to the new base
    mov $0x1000, %ax
    mov %ax, %ds
    addr32 mov %ds:0x1f0000, %eax      # linear 0x200000
    PUTS "rebased: "
    call hex32
    addr32 movl $0xcafef00d, %ds:0x2f0010 # linear 0x300010
    xor %ax, %ax
    mov %ax, %ds
    addr32 mov %ds:0x300010, %eax
    call sp_
    call hex32
    call nl

    # 32-bit addressing with a base and index register
    mov $0x200000, %ebx
    mov $2, %ecx
    mov (%ebx,%ecx,4), %eax
    PUTS "sib: "
    call hex32
    call nl
    # the i8259 pair: vectors 8-15 and 0x70-0x77, every line masked (the windows with IF set
    # below must not take the PIT's power-on interrupts)
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xa0
    mov $0x08, %al
    out %al, $0x21
    mov $0x70, %al
    out %al, $0xa1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xa1
    mov $0xff, %al
    out %al, $0x21
    out %al, $0xa1

# ---- a hardware interrupt: IRQ 0 (the PIT, 1 ms) through the i8259 to vector 8 ----
    PUTS "irq:"
    movw $irq0, 0x20
    movw $0xf000, 0x22
    movw $0, 0x400
    mov $0x34, %al              # PIT channel 0, mode 2, count 1193
    out %al, $0x43
    mov $0xa9, %al
    out %al, $0x40
    mov $0x04, %al
    out %al, $0x40
    # the local APIC in virtual-wire mode, as firmware sets it up: software-enabled, LINT0 ExtINT
    # (QEMU resets LINT0 masked; vmd resets the BSP's to ExtINT already)
    addr32 movl $0x1ff, %fs:0xfee000f0
    addr32 movl $0x700, %fs:0xfee00350
    mov $0xfe, %al              # unmask IRQ 0 only
    out %al, $0x21
    sti
1:  hlt
    cmpw $0, 0x400
    je 1b
    cli
    mov $0xff, %al
    out %al, $0x21
    PUTS " taken, handler flags "
    mov 0x402, %ax
    call hex16
    PUTS " cs "
    mov 0x404, %ax
    call hex16
    call nl

    END_MARKER

irq0:
    push %ax
    incw 0x400
    pushf
    pop %ax
    and $0x200, %ax             # IF: clear in the handler
    mov %ax, 0x402
    mov %cs, 0x404
    mov $0x20, %al              # EOI
    out %al, $0x20
    pop %ax
    iret

.p2align 3
gdt:
    .quad 0
    .quad 0x00cf92000000ffff    # 0x08: data, base 0, limit 4 GiB
gdtdesc:
    .word 15
    .long ROMBASE + gdt

REAL_HELPERS
RESET_VECTOR
