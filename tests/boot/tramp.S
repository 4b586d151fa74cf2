/* tramp: 16-bit reset code for the QEMU cross-check BIOS image (see bootdump.c). Switches
 * straight from real mode to long mode with the GDT (0x500) and page tables (0x9000) that
 * boot_linux_load wrote, then enters the kernel exactly as boot_cpu_state describes the
 * BSP: CS 0x10, data 0x18, RSP 0x8FF0, RSI 0x7000, RIP 0x100200. Lives at 0xFF000. */
    .code16
    .org 0
start:
    cli
    lgdtl %cs:(gdtr - start + 0xF000)
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $0x9000, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmpl $0x10, $0xFF100
gdtr:
    .word 47
    .long 0x500
    .org 0x100
    .code64
long64:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    /* Virtual-wire mode, as a BIOS leaves the local APIC (and KVM resets its in-kernel one):
     * LINT0 ExtINT so 8259 interrupts reach a CPU whose kernel ignores the APIC, LINT1 NMI. */
    movl $0xFEE00000, %edi
    movl $0x700, 0x350(%rdi)
    movl $0x400, 0x360(%rdi)
    movq $0x8FF0, %rsp
    movq $0x7000, %rsi
    movq $0x100200, %rax
    jmpq *%rax
