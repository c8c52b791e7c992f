/*  =========================================================================
    sf_conv - disk conversion interface: turn a disk and its whole backing
    chain into one standalone qcow2 file

    The production driver runs `qemu-img convert` as a child process that
    a cancel stops at once, and that is stopped when it stops making
    progress (a slow conversion that moves is never stopped). Drivers fill
    the table in sf_conv_driver.h; sf_conv_new picks a production one by
    name, sf_conv_new_with takes any (a test injects its own). One
    sf_conv_t may be shared by every task thread: converting changes
    nothing in it.

    A conversion writes DST.tmp and renames it to DST only on success, so a
    file named DST is always complete; on any failure nothing is left.
    =========================================================================
*/
#ifndef SF_CONV_H_INCLUDED
#define SF_CONV_H_INCLUDED

typedef struct _sf_conv_t sf_conv_t;
typedef struct _sf_conv_driver_t sf_conv_driver_t;     //  sf_conv_driver.h

//  Select a production converter: "qemu-img" (NULL means this). Returns
//  NULL with err (SF_EINVAL) for an unknown name. Caller owns the result.
sf_conv_t *
    sf_conv_new (const char *driver, sf_err_t *err);

//  A converter on driver (any driver, a test's own included; borrowed,
//  static). Caller owns the result.
sf_conv_t *
    sf_conv_new_with (const sf_conv_driver_t *driver);

//  The stall timeout: a converter that makes no progress for this long
//  ([conversion] stall_timeout, ms > 0) is stopped and the conversion fails
//  with SF_ETIMEDOUT. Default SF_CONV_STALL_MS. Only drivers that can see
//  progress use it (qemu-img: its -p percentage and the bytes it wrote).
#define SF_CONV_STALL_MS    120000
void
    sf_conv_set_stall_timeout (sf_conv_t *self, int64_t stall_ms);
int64_t
    sf_conv_stall_timeout (sf_conv_t *self);

//  The IO limit of a conversion, bytes per second of data read ([conversion]
//  rate_limit; 0 = none, the default): qemu-img's -r. A file-cold guest
//  stays paused the longer for it; what it buys is a disk that other guests
//  can still use while a large conversion runs.
void
    sf_conv_set_rate_limit (sf_conv_t *self, uint64_t bytes_per_s);
uint64_t
    sf_conv_rate_limit (sf_conv_t *self);

//  The progress of a running `qemu-img ... -p` (conversion, restore): its
//  last percentage and the bytes it has put in its output file. One that
//  moves by either is never stopped; one that stays still for stall_ms is.
typedef struct {
    double pct;                     //  last percentage seen, -1 = none yet
    uint64_t bytes;                 //  allocated bytes of the output
    int64_t moved;                  //  mono ms of the last change
} sf_conv_progress_t;

//  Start watching (now).
void
    sf_conv_progress_init (sf_conv_progress_t *progress);

//  Look at proc (a qemu-img run with -p, stdout captured) and its output
//  file out now. Returns 0, or -1 with err (SF_ETIMEDOUT "qemu-img made no
//  progress for 120 s at 37% (1.2 GiB written); stopped it") once nothing
//  moved for stall_ms: the caller stops it.
int
    sf_conv_progress_check (sf_conv_progress_t *progress, sf_proc_t *proc, const char *out,
                            int64_t stall_ms, sf_err_t *err);

//  Free. Nullifies *self_p.
void
    sf_conv_destroy (sf_conv_t **self_p);

//  Name of the selected driver.
const char *
    sf_conv_name (sf_conv_t *self);

//  Convert disk (its source, in its format, through its backing chain) to
//  a standalone qcow2 at dst. A message on cancel (may be NULL) stops it
//  with SF_ECANCELED; passing deadline_ms (monotonic, 0 = none) stops it
//  with SF_ETIMEDOUT. On success sets *bytes to the size of dst and returns
//  0; else returns -1 with err and leaves neither dst nor dst.tmp.
int
    sf_conv_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *dst,
                     zsock_t *cancel, int64_t deadline_ms, uint64_t *bytes,
                     sf_err_t *err);

//  Self test of this class
void
    sf_conv_test (bool verbose);

#endif
