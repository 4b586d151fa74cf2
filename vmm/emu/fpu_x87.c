/* fpu_x87: the emulator's x87 instruction set (escape opcodes D8..DF).
 * First slice: the control instructions (FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW); the rest
 * raises #UD until the arithmetic part lands. */
#include "vmm/emu/fpu_internal.h"

static void x87_init(struct cpu_fxsave *fx)
{
    fx->fcw = 0x37F;
    fx->fsw = 0;
    fx->ftw = 0;
    fx->fop = 0;
    fx->fip = 0;
    fx->fdp = 0;
}

enum fpu_result fpu_x87_exec(const struct fpu_op *op, struct fpu_env *env)
{
    struct cpu_fxsave *fx = env->fx;
    if (env->cr0 & (CR0_EM | CR0_TS)) return FPU_NM;
    unsigned sub = (op->modrm >> 3) & 7;
    if (op->has_mem) {
        if (op->opcode == 0xD9 && sub == 5) { /* FLDCW */
            uint16_t v;
            env->read(env->ctx, op->ea, &v, 2);
            fx->fcw = v;
            return FPU_OK;
        }
        if (op->opcode == 0xD9 && sub == 7) { /* FNSTCW */
            env->write(env->ctx, op->ea, &fx->fcw, 2);
            return FPU_OK;
        }
        if (op->opcode == 0xDD && sub == 7) { /* FNSTSW m16 */
            env->write(env->ctx, op->ea, &fx->fsw, 2);
            return FPU_OK;
        }
        return FPU_UD;
    }
    if (op->opcode == 0xDB && op->modrm == 0xE3) { x87_init(fx); return FPU_OK; }   /* FNINIT */
    if (op->opcode == 0xDB && op->modrm == 0xE2) { fx->fsw &= 0x7F00; return FPU_OK; } /* FNCLEX */
    if (op->opcode == 0xDF && op->modrm == 0xE0) {                                      /* FNSTSW AX */
        env->gpr[GPR_RAX] = (env->gpr[GPR_RAX] & ~0xFFFFull) | fx->fsw;
        return FPU_OK;
    }
    return FPU_UD;
}
