/* fw_cfg: the firmware configuration device that SeaBIOS (and OVMF, and Linux's qemu_fw_cfg
 * driver) read the machine's description from, with QEMU's guest interface:
 *   0x510  selector (16-bit write): picks an item and rewinds it
 *   0x511  data (read): the next byte(s) of the selected item; reads past its end return 0
 *   0x514  DMA address, big-endian 64-bit (high half at 0x514, low half at 0x518; writing the
 *          low half starts the transfer), as QEMU's fw_cfg DMA interface.
 * Items: the "QEMU" signature, the interface ID (traditional + DMA), the RAM size, the number of
 * CPUs, whether IRQ0 is overridden to GSI 2, and the file directory with named files
 * ("etc/e820", "bootorder", "etc/boot-fail-wait", "etc/sercon-port" from here; other parts of vmd
 * add theirs with fw_cfg_add_file). Guest writes to items are
 * refused (QEMU >= 2.4 does the same). A DMA request names guest memory: every address is
 * bounds-checked against RAM; a bad request sets the error bit, never touches host memory.
 */
#ifndef VMD_DEVICES_FW_CFG_H
#define VMD_DEVICES_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514

/* Selector values of the fixed items (QEMU's numbering, which firmware expects). */
#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_UUID 0x0002
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NOGRAPHIC 0x0004
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000f
#define FW_CFG_FILE_DIR 0x0019
#define FW_CFG_FILE_FIRST 0x0020
#define FW_CFG_IRQ0_OVERRIDE 0x8002 /* arch-specific: IRQ0 is routed to GSI 2 */
#define FW_CFG_ARCH_ITEMS 8
#define FW_CFG_MAX_FILES 128
#define FW_CFG_NAME_MAX 56 /* bytes of a file's name in the directory, NUL included */

/* FW_CFG_ID bits */
#define FW_CFG_VERSION 0x01
#define FW_CFG_VERSION_DMA 0x02

/* DMA control bits (big-endian in the guest's FWCfgDmaAccess) */
#define FW_CFG_DMA_ERROR 0x01
#define FW_CFG_DMA_READ 0x02
#define FW_CFG_DMA_SKIP 0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE 0x10

struct fw_cfg;
struct machine;

/* Add (or replace) the named file, copying data. Returns 0, -EINVAL for an empty or too long
 * name, -ENOSPC when the directory is full, -ENOMEM. Call with the machine being built (before
 * the vCPUs run) or with dev_lock held. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len);
/* The machine's fw_cfg device, or NULL. */
struct fw_cfg *fw_cfg_of(struct machine *m);

extern const struct device_desc fw_cfg_device;

#endif
