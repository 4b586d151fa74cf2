/* vnc: a VNC server per VM (libvncserver), showing the VGA text console and typing into the
 * guest's keyboard. Listens on --vnc ADDR:PORT (loopback by default; PORT 0 picks a free port
 * from 5900 up), with VNC password authentication when a password file is given, and TLS
 * (websocket over TLS, libvncserver's secure transport) when a certificate and key are given.
 * Several viewers at once; a viewer that disconnects leaves the VM untouched.
 */
#ifndef VMD_VNC_H
#define VMD_VNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;
struct vnc_server;

#define VNC_COLS 80
#define VNC_ROWS 25

/* A snapshot of the text screen: VNC_COLS x VNC_ROWS cells of (character, attribute), and the
 * cursor as a cell index (or -1 when hidden). Returns false when there is no text screen. */
typedef bool (*vnc_text_source_fn)(void *opaque, uint8_t cells[VNC_ROWS * VNC_COLS * 2], int *cursor);
/* Keyboard: deliver set-1 scan codes to the guest. */
typedef void (*vnc_key_sink_fn)(void *opaque, const uint8_t *scancodes, size_t n);

struct vnc_options {
    const char *listen;        /* "ADDR:PORT" */
    const char *password_file; /* NULL: no authentication */
    const char *tls_cert, *tls_key;
    const char *font;          /* NULL: VMD_DEFAULT_FONT */
    vnc_text_source_fn text;
    vnc_key_sink_fn keys;
    void (*tick)(void *opaque); /* optional: called on every render pass (render thread) */
    void *opaque;
    unsigned refresh_hz;       /* 0: 60 */
};

int vnc_start(const struct vnc_options *o, struct vnc_server **out, char *err, size_t errlen);
void vnc_stop(struct vnc_server *s);
/* "ADDR:PORT" actually listened on. */
const char *vnc_address(const struct vnc_server *s);
/* Counters for tests and vm.info. */
unsigned vnc_client_count(const struct vnc_server *s);

/* Before a sandbox's privilege drop (vmm/sandbox.h): open the files the VNC console described by
 * vnc_spec ("ADDR:PORT[,password-file=F]...") reads each time the machine is built, the font and
 * the password file, and register them with host_files. TLS certificates are read by libvncserver
 * itself, by path, when a client connects: a spec naming them is refused (docs/security.md).
 * 0, or -errno with the reason in err. */
int vnc_console_preopen(const char *vnc_spec, char *err, size_t errlen);

#endif
