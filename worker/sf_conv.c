/*  =========================================================================
    sf_conv - disk conversion interface: dispatch and the DST.tmp + rename
    rule
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_driver.h"
#include "sf_conv_fake.h"                //  the self-test's converter

#include <sys/stat.h>
#include <unistd.h>

//  Structure of our class

struct _sf_conv_t {
    const sf_conv_driver_t *driver;     //  Selected driver, never NULL
    int64_t stall_ms;                   //  see sf_conv_set_stall_timeout
    uint64_t rate;                      //  see sf_conv_set_rate_limit
};

SF_LOG_MODULE ("worker.conv");

//  The production drivers, by name (a test hands its own to sf_conv_new_with)
static const sf_conv_driver_t *s_drivers [] = {
    &sf_conv_qemu_driver,
    NULL
};

//  --------------------------------------------------------------------------
//  Constructor

sf_conv_t *
sf_conv_new (const char *driver, sf_err_t *err)
{
    const char *name = driver ? driver : "qemu-img";
    for (const sf_conv_driver_t **entry = s_drivers; *entry; entry++)
        if (streq ((*entry)->name, name))
            return sf_conv_new_with (*entry);
    sf_err_set (err, SF_EINVAL, "unknown converter '%s'", name);
    return NULL;
}

sf_conv_t *
sf_conv_new_with (const sf_conv_driver_t *driver)
{
    assert (driver);
    sf_conv_t *self = (sf_conv_t *) zmalloc (sizeof (sf_conv_t));
    self->driver = driver;
    self->stall_ms = SF_CONV_STALL_MS;
    return self;
}

void
sf_conv_set_stall_timeout (sf_conv_t *self, int64_t stall_ms)
{
    assert (self && stall_ms > 0);
    self->stall_ms = stall_ms;
}

int64_t
sf_conv_stall_timeout (sf_conv_t *self)
{
    assert (self);
    return self->stall_ms;
}

//  --------------------------------------------------------------------------
//  Progress of a running qemu-img

//  The last percentage qemu-img -p printed ("    (37.00/100%)\r"), -1 if
//  none yet

static double
s_progress (const char *out)
{
    const char *mark = NULL;
    for (const char *at = strstr (out, "/100%)"); at; at = strstr (at + 1, "/100%)"))
        mark = at;
    const char *open = mark;
    while (open && open > out && open [-1] != '(')
        open--;
    if (!open || open == out)
        return -1;
    return strtod (open, NULL);
}

//  "120 s", or "1500 ms" for what is not whole seconds

static const char *
s_duration (int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRId64 " s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 " ms", ms);
    return buf;
}

void
sf_conv_progress_init (sf_conv_progress_t *progress)
{
    assert (progress);
    *progress = (sf_conv_progress_t) { -1, 0, sf_time_mono_ms () };
}

int
sf_conv_progress_check (sf_conv_progress_t *progress, sf_proc_t *proc, const char *out,
                        int64_t stall_ms, sf_err_t *err)
{
    assert (progress && proc && out);
    int64_t now = sf_time_mono_ms ();
    double pct = s_progress (sf_proc_stdout (proc));
    //  Allocated bytes, so that a preallocated or sparse file counts what
    //  was written
    struct stat st;
    uint64_t bytes = stat (out, &st) ? 0 : (uint64_t) st.st_blocks * 512;
    if (pct > progress->pct || bytes != progress->bytes) {
        progress->pct = pct > progress->pct ? pct : progress->pct;
        progress->bytes = bytes;
        progress->moved = now;
        return 0;
    }
    if (now - progress->moved < stall_ms)
        return 0;
    char took [32], size [32];
    return sf_err_set (err, SF_ETIMEDOUT, "qemu-img made no progress for %s at %.0f%% (%s "
                       "written); stopped it", s_duration (stall_ms, took, sizeof (took)),
                       progress->pct < 0 ? 0 : progress->pct,
                       sf_format_size (bytes, size, sizeof (size)));
}

void
sf_conv_set_rate_limit (sf_conv_t *self, uint64_t bytes_per_s)
{
    assert (self);
    self->rate = bytes_per_s;
}

uint64_t
sf_conv_rate_limit (sf_conv_t *self)
{
    assert (self);
    return self->rate;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_conv_destroy (sf_conv_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
sf_conv_name (sf_conv_t *self)
{
    assert (self);
    return self->driver->name;
}

int
sf_conv_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *dst,
                 zsock_t *cancel, int64_t deadline_ms, uint64_t *bytes, sf_err_t *err)
{
    assert (self && disk && dst && bytes);
    if (!disk->source || !*disk->source)
        return sf_err_set (err, SF_EINVAL, "disk '%s' has no source", disk->target);
    char *tmp = zsys_sprintf ("%s.tmp", dst);
    //  The converter writes into a file made here, O_EXCL|O_NOFOLLOW: a
    //  leftover of a killed worker, or a link planted there, is removed,
    //  never followed; nor is a link at dst replaced
    int fd = sf_file_create_tmp (tmp, SF_FILE_MODE);
    int rc = fd == -1 ? sf_err_set (err, SF_EIO, "cannot create '%s': %s", tmp,
                                    strerror (errno)) : 0;
    if (fd != -1)
        close (fd);
    if (rc == 0)
        rc = self->driver->convert (self, disk, tmp, cancel, deadline_ms, err);
    struct stat st;
    if (rc == 0 && (lstat (tmp, &st) || !S_ISREG (st.st_mode) || st.st_size == 0))
        rc = sf_err_set (err, SF_EIO, "converter left no image in '%s'", tmp);
    if (rc == 0 && sf_path_is_symlink (dst))
        rc = sf_err_set (err, SF_EIO, "cannot rename '%s': '%s' is a symbolic link", tmp,
                         dst);
    if (rc == 0 && rename (tmp, dst))
        rc = sf_err_set (err, SF_EIO, "cannot rename '%s': %s", tmp, strerror (errno));
    if (rc == 0)
        *bytes = (uint64_t) st.st_size;
    else
        unlink (tmp);
    zstr_free (&tmp);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_shell (const char *format, const char *dir)
{
    char *cmd = zsys_sprintf (format, dir, dir, dir);
    assert (system (cmd) == 0);         //  test setup only, not product code
    zstr_free (&cmd);
}

//  A file disk target at dir/file in format (NULL: none in the XML)

static sf_hv_disk_t *
s_test_disk (const char *target, const char *dir, const char *file, const char *format)
{
    sf_hv_disk_t *disk = sf_hv_disk_new ();
    disk->target = strdup (target);
    disk->type = SF_DISK_FILE;
    disk->source = zsys_sprintf ("%s/%s", dir, file);
    disk->format = format ? strdup (format) : NULL;
    return disk;
}

//  Put a qemu-img first on PATH that logs its arguments to dir/argv.log,
//  one call a line, then runs the real one. Returns the old PATH.

static char *
s_test_argv_logger (const char *dir)
{
    char *real = NULL;
    FILE *which = popen ("command -v qemu-img", "r");
    char line [4096] = "";
    assert (which && fgets (line, sizeof (line), which));
    pclose (which);
    line [strcspn (line, "\n")] = 0;
    real = strdup (line);
    char *bin = zsys_sprintf ("%s/bin", dir);
    assert (mkdir (bin, 0700) == 0);
    char *script = zsys_sprintf ("%s/qemu-img", bin);
    FILE *file = fopen (script, "w");
    assert (file);
    fprintf (file, "#!/bin/sh\nprintf '%%s\\n' \"$*\" >> '%s/argv.log'\nexec '%s' \"$@\"\n",
             dir, real);
    fclose (file);
    assert (chmod (script, 0700) == 0);
    char *old = strdup (getenv ("PATH"));
    char *path = zsys_sprintf ("%s:%s", bin, old);
    setenv ("PATH", path, 1);
    zstr_free (&path);
    zstr_free (&script);
    zstr_free (&bin);
    free (real);
    return old;
}

//  The last line of dir/argv.log (caller frees)

static char *
s_test_argv_last (const char *dir)
{
    char *log = zsys_sprintf ("%s/argv.log", dir);
    FILE *file = fopen (log, "r");
    assert (file);
    char line [8192], last [8192] = "";
    while (fgets (line, sizeof (line), file))
        snprintf (last, sizeof (last), "%s", line);
    fclose (file);
    zstr_free (&log);
    last [strcspn (last, "\n")] = 0;
    return strdup (last);
}

//  Every qemu-img call names the format (raw when the XML names none, so
//  a guest's raw disk written to look like a qcow2 is never read as one)
//  and puts "--" before the paths; a source starting with '-' never runs

static void
s_test_argv (sf_conv_t *conv, const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    char *old_path = s_test_argv_logger (dir);
    s_test_shell ("cd %s && head -c 1048576 /dev/urandom > secret.raw && "
                  "qemu-img create -q -f qcow2 -F raw -b %s/secret.raw evil.img && "
                  "true %s", dir);
    sf_hv_disk_t *disk = s_test_disk ("vdb", dir, "evil.img", NULL);
    char *dst = zsys_sprintf ("%s/evil.qcow2", dir);
    uint64_t bytes = 0;
    assert (sf_hv_disk_probe (disk, NULL, &err) == 0);
    char *line = s_test_argv_last (dir);
    char *want = zsys_sprintf ("info -U --output=json -f raw --backing-chain -- %s/evil.img",
                               dir);
    assert (streq (line, want));
    assert (zlistx_size (disk->backing_chain) == 0);    //  raw: no chain read
    struct stat st;
    assert (stat (disk->source, &st) == 0 && disk->virtual_size >= (uint64_t) st.st_size);
    assert (disk->virtual_size < 1048576);              //  not the secret's size
    zstr_free (&want);
    zstr_free (&line);

    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    line = s_test_argv_last (dir);
    want = zsys_sprintf ("convert -p -U -f raw -O qcow2 -- %s/evil.img %s/evil.qcow2.tmp",
                         dir, dir);
    assert (streq (line, want));
    zstr_free (&want);
    zstr_free (&line);
    //  The copy is the file's own bytes, not the secret it points at
    s_test_shell ("cd %s && qemu-img compare -q -f raw -F qcow2 evil.img evil.qcow2 && "
                  "! qemu-img compare -q -f raw -F qcow2 secret.raw evil.qcow2 && true %s %s",
                  dir);
    free (disk->format);
    disk->format = strdup ("qcow2");
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    line = s_test_argv_last (dir);
    assert (strstr (line, "convert -p -U -f qcow2 -O qcow2 -- "));
    zstr_free (&line);


    //  A source that would read as an option is refused before any run
    free (disk->source);
    disk->source = strdup ("-Uevil");
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "source of disk 'vdb' starts with '-'"));
    assert (sf_hv_disk_probe (disk, NULL, &err) == -1 && err.code == SF_EINVAL);
    line = s_test_argv_last (dir);
    assert (strstr (line, "convert -p -U -f qcow2 -O qcow2 -- "));     //  no new call
    zstr_free (&line);

    //  [conversion] rate_limit is qemu-img's -r, and it does hold: 4 MiB
    //  of data at 1 MiB/s takes about 2 s (qemu-img lets its first 2 MiB pass)
    assert (sf_conv_rate_limit (conv) == 0);
    sf_conv_set_rate_limit (conv, 1024 * 1024);
    s_test_shell ("cd %s && head -c 4194304 /dev/urandom > slow.raw && true %s %s", dir);
    sf_hv_disk_t *slow = s_test_disk ("vdc", dir, "slow.raw", "raw");
    int64_t start = sf_time_mono_ms ();
    assert (sf_conv_convert (conv, slow, dst, NULL, 0, &bytes, &err) == 0);
    int64_t took = sf_time_mono_ms () - start;
    line = s_test_argv_last (dir);
    assert (strstr (line, "convert -p -U -f raw -O qcow2 -r 1048576 -- "));
    assert (took >= 1500);
    zstr_free (&line);
    sf_hv_disk_destroy (&slow);
    sf_conv_set_rate_limit (conv, 0);
    setenv ("PATH", old_path, 1);
    free (old_path);
    zstr_free (&dst);
    sf_hv_disk_destroy (&disk);
}

//  A qemu-img first on PATH that is this shell script body

static char *
s_test_fake_qemu (const char *dir, const char *body)
{
    char *bin = zsys_sprintf ("%s/fakebin", dir);
    mkdir (bin, 0700);
    char *script = zsys_sprintf ("%s/qemu-img", bin);
    FILE *file = fopen (script, "w");
    assert (file);
    fprintf (file, "#!/bin/sh\neval \"tmp=\\${$#}\"\n%s\n", body);
    fclose (file);
    assert (chmod (script, 0700) == 0);
    char *old = strdup (getenv ("PATH"));
    char *path = zsys_sprintf ("%s:%s", bin, old);
    setenv ("PATH", path, 1);
    zstr_free (&path);
    zstr_free (&script);
    zstr_free (&bin);
    return old;
}

//  Deadline by progress: a qemu-img that stalls is stopped after the stall
//  timeout with the percentage it reached; one that is slow but moves (by
//  its percentage, or only by the bytes it writes) is never stopped

static void
s_test_stall (sf_conv_t *conv, const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    sf_hv_disk_t *disk = s_test_disk ("vdd", dir, "top.qcow2", "qcow2");
    char *dst = zsys_sprintf ("%s/stall.qcow2", dir);
    char *tmp = zsys_sprintf ("%s.tmp", dst);
    uint64_t bytes = 0;
    assert (sf_conv_stall_timeout (conv) == SF_CONV_STALL_MS);
    sf_conv_set_stall_timeout (conv, 3000);     //  the moving ones step every 0.4 s
    //  Stalls at 37 %
    char *old_path = s_test_fake_qemu (dir, "printf '    (0.00/100%%)\\r'; sleep 0.2; "
                                       "printf '    (37.00/100%%)\\r'; exec sleep 60");
    int64_t start = sf_time_mono_ms ();
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == -1);
    int64_t took = sf_time_mono_ms () - start;
    assert (err.code == SF_ETIMEDOUT);
    assert (strstr (err.text, "cannot convert disk 'vdd': qemu-img made no progress for "
                              "3 s at 37%"));
    assert (took >= 3000 && took < 30000);
    assert (!zsys_file_exists (tmp) && !zsys_file_exists (dst));
    setenv ("PATH", old_path, 1);
    free (old_path);
    //  Slow, moving by percentage: 4 s in all, a step every 0.4 s
    old_path = s_test_fake_qemu (dir, "for p in 10 20 30 40 50 60 70 80 90 100; do "
                                 "printf '    (%s.00/100%%)\\r' $p; sleep 0.4; done; "
                                 "echo image > \"$tmp\"");
    start = sf_time_mono_ms ();
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    assert (sf_time_mono_ms () - start >= 3500 && bytes > 0);
    unlink (dst);
    setenv ("PATH", old_path, 1);
    free (old_path);
    //  Slow, moving only by what it writes
    old_path = s_test_fake_qemu (dir, "for p in 1 2 3 4 5 6 7 8 9 10; do "
                                 "head -c 65536 /dev/urandom >> \"$tmp\"; sleep 0.4; done");
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    assert (bytes == 655360);
    unlink (dst);
    setenv ("PATH", old_path, 1);
    free (old_path);
    sf_conv_set_stall_timeout (conv, SF_CONV_STALL_MS);
    zstr_free (&tmp);
    zstr_free (&dst);
    sf_hv_disk_destroy (&disk);
}

//  Links planted at DST.tmp or DST are never followed

static void
s_test_links (sf_conv_t *conv, const char *dir)
{
    sf_hv_disk_t *disk = s_test_disk ("vdc", dir, "top.qcow2", "qcow2");
    sf_err_t err = SF_ERR_INIT;
    uint64_t bytes = 0;
    char *victim = zsys_sprintf ("%s/victim", dir);
    char *dst = zsys_sprintf ("%s/linked.qcow2", dir);
    char *tmp = zsys_sprintf ("%s.tmp", dst);
    s_test_shell ("cd %s && echo keep > victim && ln -s %s/victim linked.qcow2.tmp && "
                  "true %s", dir);
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    assert (!sf_path_is_symlink (dst) && !zsys_file_exists (tmp));
    struct stat st;
    assert (stat (victim, &st) == 0 && st.st_size == 5);
    assert (stat (dst, &st) == 0 && (st.st_mode & 07777) == SF_FILE_MODE);
    unlink (dst);
    assert (symlink (victim, dst) == 0);
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == -1);
    assert (strstr (err.text, "is a symbolic link"));
    assert (!zsys_file_exists (tmp) && sf_path_is_symlink (dst));
    assert (stat (victim, &st) == 0 && st.st_size == 5);
    unlink (dst);
    zstr_free (&tmp);
    zstr_free (&dst);
    zstr_free (&victim);
    sf_hv_disk_destroy (&disk);
}

void
sf_conv_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_conv: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    assert (sf_conv_new ("nosuch", &err) == NULL && err.code == SF_EINVAL);
    assert (sf_conv_new ("fake", &err) == NULL && err.code == SF_EINVAL);
    char dir [] = "/tmp/sf-conv-test-XXXXXX";
    assert (mkdtemp (dir));
    //  A raw base with data + a qcow2 overlay: convert flattens the chain
    s_test_shell ("cd %s && head -c 2097152 /dev/urandom > base.raw && "
                  "qemu-img create -q -f qcow2 -F raw -b %s/base.raw top.qcow2 && "
                  "qemu-io -c 'write -P 0x5a 1M 64k' %s/top.qcow2 >/dev/null", dir);
    sf_hv_disk_t *disk = s_test_disk ("vda", dir, "top.qcow2", "qcow2");

    sf_conv_t *conv = sf_conv_new (NULL, &err);
    assert (conv && streq (sf_conv_name (conv), "qemu-img"));
    char *dst = zsys_sprintf ("%s/out.qcow2", dir);
    uint64_t bytes = 0;
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    assert (bytes > 2 * 1024 * 1024);
    //  Standalone (no backing file) and identical to the chain
    s_test_shell ("cd %s && qemu-img check -q out.qcow2 && "
                  "! qemu-img info out.qcow2 | grep -q 'backing file' && "
                  "qemu-img compare -q -f qcow2 -F qcow2 top.qcow2 out.qcow2", dir);

    //  Failure leaves nothing behind, names the disk and qemu-img's words
    free (disk->source);
    disk->source = zsys_sprintf ("%s/missing.qcow2", dir);
    unlink (dst);
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == -1);
    assert (err.code == SF_EIO && strstr (err.text, "cannot convert disk 'vda'"));
    assert (strstr (err.text, "missing.qcow2"));
    assert (!zsys_file_exists (dst));
    char *tmp = zsys_sprintf ("%s.tmp", dst);
    assert (!zsys_file_exists (tmp));
    s_test_argv (conv, dir);
    s_test_links (conv, dir);
    s_test_stall (conv, dir);
    sf_conv_destroy (&conv);
    assert (conv == NULL);

    //  Fake: cancellable, then a real empty qcow2
    conv = sf_conv_new_with (&sf_conv_fake_driver);
    assert (conv && streq (sf_conv_name (conv), "fake"));
    disk->virtual_size = 4 * 1024 * 1024;
    assert (sf_conv_convert (conv, disk, dst, NULL, 0, &bytes, &err) == 0);
    s_test_shell ("cd %s && qemu-img check -q out.qcow2 && true %s %s", dir);
    unlink (dst);
    zsock_t *reader = zsock_new_pair ("@inproc://sf-conv-test");
    zsock_t *writer = zsock_new_pair (">inproc://sf-conv-test");
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_conv_convert (conv, disk, dst, reader, 0, &bytes, &err) == -1);
    assert (err.code == SF_ECANCELED);
    assert (!zsys_file_exists (dst) && !zsys_file_exists (tmp));
    zsock_destroy (&writer);
    zsock_destroy (&reader);
    sf_conv_destroy (&conv);

    zstr_free (&tmp);
    zstr_free (&dst);
    sf_hv_disk_destroy (&disk);
    s_test_shell ("rm -rf %s && true %s %s", dir);
    //  @end
    printf ("OK\n");
}
