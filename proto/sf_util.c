/*  =========================================================================
    sf_util - time, duration/size parsing and small helpers
    =========================================================================
*/
#include "sf_core.h"

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
    assert (sf_name_is_safe ("web-01.example:a_b"));
    assert (!sf_name_is_safe ("../etc"));
    assert (!sf_name_is_safe ("a/b"));
    assert (!sf_name_is_safe (""));
    assert (sf_time_mono_ms () > 0);
    assert (sf_utf8_seq_len ("\xe2\x82\xac") == 3 && sf_utf8_seq_len ("a") == 1);
    assert (sf_utf8_seq_len ("\xc0\xaf") == 0 && sf_utf8_seq_len ("") == 0);
    assert (sf_utf8_valid ("caf\xc3\xa9") && !sf_utf8_valid ("caf\xc3"));
    //  @end
    printf ("OK\n");
}
