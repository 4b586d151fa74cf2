# realmode.s: real mode as the reset vector leaves it. Prints the reset state (EDX's processor
# signature, CR0, the segment registers), then 16- and 32-bit (66h/67h) arithmetic with the
# flags each operation defines, string instructions with 16- and 32-bit addressing, INT/IRET
# through the IVT (and a 32-bit IRET), far CALL/RET/JMP, far-pointer loads (LDS LES LSS LFS
# LGS), and the exceptions #DE #BP #OF #BR #UD
# with the IP each reports. Built into a 64 KiB ROM (see common.inc).
.include "common.inc"
.code16
.text
start:
    mov %edx, %ebp              # the reset signature, before REAL_INIT uses DX
    mov %cr0, %ebx
    REAL_INIT
    PUTS "reset: edx="
    mov %ebp, %eax
    call hex32
    PUTS " cr0="
    mov %ebx, %eax
    call hex32
    PUTS " cs="
    mov %cs, %ax
    call hex16
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

# ---- arithmetic and flags (masks: only the flags each operation defines) ----
.macro FLAGS mask
    pushf
    pop %ax
    and $\mask, %ax
    call sp_
    call hex16
.endm
    PUTS "add16:"
    mov $0x7fff, %ax
    add $1, %ax
    FLAGS 0x8d5
    mov $0xffff, %cx
    add $1, %cx
    FLAGS 0x8d5
    mov %cx, %ax
    call sp_
    call hex16
    call nl

    PUTS "sub32:"
    mov $0x12345678, %eax
    sub $0x87654321, %eax
    mov %eax, %esi
    FLAGS 0x8d5
    mov %esi, %eax
    call sp_
    call hex32
    call nl

    PUTS "adcsbb:"
    stc
    mov $0x80000000, %edx
    adc $0x7fffffff, %edx
    FLAGS 0x8d5
    stc
    mov $5, %bx
    sbb $5, %bx
    FLAGS 0x8d5
    mov %edx, %eax
    call sp_
    call hex32
    mov %bx, %ax
    call sp_
    call hex16
    call nl

    PUTS "logic:"
    mov $0xf0f0, %ax
    and $0x0ff0, %ax
    FLAGS 0x8c5
    mov $0x8000, %ax
    or $0x0001, %ax
    FLAGS 0x8c5
    mov $0x1234, %ax
    xor $0x1234, %ax
    FLAGS 0x8c5
    call nl

    PUTS "incdecneg:"
    mov $0x7f, %al
    inc %al
    FLAGS 0x8d4
    mov $0, %cx
    dec %cx
    FLAGS 0x8d4
    mov $0x8000, %ax
    neg %ax
    FLAGS 0x8d5
    call nl

    PUTS "shifts:"
    mov $0x8001, %ax
    shl $1, %ax
    FLAGS 0x8c5
    mov $0x8001, %ax
    sar $1, %ax
    FLAGS 0x8c5
    mov $0x12345678, %eax
    rol $8, %eax
    mov %eax, %esi
    FLAGS 0x001
    mov %esi, %eax
    call sp_
    call hex32
    mov $0x12345678, %eax
    shrd $4, %eax, %eax
    call sp_
    call hex32
    call nl

    PUTS "muldiv:"
    mov $0x1234, %ax
    mov $0x5678, %cx
    mul %cx
    FLAGS 0x801
    mov %dx, %ax
    call sp_
    call hex16
    mov $0x89abcdef, %eax
    mov $0x10, %ecx
    xor %edx, %edx
    div %ecx
    call sp_
    call hex32
    mov %edx, %eax
    call sp_
    call hex32
    mov $-7, %ax
    cwd
    mov $2, %cx
    idiv %cx
    call sp_
    call hex16
    mov %dx, %ax
    call sp_
    call hex16
    mov $0x1234, %ax
    imul $-3, %ax, %ax
    mov %ax, %si
    FLAGS 0x801
    mov %si, %ax
    call sp_
    call hex16
    call nl

    PUTS "bcd:"
    mov $0x19, %al
    add $0x28, %al
    daa
    call sp_
    call hex16
    mov $0x0009, %ax
    add $0x03, %al
    aaa
    call sp_
    call hex16
    call nl

# ---- string instructions: 16-bit SI/DI/CX and 32-bit (67h) ESI/EDI/ECX ----
    PUTS "strings:"
    xor %ax, %ax
    mov %ax, %es
    cld
    mov $0x1000, %di
    mov $0x5a, %al
    mov $16, %cx
    rep stosb
    mov $0x1000, %si
    mov $0x1100, %di
    mov $8, %cx
    rep movsw
    mov %di, %ax
    call sp_
    call hex16
    mov $0x1100, %si
    mov $0x1000, %di
    mov $16, %cx
    repe cmpsb
    mov %cx, %ax
    call sp_
    call hex16
    movl $0x11223344, 0x1200
    mov $0x1200, %esi
    mov $0x1300, %edi
    mov $1, %ecx
    addr32 rep movsl
    mov 0x1300, %eax
    call sp_
    call hex32
    mov %edi, %eax
    call sp_
    call hex32
    std
    mov $0x130f, %di
    mov $0x44, %al
    mov $0x20, %cx
    repne scasb
    cld
    mov %di, %ax
    call sp_
    call hex16
    mov %cx, %ax
    call sp_
    call hex16
    mov $0x1000, %si
    lodsw
    call sp_
    call hex16
    call nl

# ---- INT / IRET through the IVT ----
    PUTS "int:"
    movw $int40, 0x100
    movw $0xf000, 0x102
    movw $int41, 0x104
    movw $0xf000, 0x106
    mov $0x41, %ax
    sti
    int $0x40
    pushf
    pop %cx
    call sp_
    call hex16
    mov %cx, %ax
    and $0x200, %ax
    call sp_
    call hex16
    mov %bx, %ax
    call sp_
    call hex16
    int $0x41
    call sp_
    call hex32
    cli
    call nl

# ---- far transfers ----
    PUTS "far:"
    lcall $0xf000, $farproc
    call sp_
    call hex16
    lcalll $0xf000, $farproc32
    call sp_
    call hex32
    movw $farjmp_target, 0x200
    movw $0xf000, 0x202
    ljmp *0x200
back_from_far:
    call nl

# ---- far pointers: LDS LES LSS LFS LGS (m16:16, and 66h m16:32) ----
    PUTS "farptr:"
    movw $0x1234, 0x500
    movw $0x0050, 0x502
    mov %ss, %dx
    mov %sp, %bp
    lds 0x500, %si
    mov %ds, %ax
    call sp_
    call hex16
    xor %ax, %ax
    mov %ax, %ds
    les 0x500, %di
    lfs 0x500, %bx
    lgs 0x500, %cx
    mov %es, %ax
    call sp_
    call hex16
    mov %fs, %ax
    call sp_
    call hex16
    mov %gs, %ax
    call sp_
    call hex16
    mov %cx, %ax
    call sp_
    call hex16
    movl $0x00006ff0, 0x504
    movw $0x0000, 0x508
    lssl 0x504, %esp
    mov %esp, %eax
    call sp_
    call hex32
    mov %dx, %ss                # back to the stack as it was
    mov %bp, %sp
    xor %ax, %ax
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    call nl

# ---- exceptions: each handler prints the vector and the IP it saw, then resumes ----
    PUTS "exceptions:\n"
    xor %cx, %cx
    mov $1, %ax
de_insn:
    div %cx                     # #DE
    int3                        # #BP (a trap: the IP after it)
    nop
    nop
    mov $0x7f, %al
    add $1, %al                 # OF
    into                        # #OF
    nop
    nop
    movw $1, 0x300
    movw $3, 0x302
    mov $0x300, %bx
    mov $5, %ax
    bound %ax, (%bx)            # #BR
    ud2                         # #UD
    END_MARKER

int40:
    pushf
    pop %bx                     # FLAGS inside the handler: IF clear
    inc %ax
    iret

int41:
    mov $0xabcd1234, %eax
    pushl $0x2              # a 32-bit IRET frame built here: EFLAGS, CS, EIP
    pushl $0xf000
    pushl $int41_ret
    iretl
int41_ret:
    iret

farproc:
    mov %cs, %ax
    lret

farproc32:
    mov %esp, %eax
    lretl

farjmp_target:
    PUTS " jumped"
    ljmp $0xf000, $back_from_far

REAL_HELPERS
RESET_VECTOR
