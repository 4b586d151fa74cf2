/* vnc_test_client: see vnc_test_client.h. */
#include "tests/unit/vnc_test_client.h"

#include <rfb/rfbclient.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* The password to answer with; libvncclient asks through a callback without user data. */
static const char *g_probe_password;

static char *probe_get_password(rfbClient *cl)
{
    (void)cl;
    return strdup(g_probe_password ? g_probe_password : "");
}

static void probe_got_update(rfbClient *cl, int x, int y, int w, int h)
{
    (void)x, (void)y, (void)w, (void)h;
    struct vnc_probe *p = rfbClientGetClientData(cl, (void *)probe_got_update);
    if (p) p->updates++;
}

static void quiet_log(const char *fmt, ...) { (void)fmt; }

int vnc_probe_parse_addr(const char *addr, char host[128], int *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= 128) return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

int vnc_probe_connect(struct vnc_probe *p, const char *host, int port, const char *password)
{
    memset(p, 0, sizeof(*p));
    rfbClientLog = quiet_log;
    rfbClientErr = quiet_log;
    rfbClient *cl = rfbGetClient(8, 3, 4);
    if (!cl) return -1;
    g_probe_password = password;
    cl->GetPassword = probe_get_password;
    cl->GotFrameBufferUpdate = probe_got_update;
    free(cl->serverHost);
    cl->serverHost = strdup(host);
    cl->serverPort = port;
    cl->canHandleNewFBSize = FALSE;
    rfbClientSetClientData(cl, (void *)probe_got_update, p);
    int argc = 0;
    if (!rfbInitClient(cl, &argc, NULL)) return -1; /* frees cl */
    p->client = cl;
    return 0;
}

unsigned vnc_probe_pump(struct vnc_probe *p, int timeout_ms)
{
    rfbClient *cl = p->client;
    unsigned before = p->updates;
    struct timeval start, now;
    gettimeofday(&start, NULL);
    for (;;) {
        gettimeofday(&now, NULL);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
        if (elapsed >= timeout_ms) break;
        int n = WaitForMessage(cl, (unsigned)(timeout_ms - elapsed) * 1000);
        if (n < 0) break;
        if (n > 0 && !HandleRFBServerMessage(cl)) break;
    }
    return p->updates - before;
}

static char match_cell(rfbClient *cl, const struct vga_font *font, unsigned col, unsigned row)
{
    const uint32_t *fb = (const uint32_t *)cl->frameBuffer;
    unsigned w = (unsigned)cl->width;
    const uint32_t *cell = fb + row * FONT_HEIGHT * w + col * FONT_WIDTH;
    uint32_t bg = cell[0]; /* the top-left pixel is background in every VGA glyph */
    uint8_t bits[FONT_HEIGHT];
    for (unsigned y = 0; y < FONT_HEIGHT; y++) {
        bits[y] = 0;
        for (unsigned x = 0; x < FONT_WIDTH; x++)
            if (cell[y * w + x] != bg) bits[y] |= (uint8_t)(0x80 >> x);
    }
    /* Compare the top 14 scan lines: the bottom two may carry the cursor underline. */
    for (int c = 0x20; c < 0x7f; c++)
        if (!memcmp(bits, font->glyph[c], 14)) return (char)c;
    return '?';
}

void vnc_probe_row(struct vnc_probe *p, const struct vga_font *font, unsigned row, char out[81])
{
    for (unsigned c = 0; c < 80; c++) out[c] = match_cell(p->client, font, c, row);
    out[80] = 0;
}

bool vnc_probe_screen_has(struct vnc_probe *p, const struct vga_font *font, const char *text)
{
    char line[81];
    for (unsigned r = 0; r < 25; r++) {
        vnc_probe_row(p, font, r, line);
        if (strstr(line, text)) return true;
    }
    return false;
}

void vnc_probe_key(struct vnc_probe *p, uint32_t keysym, bool down) { SendKeyEvent(p->client, keysym, down); }

void vnc_probe_type(struct vnc_probe *p, const char *text)
{
    for (const char *s = text; *s; s++) {
        uint32_t k = *s == '\n' ? 0xff0d /* XK_Return */ : (uint8_t)*s;
        bool shift = (*s >= 'A' && *s <= 'Z') || strchr("!@#$%^&*()_+{}|:\"<>?~", *s);
        if (shift) SendKeyEvent(p->client, 0xffe1 /* XK_Shift_L */, TRUE);
        SendKeyEvent(p->client, k, TRUE);
        SendKeyEvent(p->client, k, FALSE);
        if (shift) SendKeyEvent(p->client, 0xffe1, FALSE);
    }
}

void vnc_probe_close(struct vnc_probe *p)
{
    rfbClient *cl = p->client;
    if (cl) {
        free(cl->frameBuffer); /* the application owns the framebuffer libvncclient allocated */
        cl->frameBuffer = NULL;
        rfbClientCleanup(cl);
    }
    p->client = NULL;
}
