/*  =========================================================================
    sf_text - hygiene for free-form text the worker puts on the wire

    The scheduler drops any message with a string that is not valid UTF-8
    (sf_wire). Names and paths reach us as UTF-8 already (libxml2 and
    jansson guarantee it), but error texts do not: qemu-img's stderr is
    arbitrary bytes, and sf_err_t truncates at 256 bytes, possibly inside a
    multibyte character. Such text is repaired before it is sent, so that a
    job's result is never lost to its own error message.
    =========================================================================
*/
#ifndef SF_TEXT_H_INCLUDED
#define SF_TEXT_H_INCLUDED

//  Replace, in place, every byte that is not part of a well-formed UTF-8
//  sequence (no overlongs, no surrogates, <= U+10FFFF) with '?'. A
//  sequence cut off at the end is replaced too. Returns text.
char *
    sf_text_utf8_fix (char *text);

//  Self test of this class
void
    sf_text_test (bool verbose);

#endif
