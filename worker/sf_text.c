/*  =========================================================================
    sf_text - hygiene for free-form text the worker puts on the wire
    =========================================================================
*/
#include "sf_worker_classes.h"

//  Length of the well-formed sequence at p, or 0 if there is none

static size_t
s_sequence (const unsigned char *p)
{
    unsigned char c = *p;
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    }
    else
    if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    }
    else
    if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    }
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p [i] & 0xC0) != 0x80)     //  also stops at the NUL
            return 0;
        cp = (cp << 6) | (p [i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
    ||  (len == 4 && cp < 0x10000) || cp > 0x10FFFF
    ||  (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

char *
sf_text_utf8_fix (char *text)
{
    assert (text);
    unsigned char *p = (unsigned char *) text;
    while (*p) {
        size_t len = s_sequence (p);
        if (len == 0) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_text_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_text: ");
    //  @selftest
    char good [] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 plain";
    sf_text_utf8_fix (good);
    assert (streq (good, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 plain"));
    char cut [] = "abc\xe2\x82";                //  truncated euro sign
    assert (streq (sf_text_utf8_fix (cut), "abc??"));
    char bad [] = "x\xc0\xafy\xed\xa0\x80z\xff";   //  overlong, surrogate, 0xff
    assert (streq (sf_text_utf8_fix (bad), "x??y???z?"));
    char latin1 [] = "qemu-img: caf\xe9: No such file";
    assert (streq (sf_text_utf8_fix (latin1), "qemu-img: caf?: No such file"));
    //  @end
    printf ("OK\n");
}
