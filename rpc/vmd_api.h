/* vmd_api: the parameter specification of every vmd method, as C data. It mirrors
 * rpc/openrpc.json (the machine-readable API document); tests/unit/test_vmd_api.c checks
 * that the two agree, so the daemon's parameter and role checks cannot drift from the spec. */
#ifndef VMD_RPC_VMD_API_H
#define VMD_RPC_VMD_API_H

#include <stddef.h>

#include "jsonrpc.h"

#define VMD_API_MAX_PARAMS 16

struct vmd_api_method {
    const char *name;
    size_t nparams;
    struct rpc_param_spec params[VMD_API_MAX_PARAMS];
    bool read_only; /* the read-only role may call it ("x-role": "read-only" in openrpc.json); else admin only */
};

extern const struct vmd_api_method vmd_api_methods[];
extern const size_t vmd_api_nmethods;

const struct vmd_api_method *vmd_api_find(const char *name);

#endif
