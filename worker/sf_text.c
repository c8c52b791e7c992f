/*  =========================================================================
    sf_text - hygiene for free-form text the worker puts on the wire
    =========================================================================
*/
#include "sf_worker_classes.h"

char *
sf_text_utf8_fix (char *text)
{
    assert (text);
    unsigned char *p = (unsigned char *) text;
    while (*p) {
        size_t len = sf_utf8_seq_len ((const char *) p);
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
