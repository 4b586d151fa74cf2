# mbtest: a multiboot v1 test kernel (GNU as, 32-bit). Built by the Makefile twice: as an ELF
# image (build/guest/mbtest-elf) and, with --defsym AOUT=1, as a flat binary whose header carries
# the a.out kludge addresses (flags bit 16: build/guest/mbtest-aout). Entered as the multiboot spec
# says (flat 32-bit protected mode, paging and interrupts off, EAX = 0x2BADB002, EBX = the info),
# it prints what the loader gave it on COM1, one "MB: " line each, and ends the VM through
# isa-debug-exit (port 0xf4) with 0x21: exit status (0x21<<1)|1 = 67. tests/integration/
# test_multiboot.sh runs it under vmd and QEMU and compares the lines.
        .code32
        .set MB_MAGIC, 0x1BADB002
        .ifdef AOUT
        .set MB_FLAGS, 0x00010003       # page-aligned modules, memory info, a.out kludge
        .else
        .set MB_FLAGS, 0x00000003
        .endif
        .set COM1, 0x3F8
        .set DEBUG_EXIT, 0xF4

        .text
        .globl _start
image_start:
        .align 4
mb_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)
        .ifdef AOUT
        .long mb_header                 # header_addr
        .long image_start               # load_addr
        .long data_end                  # load_end_addr
        .long bss_end                   # bss_end_addr
        .long _start                    # entry_addr
        .endif

_start:
        cli
        mov $stack_top, %esp
        mov %eax, saved_eax
        mov %ebx, saved_ebx

        mov $s_magic, %esi
        call puts
        mov saved_eax, %eax
        call puthex
        call newline

        mov saved_ebx, %ebx
        mov $s_flags, %esi
        call puts
        mov (%ebx), %eax
        call puthex
        call newline

        testl $1, (%ebx)                # mem_lower / mem_upper
        jz 1f
        mov $s_mem_lower, %esi
        call puts
        mov 4(%ebx), %eax
        call putdec
        call newline
        mov $s_mem_upper, %esi
        call puts
        mov 8(%ebx), %eax
        call putdec
        call newline
1:
        testl $4, (%ebx)                # cmdline: print what follows the first word (the kernel's path)
        jz 3f
        mov $s_cmdline, %esi
        call puts
        mov 16(%ebx), %esi
2:      lodsb
        test %al, %al
        jz 21f
        cmp $' ', %al
        jne 2b
        call puts
21:     call newline
3:
        testl $8, (%ebx)                # modules
        jz 5f
        mov $s_mods, %esi
        call puts
        mov 20(%ebx), %eax
        call putdec
        call newline
        cmpl $0, 20(%ebx)
        je 5f
        mov 24(%ebx), %edi              # the first module
        mov $s_mod_size, %esi
        call puts
        mov 4(%edi), %eax
        sub (%edi), %eax
        call putdec
        call newline
        mov $s_mod_aligned, %esi
        call puts
        mov (%edi), %eax
        and $0xFFF, %eax
        call yesno
        mov $s_mod_bytes, %esi
        call puts
        mov (%edi), %edi
        mov $8, %ecx
4:      movzbl (%edi), %eax
        call puthex2
        inc %edi
        dec %ecx
        jnz 4b
        call newline
5:
        testl $0x40, (%ebx)             # mmap: is there a RAM entry holding 1 MiB?
        jz 8f
        mov $s_mmap, %esi
        call puts
        mov 48(%ebx), %edi
        mov 44(%ebx), %edx
        add %edi, %edx                  # end of the map
        mov $1, %eax                    # "no" until found
6:      cmp %edx, %edi
        jae 7f
        cmpl $1, 20(%edi)               # type RAM
        jne 61f
        cmpl $0, 8(%edi)                # base below 4 GiB
        jne 61f
        mov 4(%edi), %ecx
        cmp $0x100000, %ecx
        ja 61f
        add 12(%edi), %ecx              # base + length (low 32 bits)
        cmp $0x100000, %ecx
        jbe 61f
        xor %eax, %eax
        jmp 7f
61:     add (%edi), %edi
        add $4, %edi
        jmp 6b
7:      call yesno
8:
        testl $0x200, (%ebx)            # boot loader name
        jz 9f
        mov $s_loader, %esi
        call puts
        mov 64(%ebx), %esi
        call puts
        call newline
9:
        mov $s_bss, %esi                # the loader zeroed the bss
        call puts
        mov bss_word, %eax
        call yesno

        mov $s_done, %esi
        call puts
        mov $0x21, %al
        out %al, $DEBUG_EXIT
10:     hlt
        jmp 10b

# putc: AL to COM1 once its transmitter holds nothing
putc:   push %edx
        push %eax
        mov $COM1 + 5, %dx
11:     in %dx, %al
        test $0x20, %al
        jz 11b
        pop %eax
        mov $COM1, %dx
        out %al, %dx
        pop %edx
        ret

# puts: the NUL-terminated string at ESI
puts:   push %eax
12:     lodsb
        test %al, %al
        jz 13f
        call putc
        jmp 12b
13:     pop %eax
        ret

newline:
        push %eax
        mov $'\n', %al
        call putc
        pop %eax
        ret

# yesno: "yes" if EAX is 0, else "no", and a newline
yesno:  push %esi
        mov $s_yes, %esi
        test %eax, %eax
        jz 14f
        mov $s_no, %esi
14:     call puts
        call newline
        pop %esi
        ret

# puthex: EAX as 0x%08x
puthex: push %eax
        mov $'0', %al
        call putc
        mov $'x', %al
        call putc
        pop %eax
        push %ecx
        mov $8, %ecx
15:     rol $4, %eax
        push %eax
        and $0xF, %eax
        mov hexdigits(%eax), %al
        call putc
        pop %eax
        dec %ecx
        jnz 15b
        pop %ecx
        ret

# puthex2: AL as two hex digits and a space
puthex2:
        push %eax
        push %eax
        shr $4, %eax
        and $0xF, %eax
        mov hexdigits(%eax), %al
        call putc
        pop %eax
        and $0xF, %eax
        mov hexdigits(%eax), %al
        call putc
        mov $' ', %al
        call putc
        pop %eax
        ret

# putdec: EAX in decimal
putdec: push %eax
        push %ecx
        push %edx
        push %edi
        mov $decbuf_end, %edi
        movb $0, (%edi)
        mov $10, %ecx
16:     xor %edx, %edx
        div %ecx
        add $'0', %dl
        dec %edi
        mov %dl, (%edi)
        test %eax, %eax
        jnz 16b
        mov %edi, %esi
        call puts
        pop %edi
        pop %edx
        pop %ecx
        pop %eax
        ret

hexdigits:      .ascii "0123456789abcdef"
s_magic:        .asciz "MB: magic "
s_flags:        .asciz "MB: flags "
s_mem_lower:    .asciz "MB: mem_lower "
s_mem_upper:    .asciz "MB: mem_upper "
s_cmdline:      .asciz "MB: cmdline args: "
s_mods:         .asciz "MB: mods_count "
s_mod_size:     .asciz "MB: mod0 size "
s_mod_aligned:  .asciz "MB: mod0 page-aligned "
s_mod_bytes:    .asciz "MB: mod0 first bytes "
s_mmap:         .asciz "MB: mmap RAM at 1 MiB "
s_loader:       .asciz "MB: boot loader "
s_bss:          .asciz "MB: bss zeroed "
s_done:         .asciz "MB: done, exiting through isa-debug-exit with 0x21\n"
s_yes:          .asciz "yes"
s_no:           .asciz "no"
        .align 4
saved_eax:      .long 0
saved_ebx:      .long 0
decbuf:         .skip 12
decbuf_end:     .byte 0
        .align 4
data_end:

        .bss
        .align 16
        .skip 4096
stack_top:
bss_word:       .skip 4
        .align 4
bss_end:
