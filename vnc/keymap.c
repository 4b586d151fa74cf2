/* keymap: keysym -> set-1 scan codes. Characters map to the key that types them on a US layout
 * (the client sends Shift separately), so 'A' and 'a' are both key 0x1E. */
#include "vnc/keymap.h"

#include <rfb/keysym.h>

/* Set-1 make codes for ASCII 0x20..0x7E, by the key that produces them. */
static const uint8_t ascii_keys[95] = {
    /* space ! " # $ % & ' */ 0x39, 0x02, 0x28, 0x04, 0x05, 0x06, 0x08, 0x28,
    /* ( ) * + , - . /     */ 0x0A, 0x0B, 0x09, 0x0D, 0x33, 0x0C, 0x34, 0x35,
    /* 0-9                 */ 0x0B, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A,
    /* : ; < = > ? @       */ 0x27, 0x27, 0x33, 0x0D, 0x34, 0x35, 0x03,
    /* A-Z                 */ 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32,
                              0x31, 0x18, 0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, 0x2D, 0x15, 0x2C,
    /* [ \ ] ^ _ `         */ 0x1A, 0x2B, 0x1B, 0x07, 0x0C, 0x29,
    /* a-z                 */ 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32,
                              0x31, 0x18, 0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, 0x2D, 0x15, 0x2C,
    /* { | } ~             */ 0x1A, 0x2B, 0x1B, 0x29,
};

struct special_key {
    uint32_t keysym;
    uint8_t code;
    uint8_t extended; /* needs the 0xE0 prefix */
};

static const struct special_key special_keys[] = {
    {XK_BackSpace, 0x0E, 0}, {XK_Tab, 0x0F, 0},       {XK_Return, 0x1C, 0},    {XK_Escape, 0x01, 0},
    {XK_Delete, 0x53, 1},    {XK_Home, 0x47, 1},      {XK_End, 0x4F, 1},       {XK_Page_Up, 0x49, 1},
    {XK_Page_Down, 0x51, 1}, {XK_Left, 0x4B, 1},      {XK_Up, 0x48, 1},        {XK_Right, 0x4D, 1},
    {XK_Down, 0x50, 1},      {XK_Insert, 0x52, 1},    {XK_Shift_L, 0x2A, 0},   {XK_Shift_R, 0x36, 0},
    {XK_Control_L, 0x1D, 0}, {XK_Control_R, 0x1D, 1}, {XK_Alt_L, 0x38, 0},     {XK_Alt_R, 0x38, 1},
    {XK_Meta_L, 0x38, 0},    {XK_Caps_Lock, 0x3A, 0}, {XK_Num_Lock, 0x45, 0},  {XK_Scroll_Lock, 0x46, 0},
    {XK_F1, 0x3B, 0},        {XK_F2, 0x3C, 0},        {XK_F3, 0x3D, 0},        {XK_F4, 0x3E, 0},
    {XK_F5, 0x3F, 0},        {XK_F6, 0x40, 0},        {XK_F7, 0x41, 0},        {XK_F8, 0x42, 0},
    {XK_F9, 0x43, 0},        {XK_F10, 0x44, 0},       {XK_F11, 0x57, 0},       {XK_F12, 0x58, 0},
    {XK_KP_Enter, 0x1C, 1},  {XK_Super_L, 0x5B, 1},   {XK_Super_R, 0x5C, 1},   {XK_Menu, 0x5D, 1},
};

size_t keysym_to_scancodes(uint32_t keysym, int down, uint8_t out[4])
{
    uint8_t code = 0, ext = 0;
    if (keysym >= 0x20 && keysym <= 0x7E) {
        code = ascii_keys[keysym - 0x20];
    } else {
        for (size_t i = 0; i < sizeof(special_keys) / sizeof(special_keys[0]); i++) {
            if (special_keys[i].keysym == keysym) {
                code = special_keys[i].code;
                ext = special_keys[i].extended;
                break;
            }
        }
    }
    if (!code) return 0;
    size_t n = 0;
    if (ext) out[n++] = 0xE0;
    out[n++] = down ? code : (uint8_t)(code | 0x80);
    return n;
}
