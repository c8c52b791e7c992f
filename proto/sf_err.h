/*  =========================================================================
    sf_err - serializable error value, carried in JobResult to the CLI

    A function that can fail returns 0/-1 (or pointer/NULL) and fills an
    sf_err_t. The code is stable and travels on the wire; the text is one
    lower-case line without a trailing full stop, subject in single quotes.
    =========================================================================
*/
#ifndef SF_ERR_H_INCLUDED
#define SF_ERR_H_INCLUDED

#include <stddef.h>

//  Stable error codes (also sent on the wire; never renumber)
enum {
    SF_OK = 0,
    SF_EINVAL = 1,          //  bad argument or input
    SF_ENOENT = 2,          //  no such instance, job, file
    SF_EEXIST = 3,          //  already exists
    SF_EPROTO = 4,          //  malformed or unexpected message
    SF_EIO = 5,             //  I/O error, external tool failed
    SF_ENOTSUP = 6,         //  operation not supported by this driver
    SF_ETIMEDOUT = 7,       //  deadline passed
    SF_EBUSY = 8,           //  resource busy, limit reached
    SF_ESTATE = 9,          //  object in the wrong state for this operation
    SF_EHV = 10,            //  hypervisor (libvirt) error
    SF_ESTORE = 11,         //  image store error
    SF_EDB = 12,            //  scheduler database error
    SF_ENODE = 13,          //  node unreachable or down
    SF_ECANCELED = 14,      //  job cancelled
    SF_ECEPH = 15,          //  Ceph / librbd error
    SF_E_LAST
};

typedef struct {
    int code;               //  SF_E*
    char text [256];        //  human-readable, one line
} sf_err_t;

#define SF_ERR_INIT { 0, "" }

//  Set code and formatted text. Always returns -1 so callers can
//  "return sf_err_set (err, ...)". err may be NULL.
int
    sf_err_set (sf_err_t *err, int code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Prefix the existing text with a formatted context: "ctx: old text".
//  Returns -1.
int
    sf_err_prefix (sf_err_t *err, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Reset to no error.
void
    sf_err_clear (sf_err_t *err);

//  Stable short name of a code, e.g. "ENOENT"; "EUNKNOWN" if out of range.
const char *
    sf_err_name (int code);

//  Self test of this class
void
    sf_err_test (bool verbose);

#endif
