/*  =========================================================================
    sf_util - time, duration/size parsing and small helpers
    =========================================================================
*/
#include "sf_core.h"
#include <pthread.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int64_t
sf_time_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sf_time_mono_ms (void)
{
    return sf_time_mono_us () / 1000;
}

static int64_t s_steady_base;           //  wall - mono at the first call
static pthread_once_t s_steady_once = PTHREAD_ONCE_INIT;

static void
s_steady_init (void)
{
    s_steady_base = sf_time_now_ms () - sf_time_mono_ms ();
}

int64_t
sf_time_steady_ms (void)
{
    pthread_once (&s_steady_once, s_steady_init);
    return s_steady_base + sf_time_mono_ms ();
}

int64_t
sf_time_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *
sf_time_rfc3339 (int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    char base [32];
    strftime (base, sizeof (base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%.20s.%03dZ", base, (int) (ms % 1000));
    return buf;
}

//  Split "123unit" into number and unit; rejects empty, signs, overflow

static int
s_split_number (const char *text, uint64_t *number, const char **unit)
{
    if (!text || !isdigit ((unsigned char) *text))
        return -1;
    errno = 0;
    char *end;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    *number = value;
    *unit = end;
    return 0;
}

int
sf_parse_duration_ms (const char *text, int64_t *ms)
{
    static const struct { const char *unit; int64_t ms; } units [] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "sec", 1000 },
        { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
        { "d", 86400000 },
    };
    uint64_t number;
    const char *unit;
    if (s_split_number (text, &number, &unit))
        return -1;
    for (size_t i = 0; i < sizeof (units) / sizeof (units [0]); i++)
        if (streq (unit, units [i].unit)) {
            if (number > (uint64_t) (INT64_MAX / units [i].ms))
                return -1;
            *ms = (int64_t) number * units [i].ms;
            return 0;
        }
    return -1;
}

int
sf_parse_size (const char *text, uint64_t *bytes)
{
    static const struct { const char *unit; int shift; } units [] = {
        { "", 0 }, { "B", 0 }, { "K", 10 }, { "KiB", 10 }, { "M", 20 },
        { "MiB", 20 }, { "G", 30 }, { "GiB", 30 }, { "T", 40 },
        { "TiB", 40 },
    };
    uint64_t number;
    const char *unit;
    if (s_split_number (text, &number, &unit))
        return -1;
    for (size_t i = 0; i < sizeof (units) / sizeof (units [0]); i++)
        if (streq (unit, units [i].unit)) {
            if (units [i].shift && number > (UINT64_MAX >> units [i].shift))
                return -1;
            *bytes = number << units [i].shift;
            return 0;
        }
    return -1;
}

char *
sf_format_size (uint64_t bytes, char *buf, size_t size)
{
    static const char *units [] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double value = (double) bytes;
    int unit = 0;
    while (value >= 1024 && unit < 5) {
        value /= 1024;
        unit++;
    }
    if (unit == 0)
        snprintf (buf, size, "%" PRIu64 " B", bytes);
    else
        snprintf (buf, size, "%.1f %s", value, units [unit]);
    return buf;
}

bool
sf_name_is_safe (const char *name)
{
    if (!name || !*name || *name == '.' || *name == '-')
        return false;
    size_t len = 0;
    for (const char *p = name; *p; p++, len++) {
        if (len >= 128)
            return false;
        if (!isalnum ((unsigned char) *p) && !strchr ("._:-", *p))
            return false;
    }
    return true;
}

size_t
sf_utf8_seq_len (const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    unsigned char c = *p;
    size_t len;
    uint32_t cp;
    if (c == 0)
        return 0;
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
sf_strdup0 (const char *text)
{
    return strdup (text? text: "");
}

bool
sf_utf8_valid (const char *text)
{
    while (*text) {
        size_t len = sf_utf8_seq_len (text);
        if (len == 0)
            return false;
        text += len;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Durable files

int
sf_fsync_path (const char *path)
{
    assert (path);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    int rc = fsync (fd);
    int error = errno;
    close (fd);
    errno = error;
    return rc;
}

int
sf_file_commit (const char *tmp, const char *path)
{
    assert (tmp && path);
    if (sf_path_is_symlink (path)) {
        errno = ELOOP;          //  never publish through a planted link
        return -1;
    }
    if (rename (tmp, path))
        return -1;
    const char *slash = strrchr (path, '/');
    if (!slash)
        return sf_fsync_path (".");
    char *dir = slash == path ? strdup ("/") : zsys_sprintf ("%.*s", (int) (slash - path), path);
    int rc = sf_fsync_path (dir);
    int error = errno;
    zstr_free (&dir);
    errno = error;
    return rc;
}

int
sf_file_replace (const char *path, const char *what, sf_file_write_fn *fill, void *arg,
                 sf_err_t *err)
{
    assert (path && what && fill);
    char *tmp = zsys_sprintf ("%s.tmp", path);
    int rc = -1;
    int fd = sf_file_create_tmp (tmp, SF_FILE_MODE);
    FILE *file = fd == -1 ? NULL : fdopen (fd, "w");
    if (!file) {
        if (fd != -1)
            close (fd);
        sf_err_set (err, SF_EIO, "cannot write %s'%s': %s", what, tmp, strerror (errno));
        goto cleanup;
    }
    int written = fill (file, arg) || fflush (file) || fsync (fileno (file)) ? -1 : 0;
    int error = errno;
    if (fclose (file) && !written) {
        written = -1;
        error = errno;
    }
    if (written) {
        sf_err_set (err, SF_EIO, "cannot write %s'%s': %s", what, tmp, strerror (error));
        goto cleanup;
    }
    if (sf_file_commit (tmp, path)) {
        sf_err_set (err, SF_EIO, "cannot commit %s'%s': %s", what, path, strerror (errno));
        goto cleanup;
    }
    rc = 0;
 cleanup:
    if (rc)
        unlink (tmp);
    zstr_free (&tmp);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_test_write (FILE *file, void *arg)
{
    return fputs ((const char *) arg, file) < 0 ? -1 : 0;
}

static int
s_test_fail (FILE *file, void *arg)
{
    (void) file;
    (void) arg;
    errno = ENOSPC;
    return -1;
}

static void
s_test_durable (void)
{
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf-util-test-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/entry", dir);
    char *tmp = zsys_sprintf ("%s.tmp", path);
    assert (sf_file_replace (path, "", s_test_write, "one\n", &err) == 0);
    assert (sf_file_replace (path, "", s_test_write, "two\n", &err) == 0);
    FILE *file = fopen (path, "r");
    char line [16] = "";
    assert (file && fgets (line, sizeof (line), file) && streq (line, "two\n"));
    fclose (file);
    assert (!zsys_file_exists (tmp));
    //  A failed write leaves the old file and no tmp, and says where
    assert (sf_file_replace (path, "test entry ", s_test_fail, NULL, &err) == -1);
    assert (err.code == SF_EIO && strstr (err.text, "cannot write test entry '"));
    assert (strstr (err.text, "No space left on device"));
    assert (!zsys_file_exists (tmp) && zsys_file_exists (path));
    //  A directory that is gone
    char *nowhere = zsys_sprintf ("%s/no/entry", dir);
    assert (sf_file_replace (nowhere, "", s_test_write, "x", &err) == -1);
    assert (strstr (err.text, "cannot write '") && strstr (err.text, "/no/entry.tmp'"));
    zstr_free (&nowhere);
    assert (sf_fsync_path (dir) == 0 && sf_fsync_path (path) == 0);
    assert (unlink (path) == 0 && rmdir (dir) == 0);
    assert (sf_fsync_path (dir) == -1 && errno == ENOENT);
    zstr_free (&tmp);
    zstr_free (&path);
}

//  --------------------------------------------------------------------------
//  Removing a directory without following symlinks

int
sf_dir_remove_at (const char *dir, const char *name, sf_dir_match_fn *match)
{
    assert (dir && name && match);
    if (!*name || strchr (name, '/') || streq (name, ".") || streq (name, "..")) {
        errno = EINVAL;
        return -1;
    }
    int parent = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent == -1)
        return errno == ENOENT ? 0 : -1;
    int fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *listing = fd == -1 ? NULL : fdopendir (fd);
    int rc = -1, saved = errno;
    if (fd == -1 && errno == ENOENT)
        rc = 0;
    else
    if (listing) {
        bool kept = false;
        struct dirent *entry;
        while ((entry = readdir (listing))) {
            if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
                continue;
            struct stat st;
            if (fstatat (fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG (st.st_mode)
            ||  !match (entry->d_name) || unlinkat (fd, entry->d_name, 0))
                kept = true;
        }
        closedir (listing);     //  closes fd
        rc = kept ? -1 : unlinkat (parent, name, AT_REMOVEDIR);
        saved = kept ? ENOTEMPTY : errno;
    }
    else
    if (fd != -1)
        close (fd);
    close (parent);
    errno = saved;
    return rc;
}

//  The self test's match: *.keep files stay
static bool
s_test_match (const char *name)
{
    size_t len = strlen (name);
    return len < 5 || !streq (name + len - 5, ".keep");
}

//  sf_dir_remove_at never follows a symlink: not in place of the
//  directory, not inside it; it leaves what does not match

static void
s_test_dir_remove (void)
{
    char dir [] = "/tmp/sf-util-dir-XXXXXX";
    assert (mkdtemp (dir));
    char *cmd = zsys_sprintf (
        "cd %s && mkdir -p target scratch other && echo precious > target/data && "
        "ln -s target linked && ln -s ../target/data scratch/vda.qcow2 && "
        "ln -s ../target other/sub && touch other/a other/b.keep", dir);
    assert (system (cmd) == 0);         //  test setup only
    zstr_free (&cmd);
    //  A symlink in place of the directory: left, its target untouched
    assert (sf_dir_remove_at (dir, "linked", s_test_match) == -1);
    assert (errno == ELOOP || errno == ENOTDIR);
    //  A symlink inside (a file name that matches): stays, so does the dir
    assert (sf_dir_remove_at (dir, "scratch", s_test_match) == -1 && errno == ENOTEMPTY);
    //  Matching files go; a symlink to a directory and a non-match stay
    assert (sf_dir_remove_at (dir, "other", s_test_match) == -1 && errno == ENOTEMPTY);
    cmd = zsys_sprintf ("cd %s && test \"$(cat target/data)\" = precious && test -L linked "
                        "&& test -L scratch/vda.qcow2 && test -L other/sub && "
                        "test ! -e other/a && test -f other/b.keep && "
                        "rm other/sub other/b.keep scratch/vda.qcow2 && touch scratch/x", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_dir_remove_at (dir, "scratch", s_test_match) == 0);
    assert (sf_dir_remove_at (dir, "other", s_test_match) == 0);
    assert (sf_dir_remove_at (dir, "other", s_test_match) == 0);       //  gone: fine
    assert (sf_dir_remove_at (dir, "..", s_test_match) == -1 && errno == EINVAL);
    assert (sf_dir_remove_at (dir, "a/b", s_test_match) == -1 && errno == EINVAL);
    cmd = zsys_sprintf ("cd %s && test ! -e scratch && test ! -e other && "
                        "test \"$(cat target/data)\" = precious", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
}
static void
    s_test_modes (void);

void
sf_actor_wait_term (zsock_t *pipe)
{
    assert (pipe);
    while (true) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
}

void
sf_util_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_util: ");
    //  @selftest
    int64_t ms;
    assert (sf_parse_duration_ms ("30s", &ms) == 0 && ms == 30000);
    assert (sf_parse_duration_ms ("250ms", &ms) == 0 && ms == 250);
    assert (sf_parse_duration_ms ("5m", &ms) == 0 && ms == 300000);
    assert (sf_parse_duration_ms ("2", &ms) == 0 && ms == 2000);
    assert (sf_parse_duration_ms ("-1s", &ms) == -1);
    assert (sf_parse_duration_ms ("5 fortnights", &ms) == -1);
    assert (sf_parse_duration_ms ("", &ms) == -1);
    assert (sf_parse_duration_ms ("99999999999999999999", &ms) == -1);
    uint64_t bytes;
    assert (sf_parse_size ("64MiB", &bytes) == 0 && bytes == 64ull << 20);
    assert (sf_parse_size ("1G", &bytes) == 0 && bytes == 1ull << 30);
    assert (sf_parse_size ("512", &bytes) == 0 && bytes == 512);
    assert (sf_parse_size ("1X", &bytes) == -1);
    assert (sf_parse_size ("99999999999T", &bytes) == -1);
    char buf [32];
    assert (streq (sf_format_size (512, buf, sizeof (buf)), "512 B"));
    assert (streq (sf_format_size (3ull << 29, buf, sizeof (buf)), "1.5 GiB"));
    assert (streq (sf_time_rfc3339 (1764064800123, buf, sizeof (buf)),
                   "2025-11-25T10:00:00.123Z"));
    char *copy = sf_strdup0 (NULL);
    assert (copy && *copy == 0);
    free (copy);
    copy = sf_strdup0 ("vda");
    assert (streq (copy, "vda"));
    free (copy);
    assert (sf_name_is_safe ("web-01.example:a_b"));
    assert (!sf_name_is_safe ("../etc"));
    assert (!sf_name_is_safe ("a/b"));
    assert (!sf_name_is_safe (""));
    assert (sf_time_mono_ms () > 0);
    //  The steady clock starts at the wall clock and moves with the
    //  monotonic one (a step of the wall clock would not move it)
    int64_t steady = sf_time_steady_ms (), wall = sf_time_now_ms ();
    assert (steady - wall < 1000 && wall - steady < 1000);
    int64_t mono = sf_time_mono_ms ();
    zclock_sleep (20);
    int64_t moved = sf_time_steady_ms () - steady, mono_moved = sf_time_mono_ms () - mono;
    assert (moved >= 20 && moved <= mono_moved + 1);
    assert (sf_utf8_seq_len ("\xe2\x82\xac") == 3 && sf_utf8_seq_len ("a") == 1);
    assert (sf_utf8_seq_len ("\xc0\xaf") == 0 && sf_utf8_seq_len ("") == 0);
    assert (sf_utf8_valid ("caf\xc3\xa9") && !sf_utf8_valid ("caf\xc3"));
    s_test_durable ();
    s_test_dir_remove ();
    s_test_modes ();
    //  @end
    printf ("OK\n");
}

//  ==========================================================================
//  Files and directories with explicit modes (the worker's image store,
//  journals and scratch): temp files never follow a planted link

#include <sys/stat.h>

bool
sf_path_is_symlink (const char *path)
{
    assert (path);
    struct stat st;
    return lstat (path, &st) == 0 && S_ISLNK (st.st_mode);
}

int
sf_file_create_tmp (const char *tmp, mode_t mode)
{
    assert (tmp);
    if (unlink (tmp) && errno != ENOENT)
        return -1;
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd != -1 && fchmod (fd, mode)) {
        int error = errno;
        close (fd);
        unlink (tmp);
        errno = error;
        return -1;
    }
    return fd;
}

int
sf_dir_make (const char *path, mode_t mode)
{
    assert (path);
    struct stat st;
    if (stat (path, &st) == 0)
        return S_ISDIR (st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    char *copy = strdup (path);
    int rc = 0;
    for (char *slash = strchr (copy + 1, '/'); rc == 0; slash = strchr (slash + 1, '/')) {
        if (slash)
            *slash = 0;
        if (mkdir (copy, mode) == 0)
            rc = chmod (copy, mode);
        else
        if (errno != EEXIST || stat (copy, &st) || !S_ISDIR (st.st_mode))
            rc = -1;
        if (!slash)
            break;
        *slash = '/';
        while (slash [1] == '/')
            slash++;
    }
    int error = errno;
    free (copy);
    errno = error;
    return rc;
}

static void
s_test_modes (void)
{
    mode_t old = umask (077);
    char dir [] = "/tmp/sf-util-modes-XXXXXX";
    assert (mkdtemp (dir));
    //  Directories: every one made gets exactly the mode, not the umask's
    char *deep = zsys_sprintf ("%s/a//b/c", dir);
    assert (sf_dir_make (deep, SF_DIR_MODE) == 0 && sf_dir_make (deep, SF_DIR_MODE) == 0);
    struct stat st;
    char *mid = zsys_sprintf ("%s/a/b", dir);
    assert (stat (deep, &st) == 0 && (st.st_mode & 07777) == SF_DIR_MODE);
    assert (stat (mid, &st) == 0 && (st.st_mode & 07777) == SF_DIR_MODE);
    //  A temp file: exactly the mode; a stale one is replaced
    char *tmp = zsys_sprintf ("%s/f.tmp", deep);
    int fd = sf_file_create_tmp (tmp, SF_FILE_MODE);
    assert (fd != -1 && fstat (fd, &st) == 0 && (st.st_mode & 07777) == SF_FILE_MODE);
    close (fd);
    fd = sf_file_create_tmp (tmp, SF_FILE_MODE);
    assert (fd != -1);
    close (fd);
    //  A link planted at the temp path is removed, not followed
    char *victim = zsys_sprintf ("%s/victim", dir);
    FILE *file = fopen (victim, "w");
    assert (file && fputs ("keep", file) >= 0 && fclose (file) == 0);
    unlink (tmp);
    assert (symlink (victim, tmp) == 0);
    fd = sf_file_create_tmp (tmp, SF_FILE_MODE);
    assert (fd != -1 && write (fd, "new", 3) == 3);
    close (fd);
    assert (!sf_path_is_symlink (tmp) && stat (victim, &st) == 0 && st.st_size == 4);
    //  sf_file_replace: 0640, and a link at PATH.tmp never followed either
    char *json = zsys_sprintf ("%s/f", deep);
    unlink (tmp);
    assert (symlink (victim, tmp) == 0);
    assert (sf_file_replace (json, "", s_test_write, "{}", NULL) == 0);
    assert (stat (json, &st) == 0 && (st.st_mode & 07777) == SF_FILE_MODE);
    assert (stat (victim, &st) == 0 && st.st_size == 4);
    //  ... nor is a link at PATH itself replaced
    unlink (json);
    assert (symlink (victim, json) == 0);
    sf_err_t err = SF_ERR_INIT;
    assert (sf_file_replace (json, "", s_test_write, "{}", &err) == -1);
    assert (strstr (err.text, "Too many levels of symbolic links"));
    assert (sf_path_is_symlink (json) && !zsys_file_exists (tmp));
    //  Not a directory: an error
    assert (sf_dir_make (victim, SF_DIR_MODE) == -1 && errno == ENOTDIR);
    char *cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);         //  test cleanup only
    zstr_free (&cmd);
    zstr_free (&json);
    zstr_free (&victim);
    zstr_free (&tmp);
    zstr_free (&mid);
    zstr_free (&deep);
    umask (old);
}
