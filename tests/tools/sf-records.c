/*  =========================================================================
    sf-records - check the sequence records of a test guest's disk image

    The test guest (tests/lib/libvirt.sh) writes record n = 1, 2, ... as one
    512-byte sector "VMREC <bootid> <n:010> <n:010> END\n" + zero padding at
    sector 2048+n, each write O_DIRECT + fsync and issued only after the
    previous one completed. A crash-consistent point-in-time copy of that
    disk must therefore hold exactly records 1..K for some K: no holes, no
    torn (half-matching) record, one boot id. The console's "GUEST seq=N"
    lines bound K from both sides (notes/libvirt.md section 4).

    Usage: sf-records [--min A] [--max B] [--offset-sector S] [--slots N]
                      [--format auto|raw|qcow2] [--json] IMAGE

    Slot i (i = 1, 2, ...) is the sector S+i-1 (S = 2049 by default) and must
    hold record i. A slot is
      valid   exactly record i of some boot id, zero padded;
      torn    anything that mentions "VMREC" but is not a valid record i
              (wrong number, malformed, garbage after END, ...);
      empty   anything else (the random data of the base image, zeros).
    K = largest k such that slots 1..k are all valid; holes = slots in
    1..(highest valid slot) that are not valid.

    IMAGE may be raw or qcow2 (auto-detected by the qcow2 magic). A qcow2
    image is first converted, through its backing chain, to a temporary raw
    file with `qemu-img convert -U -O raw` (in $TMPDIR, default /var/tmp;
    deleted afterwards). -U makes that work on an image a paused QEMU still
    holds; reading a *running* guest's image gives no guarantee.

    Prints one line (or one JSON object with --json):
      K=<k> valid=<n> holes=<h> torn=<t> bootids=<b> verdict=<v>
    verdict: CLEAN_PREFIX, TORN, HOLES, MULTIPLE_BOOTIDS, BELOW_MIN
    (K < A), ABOVE_MAX (K > B); the first that applies in that order.
    Details (first torn slot, first hole) go to stderr when not clean.
    Exit: 0 clean prefix, 1 not clean, 2 usage or I/O error.
    =========================================================================
*/

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECTOR        512
#define BOOTID_MAX    64
#define MAX_BOOTIDS   16
#define CHUNK_SECTORS 2048

typedef enum { SLOT_EMPTY, SLOT_VALID, SLOT_TORN } slot_kind_t;

typedef struct {
    int64_t min, max;           //  -1 = not given
    int64_t offset_sector;
    int64_t slots;              //  -1 = to the end of the image
    const char *format;
    bool json;
    const char *image;
} options_t;

typedef struct {
    int64_t k;                  //  clean prefix length
    bool prefix_open;           //  still counting K
    int64_t valid, torn, holes, max_valid;
    int64_t first_torn;         //  0 = none
    int64_t scanned;
    char bootids[MAX_BOOTIDS][BOOTID_MAX + 1];
    int nbootids;
    bool bootids_overflow;
} result_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: sf-records [--min A] [--max B] [--offset-sector S] [--slots N]\n"
        "                  [--format auto|raw|qcow2] [--json] IMAGE\n"
        "Checks that IMAGE holds a clean prefix 1..K of the test guest's\n"
        "sequence records (A <= K <= B when given). Exit 0 clean, 1 not, 2 error.\n");
}

static bool
s_parse_int (const char *text, int64_t *value_p)
{
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return false;
    *value_p = v;
    return true;
}

//  --------------------------------------------------------------------------
//  Slot classification

static bool
s_all_zero (const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p [i])
            return false;
    return true;
}

static bool
s_mentions_vmrec (const unsigned char *sector)
{
    return memmem (sector, SECTOR, "VMREC", 5) != NULL;
}

//  Parses "VMREC <bootid> <n:010> <n:010> END\n" + zeros. Stores the boot id
//  when the shape is right (even if the numbers are wrong), so a torn
//  record from another boot still counts as another boot id.
static slot_kind_t
s_classify (const unsigned char *sector, int64_t slot, char *bootid)
{
    bootid [0] = 0;
    if (!s_mentions_vmrec (sector))
        return SLOT_EMPTY;
    if (memcmp (sector, "VMREC ", 6) != 0)
        return SLOT_TORN;
    size_t pos = 6, len = 0;
    while (pos < SECTOR && sector [pos] != ' ') {
        int c = sector [pos];
        if (!(isalnum (c) || c == '-' || c == '_') || len >= BOOTID_MAX)
            return SLOT_TORN;
        bootid [len++] = (char) c;
        pos++;
    }
    bootid [len] = 0;
    if (len == 0)
        return SLOT_TORN;
    //  " NNNNNNNNNN NNNNNNNNNN END\n" = 1+10+1+10+5 = 27 bytes
    if (pos + 27 > SECTOR)
        return SLOT_TORN;
    const char *p = (const char *) sector + pos;
    int64_t a = 0, b = 0;
    if (p [0] != ' ' || p [11] != ' ' || memcmp (p + 22, " END\n", 5) != 0)
        return SLOT_TORN;
    for (int i = 0; i < 10; i++) {
        if (!isdigit ((unsigned char) p [1 + i])
        ||  !isdigit ((unsigned char) p [12 + i]))
            return SLOT_TORN;
        a = a * 10 + (p [1 + i] - '0');
        b = b * 10 + (p [12 + i] - '0');
    }
    size_t end = pos + 27;
    if (!s_all_zero (sector + end, SECTOR - end))
        return SLOT_TORN;
    if (a != b || a != slot)
        return SLOT_TORN;
    return SLOT_VALID;
}

static void
s_note_bootid (result_t *r, const char *bootid)
{
    if (!bootid [0])
        return;
    for (int i = 0; i < r->nbootids; i++)
        if (strcmp (r->bootids [i], bootid) == 0)
            return;
    if (r->nbootids == MAX_BOOTIDS) {
        r->bootids_overflow = true;
        return;
    }
    snprintf (r->bootids [r->nbootids++], BOOTID_MAX + 1, "%s", bootid);
}

static void
s_scan_slot (result_t *r, const unsigned char *sector, int64_t slot)
{
    char bootid [BOOTID_MAX + 1];
    slot_kind_t kind = s_classify (sector, slot, bootid);
    s_note_bootid (r, bootid);
    if (kind == SLOT_VALID) {
        r->valid++;
        r->max_valid = slot;
        if (r->prefix_open)
            r->k = slot;
    }
    else {
        r->prefix_open = false;
        if (kind == SLOT_TORN) {
            r->torn++;
            if (!r->first_torn)
                r->first_torn = slot;
        }
    }
}

//  --------------------------------------------------------------------------
//  Input: raw directly, qcow2 through a temporary raw copy

static int
s_run (char *const argv [])
{
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp (argv [0], argv);
        fprintf (stderr, "sf-records: cannot run %s: %s\n", argv [0],
                 strerror (errno));
        _exit (127);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

static bool
s_is_qcow2 (const char *path)
{
    unsigned char magic [4] = { 0 };
    FILE *f = fopen (path, "rb");
    if (!f)
        return false;
    size_t n = fread (magic, 1, 4, f);
    fclose (f);
    return n == 4 && memcmp (magic, "QFI\xfb", 4) == 0;
}

//  Converts a qcow2 image to a raw temp file; returns its path (to unlink
//  and free) or NULL
static char *
s_qcow2_to_raw (const char *image)
{
    const char *tmpdir = getenv ("TMPDIR");
    char *path = NULL;
    if (asprintf (&path, "%s/sf-records.XXXXXX",
                  tmpdir && *tmpdir ? tmpdir : "/var/tmp") < 0)
        return NULL;
    int fd = mkstemp (path);
    if (fd < 0) {
        fprintf (stderr, "sf-records: mkstemp %s: %s\n", path, strerror (errno));
        free (path);
        return NULL;
    }
    close (fd);
    char *argv [] = { "qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw",
                      (char *) image, path, NULL };
    int rc = s_run (argv);
    if (rc != 0) {
        fprintf (stderr, "sf-records: qemu-img convert of %s failed (exit %d)\n",
                 image, rc);
        unlink (path);
        free (path);
        return NULL;
    }
    return path;
}

static int
s_scan_file (const char *path, const options_t *opt, result_t *r)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0) {
        fprintf (stderr, "sf-records: %s: %s\n", path, strerror (errno));
        return -1;
    }
    unsigned char *buf = malloc ((size_t) CHUNK_SECTORS * SECTOR);
    if (!buf) {
        close (fd);
        return -1;
    }
    off_t off = (off_t) opt->offset_sector * SECTOR;
    int64_t slot = 1;
    int rc = 0;
    while (opt->slots < 0 || slot <= opt->slots) {
        int64_t want = CHUNK_SECTORS;
        if (opt->slots >= 0 && opt->slots - slot + 1 < want)
            want = opt->slots - slot + 1;
        ssize_t n = pread (fd, buf, (size_t) want * SECTOR, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "sf-records: read %s: %s\n", path, strerror (errno));
            rc = -1;
            break;
        }
        int64_t got = n / SECTOR;
        for (int64_t i = 0; i < got; i++, slot++)
            s_scan_slot (r, buf + i * SECTOR, slot);
        off += (off_t) got * SECTOR;
        if (got < want)
            break;              //  end of the image
    }
    r->scanned = slot - 1;
    free (buf);
    close (fd);
    return rc;
}

//  --------------------------------------------------------------------------

static const char *
s_verdict (const result_t *r, const options_t *opt)
{
    if (r->torn)
        return "TORN";
    if (r->holes)
        return "HOLES";
    if (r->nbootids > 1 || r->bootids_overflow)
        return "MULTIPLE_BOOTIDS";
    if (opt->min >= 0 && r->k < opt->min)
        return "BELOW_MIN";
    if (opt->max >= 0 && r->k > opt->max)
        return "ABOVE_MAX";
    return "CLEAN_PREFIX";
}

static void
s_print (const result_t *r, const options_t *opt, const char *verdict)
{
    if (!opt->json) {
        printf ("K=%" PRId64 " valid=%" PRId64 " holes=%" PRId64 " torn=%" PRId64
                " bootids=%d verdict=%s\n", r->k, r->valid, r->holes, r->torn,
                r->nbootids, verdict);
        return;
    }
    //  Boot ids are [A-Za-z0-9_-] only, image is printed escaped
    printf ("{\"image\":\"");
    for (const char *p = opt->image; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf ("\\%c", *p);
        else if ((unsigned char) *p < 0x20)
            printf ("\\u%04x", (unsigned char) *p);
        else
            putchar (*p);
    }
    printf ("\",\"K\":%" PRId64 ",\"valid\":%" PRId64 ",\"holes\":%" PRId64
            ",\"torn\":%" PRId64 ",\"bootids\":%d,\"bootid_list\":[",
            r->k, r->valid, r->holes, r->torn, r->nbootids);
    for (int i = 0; i < r->nbootids; i++)
        printf ("%s\"%s\"", i ? "," : "", r->bootids [i]);
    printf ("],\"max_valid\":%" PRId64 ",\"first_torn\":%" PRId64
            ",\"slots_scanned\":%" PRId64, r->max_valid, r->first_torn,
            r->scanned);
    //  Bounds not given are null
    if (opt->min >= 0)
        printf (",\"min\":%" PRId64, opt->min);
    else
        printf (",\"min\":null");
    if (opt->max >= 0)
        printf (",\"max\":%" PRId64, opt->max);
    else
        printf (",\"max\":null");
    printf (",\"verdict\":\"%s\"}\n", verdict);
}

int
main (int argc, char *argv [])
{
    options_t opt = { .min = -1, .max = -1, .offset_sector = 2049,
                      .slots = -1, .format = "auto" };
    static const struct option longopts [] = {
        { "min", required_argument, NULL, 'a' },
        { "max", required_argument, NULL, 'b' },
        { "offset-sector", required_argument, NULL, 'o' },
        { "slots", required_argument, NULL, 's' },
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
            case 'a': ok = s_parse_int (optarg, &opt.min); break;
            case 'b': ok = s_parse_int (optarg, &opt.max); break;
            case 'o': ok = s_parse_int (optarg, &opt.offset_sector); break;
            case 's': ok = s_parse_int (optarg, &opt.slots); break;
            case 'f':
                opt.format = optarg;
                ok = !strcmp (optarg, "auto") || !strcmp (optarg, "raw")
                  || !strcmp (optarg, "qcow2");
                break;
            case 'j': opt.json = true; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (!ok) {
            fprintf (stderr, "sf-records: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (optind != argc - 1) {
        s_usage (stderr);
        return 2;
    }
    opt.image = argv [optind];

    bool qcow2 = !strcmp (opt.format, "qcow2")
              || (!strcmp (opt.format, "auto") && s_is_qcow2 (opt.image));
    char *tmp = NULL;
    if (qcow2 && !(tmp = s_qcow2_to_raw (opt.image)))
        return 2;

    result_t r = { .prefix_open = true };
    int rc = s_scan_file (tmp ? tmp : opt.image, &opt, &r);
    if (tmp) {
        unlink (tmp);
        free (tmp);
    }
    if (rc < 0)
        return 2;
    r.holes = r.max_valid - r.valid;

    const char *verdict = s_verdict (&r, &opt);
    s_print (&r, &opt, verdict);
    bool clean = strcmp (verdict, "CLEAN_PREFIX") == 0;
    if (!clean) {
        fprintf (stderr, "sf-records: %s: %s (K=%" PRId64 ", highest valid slot %"
                 PRId64 ", first torn slot %" PRId64 ", %d boot id(s)",
                 opt.image, verdict, r.k, r.max_valid, r.first_torn, r.nbootids);
        for (int i = 0; i < r.nbootids; i++)
            fprintf (stderr, " %s", r.bootids [i]);
        fprintf (stderr, ", bounds %" PRId64 "..%" PRId64 ")\n", opt.min, opt.max);
    }
    return clean ? 0 : 1;
}
