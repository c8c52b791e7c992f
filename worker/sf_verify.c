/*  =========================================================================
    sf_verify - one verify job as a zactor (see the header)
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.verify");

#define S_DIR       "verify"        //  <workdir>/verify/<catalogue>-<job>
#define S_DISK      "disk.qcow2"    //  the scratch copy, in it
#define S_CONSOLE   "console.log"   //  the copy's serial console, in it
#define S_TICK_MS   500             //  how often the copy is looked at
#define S_CHECK_MS  (30 * 60 * 1000)    //  qemu-img check's deadline

typedef struct {
    sf_readback_t rb;               //  The pipe, the bucket, the image's fd
    char *job_id, *catalog_id, *workdir, *store_driver, *store_dir, *uri;
    uint32_t attempt;
    bool wait_grant, boot;
    char *domain_xml, *life_pattern;
    int64_t boot_timeout_ms;
    uint64_t rate_limit;            //  [conversion] rate_limit, 0 none
    int64_t stall_ms;               //  [conversion] stall_timeout
    sf_logctx_t ctx;
    //  The boot
    char *scratch, *disk, *console; //  Owned paths
    char domain [160];              //  snapfleet-verify-<job>
    bool scratch_made, started;
    //  Findings
    bool hash_ok, check_ok, booted;
    uint64_t time_to_life_ms, convert_ms;
    char text [1024];
    sf_err_t err;
} verify_t;

//  Add to the findings' text

static void
s_say (verify_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_say (verify_t *self, const char *format, ...)
{
    size_t length = strlen (self->text);
    if (length + 3 >= sizeof (self->text))
        return;
    if (length)
        strcat (self->text, "; ");
    va_list args;
    va_start (args, format);
    vsnprintf (self->text + strlen (self->text), sizeof (self->text) - strlen (self->text),
               format, args);
    va_end (args);
}

static void
s_send_result (verify_t *self, bool ok)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = self->job_id;
    result.attempt = self->attempt;
    result.ok = ok;
    result.strategy = SF_WIRE_VERIFY;
    result.consistency = "";
    result.convert_ms = self->convert_ms;
    sf_text_utf8_fix (self->text);
    sf_verify_result_t found = SF_VERIFY_RESULT_INIT;
    found.hash_ok = self->hash_ok;
    found.check_ok = self->check_ok;
    found.booted = self->booted;
    found.time_to_life_ms = self->time_to_life_ms;
    found.text = self->text;
    result.verify = &found;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    if (!ok) {
        sf_text_utf8_fix (self->err.text);
        error.code = self->err.code ? self->err.code : SF_ESTORE;
        error.text = *self->err.text ? self->err.text : self->text;
        result.error = &error;
    }
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_jobmsg_send (self->rb.pipe, &self->ctx, "RESULT", &env);
}

//  --------------------------------------------------------------------------
//  The image, its hash, qemu-img check

static int
s_open_image (verify_t *self)
{
    if (!streq (self->rb.image.store, "dir") || !streq (self->store_driver, "dir"))
        return sf_err_set (&self->err, SF_ENOTSUP, "image '%s' is in store '%s' and this "
                           "node's store is '%s': only dir-store images can be verified yet",
                           self->rb.image.id, self->rb.image.store, self->store_driver);
    char *path = sf_readback_store_path (&self->rb, self->store_dir, self->rb.image.id);
    if (!path)
        return -1;
    bool same = sf_name_is_safe (self->rb.image.id) && streq (path, self->rb.image.path);
    zstr_free (&path);
    if (!same)
        return sf_err_set (&self->err, SF_EINVAL, "image '%.64s' is recorded at '%.200s', "
                           "not in this node's store", self->rb.image.id, self->rb.image.path);
    struct stat st;
    if (sf_readback_open (&self->rb, self->rb.image.path, &st))
        return sf_err_set (&self->err, errno == ENOENT ? SF_ENOENT : SF_ESTORE,
                           "cannot open image '%s': %s", self->rb.image.id, strerror (errno));
    if (!S_ISREG (st.st_mode) || (uint64_t) st.st_size != self->rb.image.size) {
        s_say (self, "the image is %" PRIu64 " bytes, its record says %" PRIu64,
               (uint64_t) st.st_size, self->rb.image.size);
        return sf_err_set (&self->err, SF_ESTORE, "image '%s' is not the size recorded",
                           self->rb.image.id);
    }
    return 0;
}

static int
s_hash (verify_t *self)
{
    char hex [65];
    if (sf_readback_hash (&self->rb, self->rb.image.size, self->rb.image.id, hex))
        return -1;
    self->hash_ok = streq (hex, self->rb.image.sha256);
    s_say (self, self->hash_ok ? "SHA-256 matches" : "SHA-256 does NOT match the recorded one");
    return 0;
}

static int
s_check (verify_t *self)
{
    char *argv [] = { "qemu-img", "check", "-q", "-f", self->rb.image.format, "--",
                      self->rb.image.path, NULL };
    int code = -1;
    char *output = NULL;
    if (sf_readback_run (&self->rb, argv, sf_time_mono_ms () + S_CHECK_MS, &code, &output))
        return -1;
    //  0: clean; 3: leaked clusters only (no data lost); 2: corruptions;
    //  1: could not be checked (not an image of that format, I/O error)
    self->check_ok = code == 0 || code == 3;
    char *line = output;
    line [strcspn (line, "\n")] = 0;
    if (code == 0)
        s_say (self, "qemu-img check: no errors");
    else
    if (code == 3)
        s_say (self, "qemu-img check: leaked clusters only");
    else
        s_say (self, "qemu-img check failed (exit %d)%s%.200s", code, *line ? ": " : "",
               line);
    free (output);
    return 0;
}

//  --------------------------------------------------------------------------
//  The boot

//  Remove the scratch directory: our two files and itself

static void
s_remove_scratch (const char *scratch, sf_logctx_t *ctx)
{
    const char *names [] = { S_DISK, S_CONSOLE };
    for (size_t i = 0; i < 2; i++) {
        char *path = zsys_sprintf ("%s/%s", scratch, names [i]);
        if (unlink (path) && errno != ENOENT)
            SF_WARN (ctx, "cannot remove '%s': %s", path, strerror (errno));
        zstr_free (&path);
    }
    if (rmdir (scratch) && errno != ENOENT)
        SF_WARN (ctx, "cannot remove '%s': %s", scratch, strerror (errno));
}

//  The scratch directory, given to the owner of the original's disk (whom
//  QEMU runs as: it must open the copy and make the console file)

static int
s_make_scratch (verify_t *self, const char *source)
{
    char *dir = zsys_sprintf ("%s/" S_DIR, self->workdir);
    int rc = sf_dir_make (dir, 0711);
    zstr_free (&dir);
    self->scratch = zsys_sprintf ("%s/" S_DIR "/%s-%s", self->workdir, self->catalog_id,
                                  self->job_id);
    self->disk = zsys_sprintf ("%s/" S_DISK, self->scratch);
    self->console = zsys_sprintf ("%s/" S_CONSOLE, self->scratch);
    if (rc || mkdir (self->scratch, 0700))
        return sf_err_set (&self->err, errno == EEXIST ? SF_EEXIST : SF_EIO,
                           "cannot make scratch directory '%s': %s", self->scratch,
                           strerror (errno));
    self->scratch_made = true;
    struct stat st;
    if (*source == '/' && stat (source, &st) == 0
    &&  (st.st_uid != geteuid () || st.st_gid != getegid ())
    &&  chown (self->scratch, st.st_uid, st.st_gid))
        return sf_err_set (&self->err, SF_EIO, "cannot give '%s' to the owner of the "
                           "original's disk: %s", self->scratch, strerror (errno));
    return 0;
}

//  The scratch copy: qemu-img convert at the tighter of [conversion]
//  rate_limit and the grant's rate, stopped when it stalls for
//  [conversion] stall_timeout

static int
s_copy_disk (verify_t *self, const char *source)
{
    uint64_t rate = sf_readback_rate (&self->rb, self->rate_limit);
    char rate_text [32];
    snprintf (rate_text, sizeof (rate_text), "%" PRIu64, rate);
    char *argv [] = { "qemu-img", "convert", "-p", "-f", self->rb.image.format, "-O", "qcow2",
                      "-r", rate_text, "--", "/dev/fd/3", self->disk, NULL };
    if (!rate)
        memmove (argv + 7, argv + 9, 4 * sizeof (char *));
    sf_proc_t *proc = sf_proc_new_pass (argv, SF_PROC_CAPTURE, self->rb.fd, &self->err);
    if (!proc)
        return -1;
    int rc = sf_readback_watch (&self->rb, proc, self->disk, self->stall_ms, S_TICK_MS);
    if (rc)
        sf_proc_stop (proc, 2000);
    else
        rc = sf_proc_check (proc, &self->err);
    sf_proc_destroy (&proc);
    if (rc)
        return sf_err_prefix (&self->err, "cannot copy image '%s' to scratch",
                              self->rb.image.id);
    struct stat st;
    if (*source == '/' && stat (source, &st) == 0
    &&  (st.st_uid != geteuid () || st.st_gid != getegid ())
    &&  chown (self->disk, st.st_uid, st.st_gid))
        return sf_err_set (&self->err, SF_EIO, "cannot give '%s' to the owner of the "
                           "original's disk: %s", self->disk, strerror (errno));
    return 0;
}

//  Does a line of the console match the pattern? Reads what came since
//  *offset; a line cut at the end waits for the next look.

static bool
s_console_alive (verify_t *self, regex_t *regex, off_t *offset)
{
    int fd = open (self->console, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    char buffer [8192];
    bool alive = false;
    ssize_t got;
    while (!alive && (got = pread (fd, buffer, sizeof (buffer) - 1, *offset)) > 0) {
        buffer [got] = 0;
        char *end = memrchr (buffer, '\n', (size_t) got);
        if (!end) {
            if (got < (ssize_t) sizeof (buffer) - 1)
                break;              //  a line being written: look again later
            end = buffer + got - 1;     //  a line too long: take it as it is
        }
        *end = 0;
        *offset += end - buffer + 1;
        for (char *line = buffer; line && !alive; ) {
            char *next = strchr (line, '\n');
            if (next)
                *next++ = 0;
            for (char *c = line; *c; c++)       //  NULs and controls are not text
                if ((unsigned char) *c < 0x20 && *c != '\t')
                    *c = ' ';
            alive = regexec (regex, line, 0, NULL, 0) == 0;
            line = next;
        }
    }
    close (fd);
    return alive;
}

static int
s_boot (verify_t *self)
{
    char *source = NULL;
    sf_hv_domxml_t spec = { .name = self->domain, .disk_target = self->rb.image.disk_target,
                            .file = "/scratch", .format = "qcow2" };
    if (sf_naming_verify_domain (self->domain, sizeof (self->domain), self->job_id,
                                 &self->err))
        return -1;
    free (sf_hv_domxml_copy (self->domain_xml, &spec, &source, NULL, &self->err));
    if (!source)
        return sf_err_prefix (&self->err, "cannot boot a copy of the guest");
    regex_t regex;
    bool pattern = *self->life_pattern != 0;
    if (pattern && regcomp (&regex, self->life_pattern, REG_EXTENDED | REG_NOSUB)) {
        free (source);
        return sf_err_set (&self->err, SF_EINVAL, "life pattern '%.64s' is not a POSIX "
                           "extended regular expression", self->life_pattern);
    }
    int64_t start = sf_time_mono_ms ();
    int rc = s_make_scratch (self, source) || s_copy_disk (self, source) ? -1 : 0;
    free (source);
    self->convert_ms = (uint64_t) (sf_time_mono_ms () - start);
    char *xml = NULL;
    sf_hv_t *hv = NULL;
    if (rc == 0) {
        spec.file = self->disk, spec.console = self->console, spec.transient = true;
        xml = sf_hv_domxml_copy (self->domain_xml, &spec, NULL, NULL, &self->err);
        hv = xml ? sf_hv_new (self->uri, &self->err) : NULL;
        rc = hv && sf_hv_create_transient (hv, self->domain, xml, &self->err) == 0 ? 0 : -1;
    }
    free (xml);
    if (rc == 0) {
        self->started = true;
        start = sf_time_mono_ms ();
        SF_INFO (&self->ctx, "transient copy '%s' started; waiting up to %" PRId64 " s for "
                 "a sign of life", self->domain, self->boot_timeout_ms / 1000);
        int64_t deadline = start + self->boot_timeout_ms;
        off_t offset = 0;
        bool agent = true;
        while (rc == 0 && !self->booted && sf_time_mono_ms () < deadline) {
            if (pattern && s_console_alive (self, &regex, &offset)) {
                self->booted = true;
                s_say (self, "booted: a console line matched '%.64s'", self->life_pattern);
                break;
            }
            sf_err_t ping = SF_ERR_INIT;
            if (agent && sf_hv_agent_ping (hv, self->domain, 1, &ping) == 0) {
                self->booted = true;
                s_say (self, "booted: the guest agent answered guest-ping");
                break;
            }
            if (ping.code == SF_ENOTSUP && strstr (ping.text, "not configured"))
                agent = false;      //  no agent channel: the console only
            bool exists = true;
            if (sf_hv_name_exists (hv, self->domain, &exists, &self->err) || !exists) {
                s_say (self, "the copy stopped before a sign of life");
                break;
            }
            zpoller_t *poller = zpoller_new (self->rb.pipe, NULL);
            if (zpoller_wait (poller, S_TICK_MS))
                rc = sf_readback_on_pipe (&self->rb);
            zpoller_destroy (&poller);
        }
        self->time_to_life_ms = self->booted ? (uint64_t) (sf_time_mono_ms () - start) : 0;
        if (rc == 0 && !self->booted && !strstr (self->text, "stopped"))
            s_say (self, "no sign of life within %" PRId64 " s", self->boot_timeout_ms / 1000);
        if (self->booted)
            s_say (self, "time to life %.1f s", (double) self->time_to_life_ms / 1000.0);
        sf_err_t gone = SF_ERR_INIT;
        if (sf_hv_destroy_named (hv, self->domain, &gone) && gone.code != SF_ENOENT)
            SF_ERROR (&self->ctx, "cannot destroy transient copy '%s': %s", self->domain,
                      gone.text);
        else
            self->started = false;
    }
    sf_hv_destroy (&hv);
    if (pattern)
        regfree (&regex);
    return rc;
}

//  --------------------------------------------------------------------------
//  The actor

static int
s_run (verify_t *self)
{
    if (s_open_image (self))
        return -1;
    sf_readback_emit (&self->rb, SF_PHASE_QUEUED, 0, 0, NULL);
    if (sf_readback_wait_grant (&self->rb, self->wait_grant, self->rb.image.size))
        return -1;
    int64_t start = sf_time_mono_ms ();
    if (s_hash (self) || s_check (self))
        return -1;
    sf_readback_emit (&self->rb, SF_PHASE_CONVERTED, (uint64_t) (sf_time_mono_ms () - start),
            self->rb.image.size, self->text);
    if (!self->hash_ok || !self->check_ok)
        return sf_err_set (&self->err, SF_ESTORE, "image %s failed its verification: %s",
                           self->rb.image.id, self->text);
    if (!self->boot)
        return 0;
    if (s_boot (self))
        return -1;
    if (!self->booted)
        return sf_err_set (&self->err, SF_ESTORE, "image %s did not boot: %s",
                           self->rb.image.id, self->text);
    sf_readback_emit (&self->rb, SF_PHASE_UPLOADED, self->time_to_life_ms, 0, self->text);
    return 0;
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    const sf_verify_args_t *args = (const sf_verify_args_t *) arg;
    const sf_verify_t *verify = args->verify;
    verify_t self_ = {
        .attempt = args->attempt, .wait_grant = args->wait_upload_grant,
        .boot = verify->boot, .err = SF_ERR_INIT,
        .rate_limit = args->rate_limit, .stall_ms = args->stall_ms > 0 ? args->stall_ms : 120000,
        .boot_timeout_ms = verify->boot_timeout_ms ? (int64_t) verify->boot_timeout_ms
                                                   : args->boot_timeout_ms
    };
    verify_t *self = &self_;
    self->job_id = sf_strdup0 (args->job_id);
    self->catalog_id = sf_strdup0 (args->catalog_id);
    self->workdir = sf_strdup0 (args->workdir);
    self->store_driver = sf_strdup0 (args->store_driver);
    self->store_dir = sf_strdup0 (args->store_dir);
    self->uri = sf_strdup0 (args->uri);
    self->domain_xml = sf_strdup0 (verify->domain_xml);
    self->life_pattern = sf_strdup0 (verify->life_pattern && *verify->life_pattern
                                 ? verify->life_pattern : args->life_pattern);
    self->ctx.job_id = self->job_id;
    sf_readback_init (&self->rb, pipe, &self->ctx, &self->err, "verification", self->job_id,
                      self->attempt);
    sf_readback_set_image (&self->rb, verify->image);
    zsock_signal (pipe, 0);     //  args are copied: the owner may free them

    bool ok = sf_naming_id_valid (self->catalog_id) && sf_name_is_safe (self->job_id)
            ? s_run (self) == 0
            : sf_err_set (&self->err, SF_EPROTO, "verification without a valid catalogue "
                          "or job id") == 0;
    if (self->started) {        //  cancelled while it ran
        sf_hv_t *hv = sf_hv_new (self->uri, NULL);
        sf_err_t gone = SF_ERR_INIT;
        if (!hv || (sf_hv_destroy_named (hv, self->domain, &gone)
                    && gone.code != SF_ENOENT))
            SF_ERROR (&self->ctx, "cannot destroy transient copy '%s': %s", self->domain,
                      gone.text);
        sf_hv_destroy (&hv);
    }
    if (self->scratch_made)
        s_remove_scratch (self->scratch, &self->ctx);
    if (ok)
        SF_INFO (&self->ctx, "image %s verified: %s", self->rb.image.id, self->text);
    else
        SF_WARN (&self->ctx, "verification failed: %s", self->err.text);
    s_send_result (self, ok);
    sf_readback_fini (&self->rb);
    char **strings [] = { &self->job_id, &self->catalog_id, &self->workdir,
                          &self->store_driver, &self->store_dir, &self->uri,
                          &self->domain_xml, &self->life_pattern, &self->scratch,
                          &self->disk, &self->console };
    for (size_t i = 0; i < sizeof (strings) / sizeof (strings [0]); i++)
        zstr_free (strings [i]);
}

zactor_t *
sf_verify_new (const sf_verify_args_t *args)
{
    assert (args && args->job_id && args->verify && args->verify->image);
    assert (args->workdir && args->store_driver && args->store_dir && args->life_pattern);
    return zactor_new (s_actor, (void *) args);
}

//  --------------------------------------------------------------------------
//  Sweep: <workdir>/verify/<catalogue>-<job> left by a killed worker

int
sf_verify_sweep (const char *workdir, const char *uri)
{
    assert (workdir && uri);
    char *dir = zsys_sprintf ("%s/" S_DIR, workdir);
    DIR *listing = opendir (dir);
    int swept = 0;
    struct dirent *entry;
    while (listing && (entry = readdir (listing))) {
        const char *name = entry->d_name;
        if (strlen (name) < SF_NAMING_ID_LEN + 2 || name [SF_NAMING_ID_LEN] != '-')
            continue;
        char catalog [SF_NAMING_ID_LEN + 1];
        snprintf (catalog, sizeof (catalog), "%.*s", SF_NAMING_ID_LEN, name);
        const char *job = name + SF_NAMING_ID_LEN + 1;
        char domain [160];
        if (!sf_naming_id_valid (catalog)
        ||  sf_naming_verify_domain (domain, sizeof (domain), job, NULL))
            continue;
        sf_logctx_t ctx = { .job_id = job };
        sf_hv_t *hv = sf_hv_new (uri, NULL);
        sf_err_t err = SF_ERR_INIT;
        if (hv && sf_hv_destroy_named (hv, domain, &err) == 0)
            SF_NOTICE (&ctx, "destroyed transient copy '%s' left by a killed verification",
                       domain);
        sf_hv_destroy (&hv);
        char *scratch = zsys_sprintf ("%s/%s", dir, name);
        s_remove_scratch (scratch, &ctx);
        zstr_free (&scratch);
        swept++;
    }
    if (listing)
        closedir (listing);
    zstr_free (&dir);
    return swept;
}

//  --------------------------------------------------------------------------
//  Self test: the checks without a boot (the boot runs in t0270, with a
//  real libvirt and guest)

#define TEST_IMAGE "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e"

static sf_envelope_t *
s_run_test (sf_verify_args_t *args, char *phases)
{
    zactor_t *actor = sf_verify_new (args);
    sf_envelope_t *result = NULL;
    *phases = 0;
    while (!result) {
        char *kind = NULL;
        zframe_t *frame = NULL;
        assert (zsock_recv (actor, "sf", &kind, &frame) == 0 && kind && frame);
        if (streq (kind, "APPLIED")) {
            zstr_free (&kind);
            zframe_destroy (&frame);
            continue;
        }
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_decode (frame, &err);
        assert (env);
        if (streq (kind, "RESULT"))
            result = env;
        else {
            int phase = env->job_event->phase;
            strcat (phases, phase == SF_PHASE_QUEUED ? "q" : phase == SF_PHASE_UPLOAD_WAIT
                            ? "w" : phase == SF_PHASE_CONVERTED ? "c" : "?");
            if (phase == SF_PHASE_UPLOAD_WAIT)
                zstr_sendx (actor, "GRANT", "0", NULL);
            sf_wire_free (&env);
        }
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&actor);
    return result;
}

static char *
s_read_line (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    char line [128] = "";
    FILE *file = fopen (path, "r");
    assert (file && fgets (line, sizeof (line), file));
    fclose (file);
    zstr_free (&path);
    line [strcspn (line, "\n")] = 0;
    return strdup (line);
}

void
sf_verify_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_verify: ");
    //  @selftest
    char dir [] = "/tmp/sf-verify-test-XXXXXX";
    assert (mkdtemp (dir));
    char *cmd = zsys_sprintf (
        "set -e; cd %s; mkdir work store; "
        "qemu-img create -q -f qcow2 store/" TEST_IMAGE ".qcow2 8M; "
        "qemu-io -c 'write -P 0x5a 0 1M' store/" TEST_IMAGE ".qcow2 >/dev/null; "
        "sha256sum store/" TEST_IMAGE ".qcow2 | cut -c1-64 > sha; "
        "stat -c %%s store/" TEST_IMAGE ".qcow2 > size", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    char *sha = s_read_line (dir, "sha"), *size = s_read_line (dir, "size");
    char *store = zsys_sprintf ("%s/store", dir), *work = zsys_sprintf ("%s/work", dir);
    char *image_path = zsys_sprintf ("%s/" TEST_IMAGE ".qcow2", store);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = TEST_IMAGE, image.path = image_path;
    image.size = strtoull (size, NULL, 10), image.sha256 = sha, image.format = "qcow2";
    image.disk_target = "vda";
    sf_verify_t verify = SF_VERIFY_INIT;
    verify.image = &image;
    sf_verify_args_t args = {
        .job_id = "J9", .attempt = 1, .catalog_id = "0123456789abcdef", .verify = &verify,
        .workdir = work, .store_driver = "dir", .store_dir = store, .uri = "test:///default",
        .life_pattern = "login:", .boot_timeout_ms = 5000, .wait_upload_grant = true
    };
    char phases [16];
    //  A whole image: hash and check pass
    sf_envelope_t *env = s_run_test (&args, phases);
    sf_job_result_t *res = env->job_result;
    assert (res->ok && streq (phases, "qwc") && streq (res->strategy, "verify"));
    assert (res->verify && res->verify->hash_ok && res->verify->check_ok);
    assert (!res->verify->booted && strstr (res->verify->text, "no errors"));
    sf_wire_free (&env);
    //  A recorded hash that differs: failed, and says so
    char first = sha [0];
    sha [0] = first == '0' ? '1' : '0';
    env = s_run_test (&args, phases);
    res = env->job_result;
    assert (!res->ok && !res->verify->hash_ok && res->verify->check_ok);
    assert (res->error->code == SF_ESTORE && strstr (res->error->text, "does NOT match"));
    sf_wire_free (&env);
    sha [0] = first;
    //  A qcow2 header broken (its magic): check fails, so does the hash
    cmd = zsys_sprintf ("printf 'XXXX' | dd of=%s conv=notrunc status=none", image_path);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    env = s_run_test (&args, phases);
    res = env->job_result;
    assert (!res->ok && !res->verify->hash_ok && !res->verify->check_ok);
    assert (strstr (res->verify->text, "qemu-img check failed"));
    sf_wire_free (&env);
    //  An image not where the store keeps it: refused, nothing read
    image.path = "/etc/passwd";
    env = s_run_test (&args, phases);
    res = env->job_result;
    assert (!res->ok && res->error->code == SF_EINVAL && streq (phases, ""));
    sf_wire_free (&env);
    image.path = image_path;
    //  A transient copy is no instance: the inventory leaves it out
    zlistx_t *domains = zlistx_new ();
    zlistx_set_destructor (domains, (zlistx_destructor_fn *) sf_hv_domain_destroy);
    zlistx_add_end (domains, sf_hv_domain_new ("11111111-2222-3333-4444-000000000001",
                                               "snapfleet-verify-J9", SF_HV_RUNNING));
    zlistx_add_end (domains, sf_hv_domain_new ("11111111-2222-3333-4444-000000000002",
                                               "vm1", SF_HV_RUNNING));
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_scan_encode (domains, &err);
    sf_envelope_t *inventory = frame ? sf_wire_decode (frame, &err) : NULL;
    assert (inventory && inventory->inventory->n_instances == 1);
    assert (streq (inventory->inventory->instances [0]->name, "vm1"));
    sf_wire_free (&inventory);
    zframe_destroy (&frame);
    zlistx_destroy (&domains);
    //  The sweep removes a scratch directory a killed verification left
    cmd = zsys_sprintf ("mkdir -p %s/verify/0123456789abcdef-J3 && touch "
                        "%s/verify/0123456789abcdef-J3/disk.qcow2 %s/verify/stranger",
                        work, work, work);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_verify_sweep (work, "test:///default") == 1);
    char *left = zsys_sprintf ("%s/verify/0123456789abcdef-J3", work);
    assert (access (left, F_OK) == -1);
    zstr_free (&left);
    left = zsys_sprintf ("%s/verify/stranger", work);
    assert (access (left, F_OK) == 0);      //  not ours: kept
    zstr_free (&left);

    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    free (sha);
    free (size);
    zstr_free (&store);
    zstr_free (&work);
    zstr_free (&image_path);
    //  @end
    printf ("OK\n");
}
